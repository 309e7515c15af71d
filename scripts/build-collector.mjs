// Bundles the collector's TypeScript into collector/dist/main.js (dependencies stay in
// node_modules; native modules such as better-sqlite3 cannot be bundled).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: ['collector/main.ts'],
  outfile: 'collector/dist/main.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: true,
  define: { __COLLECTOR_VERSION__: JSON.stringify(pkg.version) },
  logLevel: 'info',
});
