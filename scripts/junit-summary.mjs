// Prints the CI summary line `N passed, N failed` from the JUnit report vitest writes.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-output/junit.xml';
let xml;
try {
  xml = readFileSync(file, 'utf8');
} catch {
  console.error(`no test report at ${file}`);
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
}
const cases = xml.match(/<testcase\b[^>]*?(\/>|>[\s\S]*?<\/testcase>)/g) ?? [];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const c of cases) {
  if (/<(failure|error)\b/.test(c)) failed++;
  else if (/<skipped\b/.test(c)) skipped++;
  else passed++;
}
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
