// Prints line and branch coverage per area (collector, plugin backend, contract, frontend) from
// coverage/coverage-summary.json, which `npm test` writes.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const AREAS = [
  ['collector', 'collector/'],
  ['plugin backend', 'src/backend/'],
  ['contract', 'contract/'],
  ['plugin frontend', 'src/'],
];

let summary;
try {
  summary = JSON.parse(readFileSync('coverage/coverage-summary.json', 'utf8'));
} catch {
  console.error('no coverage/coverage-summary.json: run npm test first');
  process.exit(1);
}
const totals = new Map(AREAS.map(([name]) => [name, { lines: [0, 0], branches: [0, 0] }]));
for (const [file, data] of Object.entries(summary)) {
  if (file === 'total') continue;
  const rel = relative(process.cwd(), file);
  const area = AREAS.find(([, prefix]) => rel.startsWith(prefix));
  if (!area) continue;
  const t = totals.get(area[0]);
  t.lines[0] += data.lines.covered;
  t.lines[1] += data.lines.total;
  t.branches[0] += data.branches.covered;
  t.branches[1] += data.branches.total;
}
const pct = ([c, n]) => (n === 0 ? '100.00' : ((100 * c) / n).toFixed(2));
process.stdout.write('coverage by area (lines, branches):\n');
for (const [name, t] of totals) {
  process.stdout.write(`  ${name.padEnd(16)} ${pct(t.lines).padStart(6)}% lines (${t.lines[0]}/${t.lines[1]})  ${pct(t.branches).padStart(6)}% branches (${t.branches[0]}/${t.branches[1]})\n`);
}
