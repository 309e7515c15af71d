import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, loadConfigText } from './load.js';

let dir: string;
const TOKEN = 'a'.repeat(32);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(join(dir, 'short-token'), 'abc\n');
  writeFileSync(join(dir, 'empty'), '\n');
  writeFileSync(join(dir, 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n');
  writeFileSync(join(dir, 'pass'), 'hunter2\n');
  writeFileSync(join(dir, 'iperf-pass'), 's3cret\n');
  writeFileSync(join(dir, 'server.pem'), '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n');
});

function errorsOf(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).fields;
  }
  throw new Error('expected a ConfigError');
}

const cfg = (extra: string) => loadConfigText(`apiTokenFile: token\n${extra}`, join(dir, 'collector.yaml'));

describe('collector configuration', () => {
  it('applies the documented defaults and resolves files next to the config file', () => {
    const loaded = cfg(`
servers: [{ host: iperf1.example.net }, { host: "2001:db8::1", port: 5202, label: v6 }]
devices:
  - { id: ap-lobby, host: 192.0.2.10, username: root, privateKeyFile: id_ed25519, labels: { site: hq } }
  - { id: cpe-2, host: cpe2.example.net, port: 2222, username: admin, passwordFile: pass, enabled: false }
`);
    expect(loaded.apiToken).toBe(TOKEN);
    expect(loaded.config.listen).toBe('127.0.0.1:8686');
    expect(loaded.databasePath).toBe(join(dir, 'data/iperf3.db'));
    expect(loaded.config.schedule).toEqual({ cron: '0 2 * * *', timezone: 'UTC', runAtStart: false });
    expect(loaded.config.clientOptions.connectTimeout).toBe(1000);
    expect(loaded.config.clientOptions.udp).toEqual({ enabled: true, bitrate: '30M', length: null });
    expect(loaded.config.servers[0].port).toBe(5201);
    expect(loaded.devices[0].target.privateKey?.toString()).toContain('OPENSSH PRIVATE KEY');
    expect(loaded.devices[0].target.port).toBe(22);
    expect(loaded.devices[1].target.password).toBe('hunter2');
    expect(loaded.devices[1].config.enabled).toBe(false);
    expect(loaded.warnings).toEqual([]);
    expect(loaded.iperf3Password).toBeNull();
  });

  it('reads iperf3 auth secrets from files and warns when no default server exists yet', () => {
    const loaded = cfg(`
database: /tmp/x.db
clientOptions: { auth: { username: mon, passwordFile: iperf-pass, rsaPublicKeyFile: server.pem, pkcs1Padding: true } }
devices: [{ id: a, host: 10.1.1.1, username: root, privateKeyFile: id_ed25519, passphraseFile: pass }]
`);
    expect(loaded.iperf3Password).toBe('s3cret');
    expect(loaded.iperf3RsaPublicKey).toContain('BEGIN PUBLIC KEY');
    expect(loaded.devices[0].target.passphrase).toBe('hunter2');
    expect(loaded.databasePath).toBe('/tmp/x.db');
    expect(loaded.warnings[0]).toMatch(/servers: is empty/);
  });

  it('accepts an inline RSA key for auth', () => {
    const loaded = cfg(`clientOptions: { auth: { username: mon, passwordFile: iperf-pass, rsaPublicKey: "PEM" } }\nservers: [{ host: a.example }]`);
    expect(loaded.iperf3RsaPublicKey).toBe('PEM');
  });

  it('names each invalid field and says how to fix it', () => {
    const fields = errorsOf(() =>
      cfg(`
listen: nope
schedule: { cron: "61 * * * *", timezone: Mars/Base }
servers: [{ host: "300.1.1.1", port: 70000 }]
clientOptions: { time: 0, connectTimeout: 1, parallel: 200, directions: [], udp: { bitrate: fast } }
unknownKey: 1
devices:
  - { id: "bad id", host: x..y, username: "" }
  - { id: a, host: 10.0.0.1, username: root, privateKeyFile: k, pool: nope, hostKey: "MD5:aa" }
  - { id: a, host: 10.0.0.2, username: root, privateKeyFile: k }
`),
    );
    const byField = Object.fromEntries(fields.map((f) => [f.field, f.message]));
    expect(byField.listen).toMatch(/host:port/);
    expect(byField['schedule.cron']).toMatch(/cron/);
    expect(byField['schedule.timezone']).toMatch(/IANA/);
    expect(byField['servers.0.host']).toMatch(/IPv4/);
    expect(byField['servers.0.port']).toMatch(/1 to 65535/);
    expect(byField['clientOptions.time']).toMatch(/at least 1/);
    expect(byField['clientOptions.connectTimeout']).toMatch(/100 ms/);
    expect(byField['clientOptions.parallel']).toMatch(/1 to 128/);
    expect(byField['clientOptions.directions']).toMatch(/at least one direction/);
    expect(byField['clientOptions.udp.bitrate']).toMatch(/iperf3 syntax/);
    expect(byField['(root)']).toMatch(/unknownKey/);
    expect(byField['devices.0.id']).toMatch(/letters, digits/);
    expect(byField['devices.0.host']).toBeDefined();
    expect(byField['devices.0.username']).toMatch(/SSH user/);
    expect(byField['devices.0.privateKeyFile']).toMatch(/privateKeyFile .* or passwordFile/);
    expect(byField['devices.1.hostKey']).toMatch(/ssh-keygen -lf/);
    expect(byField['devices.1.pool']).toMatch(/unknown pool "nope"/);
    expect(byField['devices.2.id']).toMatch(/duplicate device id "a"/);
  });

  it('refuses a device pinned to another group than its pool, naming both', () => {
    const fields = errorsOf(() =>
      cfg(`
servers: [{ host: a.example }]
pools: { eu-servers: { group: eu, servers: [{ host: b.example }] } }
devices:
  - { id: a, host: 10.0.0.1, username: root, privateKeyFile: k, pool: eu-servers, group: us }
  - { id: b, host: 10.0.0.2, username: root, privateKeyFile: k, pool: eu-servers, group: eu }
  - { id: c, host: 10.0.0.3, username: root, privateKeyFile: k, pool: eu-servers }
`),
    );
    expect(fields).toEqual([
      { field: 'devices.0.group', message: 'the device\'s pool "eu-servers" is pinned to group "eu"; remove the device\'s group or make it "eu"' },
    ]);
  });

  it('reports unreadable, missing and empty secret files without their contents', () => {
    const fields = errorsOf(() =>
      cfg(`
servers: [{ host: a.example }]
clientOptions: { auth: { username: mon } }
devices:
  - { id: a, host: 10.0.0.1, username: root, privateKeyFile: missing-key }
  - { id: b, host: 10.0.0.2, username: root, passwordFile: empty }
`),
    );
    expect(fields.find((f) => f.field === 'devices.0.privateKeyFile')?.message).toMatch(/no such file.*create it or fix the path/);
    expect(fields.find((f) => f.field === 'devices.1.passwordFile')?.message).toMatch(/is empty/);
    expect(fields.find((f) => f.field === 'clientOptions.auth.passwordFile')?.message).toMatch(/needs passwordFile/);
    expect(fields.find((f) => f.field === 'clientOptions.auth.rsaPublicKeyFile')?.message).toMatch(/RSA public key/);
  });

  it('rejects a short API token and a missing token file', () => {
    expect(errorsOf(() => loadConfigText('apiTokenFile: short-token', join(dir, 'c.yaml')))[0].message).toMatch(/at least 16 characters/);
    expect(errorsOf(() => loadConfigText('{}', join(dir, 'c.yaml')))[0].field).toBe('apiTokenFile');
    expect(errorsOf(() => loadConfigText('apiTokenFile: .', join(dir, 'c.yaml')))[0].message).toMatch(/\(EISDIR\); create it or fix the path/);
    expect(errorsOf(() => loadConfigText('', join(dir, 'c.yaml')))[0].field).toBe('apiTokenFile');
  });

  it('reports YAML syntax errors with their line, and a missing file', () => {
    const fields = errorsOf(() => loadConfigText('servers: [\n  - {', join(dir, 'c.yaml')));
    expect(fields[0]).toMatchObject({ field: '(yaml)', message: expect.stringMatching(/line \d+/) });
    expect(() => loadConfigFile(join(dir, 'nope.yaml'))).toThrow(/cannot read configuration file .*ENOENT.*--config/);
  });

  it('reads a key file once: the devices that name it share one Buffer', () => {
    writeFileSync(join(dir, 'other_key'), 'another key\n');
    const loaded = cfg(`
devices:
  - { id: a, host: 192.0.2.1, username: root, privateKeyFile: id_ed25519 }
  - { id: b, host: 192.0.2.2, username: root, privateKeyFile: ./id_ed25519 }
  - { id: c, host: 192.0.2.3, username: root, privateKeyFile: other_key, passwordFile: pass }
  - { id: d, host: 192.0.2.4, username: root, privateKeyFile: other_key, passwordFile: pass }
`);
    const [a, b, c, d] = loaded.devices.map((x) => x.target);
    expect(a.privateKey?.toString()).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(b.privateKey).toBe(a.privateKey);
    expect(c.privateKey?.toString()).toBe('another key\n');
    expect(d.privateKey).toBe(c.privateKey);
    expect([c.password, d.password]).toEqual(['hunter2', 'hunter2']);
    // a file that cannot be read is reported for every device that names it
    const fields = errorsOf(() =>
      cfg(`
devices:
  - { id: a, host: 192.0.2.1, username: root, privateKeyFile: missing_key }
  - { id: b, host: 192.0.2.2, username: root, privateKeyFile: missing_key }
  - { id: c, host: 192.0.2.3, username: root, passwordFile: empty }
  - { id: d, host: 192.0.2.4, username: root, passwordFile: empty }
`),
    );
    expect(fields.map((f) => f.field)).toEqual(['devices.0.privateKeyFile', 'devices.1.privateKeyFile', 'devices.2.passwordFile', 'devices.3.passwordFile']);
    expect(fields[1].message).toMatch(/cannot read SSH private key file .*missing_key \(no such file\)/);
    expect(fields[3].message).toMatch(/SSH password file .*empty is empty/);
  });

  it('reads YAML 1.2 values as before: dates and yes stay text, an unknown tag keeps its value, duplicate keys are refused', () => {
    const loaded = cfg(`
devices:
  - { id: 2024-01-01, host: yes, port: 0o26, username: !custom root, passwordFile: pass }
`);
    expect(loaded.config.devices[0]).toMatchObject({ id: '2024-01-01', host: 'yes', port: 22, username: 'root' });
    expect(errorsOf(() => cfg('listen: 127.0.0.1:1\nlisten: 127.0.0.1:2'))[0]).toMatchObject({ field: '(yaml)', message: expect.stringMatching(/unique.*line 3/) });
  });

  it('loads a file from disk', () => {
    writeFileSync(join(dir, 'file.yaml'), 'apiTokenFile: token\n');
    expect(loadConfigFile(join(dir, 'file.yaml')).config.devices).toEqual([]);
  });
});
