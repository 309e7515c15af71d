/** Import files as operators bring them (CSV from a spreadsheet or an OpenWISP export, YAML), and export. */
import { describe, expect, it } from 'vitest';
import { deviceConfigSchema } from '../../contract/devices.js';
import { formatDevices, formatOf, formatRowErrors, importDevices, parseDeviceFile, patchTo } from './bulk.js';

const KEY = `SHA256:${'B'.repeat(43)}`;

describe('device import files', () => {
  it('reads CSV columns, labels.<name> columns, yes/no and empty cells (left out)', () => {
    const csv = [
      'id,host,port,username,privateKeyFile,passwordFile,hostKey,pool,group,enabled,labels.site,labels.org',
      `ap-lobby,10.0.0.2,,root,id_ed25519,,${KEY},,eu,yes,lobby,acme`,
      'ap-roof,ap-roof.example.net,2222,admin,,roof-password,,edge,,no,roof,',
      '',
    ].join('\n');
    const { rows, errors } = parseDeviceFile(csv, 'csv');
    expect(errors).toEqual([]);
    expect(rows).toEqual([
      {
        row: 2,
        device: deviceConfigSchema.parse({ id: 'ap-lobby', host: '10.0.0.2', username: 'root', privateKeyFile: 'id_ed25519', hostKey: KEY, group: 'eu', labels: { site: 'lobby', org: 'acme' } }),
      },
      {
        row: 3,
        device: deviceConfigSchema.parse({ id: 'ap-roof', host: 'ap-roof.example.net', port: 2222, username: 'admin', passwordFile: 'roof-password', pool: 'edge', enabled: false, labels: { site: 'roof' } }),
      },
    ]);
  });

  it('reports every bad row with its line and field, and unknown columns', () => {
    const csv = 'id,host,username,privateKeyFile,enabled,port\nok-1,10.0.0.2,root,k,true,22\nbad host,999.1.1.1,root,k,maybe,x\nok-1,10.0.0.3,,k,,\n';
    const { errors } = parseDeviceFile(csv, 'csv');
    expect(errors.map((e) => `${e.row}:${e.field}`)).toEqual(['3:enabled', '3:id', '3:host', '3:port', '4:username']);
    expect(formatRowErrors(errors.slice(0, 1))).toBe('row 3, enabled: "maybe" is not true or false (also yes/no, 1/0)');
    const dup = parseDeviceFile('id,host,username,privateKeyFile\na,h1,root,k\na,h2,root,k\n', 'csv');
    expect(dup.errors).toEqual([{ row: 3, field: 'id', message: 'duplicate id "a" (also row 2)' }]);
    expect(parseDeviceFile('id,host,mac_address\na,h,00:11\n', 'csv').errors).toEqual([
      { row: 1, field: 'mac_address', message: expect.stringContaining('unknown column; use id, host, port') },
    ]);
    const broken = parseDeviceFile('id,host\n"a,h\n', 'csv');
    expect(broken.errors[0]).toMatchObject({ field: '(csv)', message: expect.stringContaining('Quote Not Closed') });
    expect(parseDeviceFile('', 'csv')).toEqual({ rows: [], errors: [] });
  });

  it('reads YAML as a list or as the configuration file devices: list, and refuses anything else', () => {
    const list = parseDeviceFile('- { id: a, host: 10.0.0.2, username: root, privateKeyFile: k }\n- { id: b, host: x y, username: root }\n', 'yaml');
    expect(list.rows.map((r) => r.device.id)).toEqual(['a']);
    expect(list.errors.map((e) => `${e.row}:${e.field}`)).toEqual(['2:host', '2:privateKeyFile']);
    expect(parseDeviceFile('devices:\n  - { id: a, host: 10.0.0.2, username: root, privateKeyFile: k }\n', 'yaml').rows).toHaveLength(1);
    expect(parseDeviceFile('servers: []\n', 'yaml').errors).toEqual([{ row: 1, field: '(yaml)', message: 'give a list of devices, or a devices: list as in the configuration file' }]);
    expect(parseDeviceFile('', 'yaml').errors[0].field).toBe('(yaml)');
    expect(parseDeviceFile('a: [\n', 'yaml').errors[0]).toMatchObject({ row: 1, field: '(yaml)' });
  });

  it('exports what it imports, in both formats', () => {
    const devices = [
      deviceConfigSchema.parse({ id: 'a', host: '10.0.0.2', username: 'root', privateKeyFile: 'k', labels: { site: 'x, "quoted"' }, hostKey: KEY }),
      deviceConfigSchema.parse({ id: 'b', host: 'b.example', port: 2222, username: 'root', passwordFile: 'p', enabled: false, pool: 'edge', labels: { org: 'acme' } }),
    ];
    const csv = formatDevices(devices, 'csv');
    expect(csv.split('\n')[0]).toBe('id,host,port,username,privateKeyFile,passphraseFile,passwordFile,hostKey,pool,group,enabled,labels.org,labels.site');
    expect(parseDeviceFile(csv, 'csv')).toEqual({ rows: devices.map((device, i) => ({ row: i + 2, device })), errors: [] });
    expect(parseDeviceFile(formatDevices(devices, 'yaml'), 'yaml').rows.map((r) => r.device)).toEqual(devices);
  });

  it('tells the format by the extension, and patches every field of an API device', () => {
    expect([formatOf('d.CSV'), formatOf('d.yml'), formatOf('d.yaml'), formatOf('d.json')]).toEqual(['csv', 'yaml', 'yaml', null]);
    expect(patchTo(deviceConfigSchema.parse({ id: 'a', host: 'h', username: 'u', passwordFile: 'p' }))).toEqual({
      privateKeyFile: null,
      passphraseFile: null,
      passwordFile: 'p',
      hostKey: null,
      pool: null,
      group: null,
      host: 'h',
      port: 22,
      username: 'u',
      labels: {},
      enabled: true,
    });
  });

  it('an import that fails for another reason than a refused row stops there', async () => {
    const { rows } = parseDeviceFile('- { id: a, host: 10.0.0.2, username: root, privateKeyFile: k }\n', 'yaml');
    const failing = {
      records: async () => [],
      add: async () => Promise.reject(new Error('database is gone')),
      update: async () => undefined,
      close: async () => undefined,
    };
    await expect(importDevices(failing, rows)).rejects.toThrow('database is gone');
  });
});
