#!/usr/bin/env node
// `npm start`: the collector without Docker, from a fresh clone, in one command.
//  1. builds what is missing (npm ci without node_modules; the collector; the plugin in dist/);
//  2. on first start creates secrets/api-token and the SSH key pair secrets/id_ed25519(.pub),
//     mode 0600 in a 0700 folder, and writes collector.yaml from collector/collector.example.yaml;
//  3. prints the public key to put on the devices and what to edit next;
//  4. serves (`collector serve --config collector.yaml`) until Ctrl-C.
// Never overwrites: a later start finds everything and only prints and serves.
// `npm start -- --no-serve` stops after step 3.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { 'no-serve': { type: 'boolean', default: false } } });
const at = (...parts) => join(root, ...parts);
const show = (path) => relative(process.cwd(), path) || '.';
const say = (text = '') => process.stdout.write(`${text}\n`);

function npm(...npmArgs) {
  say(`npm start: npm ${npmArgs.join(' ')}`);
  const result = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', npmArgs, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`npm start: "npm ${npmArgs.join(' ')}" failed (exit ${result.status ?? result.signal}); fix the error above and run npm start again\n`);
    process.exit(1);
  }
}

// 1. what is missing gets built; what is there is used as it is (after a `git pull`: npm run build)
if (!existsSync(at('node_modules', '.package-lock.json'))) npm('ci', '--no-audit', '--no-fund');
if (!existsSync(at('collector', 'dist', 'main.js'))) npm('run', 'build:collector');
const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const pluginJson = JSON.parse(readFileSync(at('src', 'plugin.json'), 'utf8'));
if (!existsSync(at('dist', `${pluginJson.executable}_linux_${arch}`))) npm('run', 'build:backend', '--', '--arch', arch);
if (!existsSync(at('dist', 'module.js')) || !existsSync(at('dist', 'plugin.json'))) npm('run', 'build:frontend');

// 2. secrets and the starter configuration, each only when absent
const secrets = at('secrets');
mkdirSync(secrets, { recursive: true, mode: 0o700 });
chmodSync(secrets, 0o700);
const created = [];
const tokenFile = join(secrets, 'api-token');
if (!existsSync(tokenFile)) {
  writeFileSync(tokenFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  created.push(`${show(tokenFile)} (the collector API token: Grafana's data source needs it)`);
}
const keyFile = join(secrets, 'id_ed25519');
if (!existsSync(keyFile)) {
  // ssh2 (the collector's SSH library) writes the OpenSSH format it reads back; no ssh-keygen needed
  const { default: ssh2 } = await import('ssh2');
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'iperf3-collector' });
  writeFileSync(keyFile, pair.private, { mode: 0o600, flag: 'wx' });
  writeFileSync(`${keyFile}.pub`, `${pair.public}\n`, { mode: 0o600, flag: 'wx' });
  created.push(`${show(keyFile)} and ${show(keyFile)}.pub (the SSH key the collector logs in to devices with)`);
}
const config = at('collector.yaml');
if (!existsSync(config)) {
  copyFileSync(at('collector', 'collector.example.yaml'), config);
  chmodSync(config, 0o600);
  created.push(`${show(config)} (a starter configuration, from collector/collector.example.yaml)`);
}
if (!existsSync(`${keyFile}.pub`)) {
  process.stderr.write(`npm start: ${show(keyFile)} exists but ${show(keyFile)}.pub does not: recreate it with ssh-keygen -y -f ${show(keyFile)} > ${show(keyFile)}.pub\n`);
  process.exit(2);
}

// 3. what to do next
/** http://<listen> of the configuration; the collector itself reports a file it cannot read */
async function collectorUrl() {
  const { parse } = await import('yaml');
  try {
    const listen = parse(readFileSync(config, 'utf8'))?.listen;
    if (typeof listen === 'string') return `http://${listen}`;
  } catch {
    // the collector's own error says more
  }
  return `"listen" of ${show(config)}`;
}
const publicKey = readFileSync(`${keyFile}.pub`, 'utf8').trim();
if (created.length > 0) {
  say();
  say('npm start: first start, created:');
  for (const line of created) say(`  - ${line}`);
}
say();
say('Put this public key on every device (OpenSSH: ~/.ssh/authorized_keys; OpenWrt/dropbear: /etc/dropbear/authorized_keys):');
say();
say(`  ${publicKey}`);
say();
say(`Then edit ${show(config)}: "servers" (your iperf3 servers) and "devices" (host, username, privateKeyFile: ./secrets/id_ed25519);`);
say('every key is in docs/configuration.md. Check it with: npm run collector -- check-config --config collector.yaml');
say('Test one device now:               npm run collector -- run <device-id> --config collector.yaml');
say(`Grafana's iperf3 data source:      URL ${await collectorUrl()}, token in ${show(tokenFile)}`);
say();
if (args['no-serve']) process.exit(0);

// 4. serve, handing Ctrl-C and SIGTERM to the collector (it lets running tests finish)
say(`npm start: collector serve --config ${show(config)}`);
const collector = spawn(process.execPath, [at('collector', 'dist', 'main.js'), 'serve', '--config', config], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => collector.kill(signal));
collector.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
