import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLabs, createLab, LAB_SCRIPT, realLabName, subnetNumberFor, type Lab } from './lab.js';

interface Iperf3Json {
  error?: string;
  end: {
    sum_received: { bits_per_second: number };
    sum?: { lost_percent: number };
  };
}

const RATE_MBIT = 20;

/** ssh from the test process, as a user would (OpenSSH client, BatchMode: key only) */
function ssh(lab: Lab, deviceId: string, command: string): { status: number | null; stdout: string; stderr: string } {
  const d = lab.device(deviceId);
  const r = spawnSync('ssh', [
    '-i', lab.clientKey.privateKeyPath,
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
    `${d.username}@${d.host}`, command,
  ], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scannedFingerprint(host: string): string {
  const keys = execFileSync('ssh-keyscan', ['-t', 'ed25519', '-T', '5', host], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return execFileSync('ssh-keygen', ['-lf', '-'], { input: keys, encoding: 'utf8' }).split(' ')[1];
}

async function iperf3(lab: Lab, deviceId: string, serverId: string, extra: string[]): Promise<Iperf3Json> {
  const s = lab.server(serverId);
  // A lost UDP setup datagram makes a lossy test fail or hang at the start (killed by the
  // exec timeout, iperf3 then prints an error JSON), and the server may stay busy with a test
  // its client gave up until its --idle-timeout (10 s, lab.sh): retrying after a pause is
  // legitimate. The errors are the failure.
  const errors: string[] = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    const r = await lab.exec(deviceId, ['iperf3', '-c', s.host, '-p', String(s.port), '-J', ...extra], { timeoutMs: 12_000 });
    const json = JSON.parse(r.stdout) as Iperf3Json;
    if (!json.error) return json;
    errors.push(json.error);
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  throw new Error(`iperf3 from ${deviceId} to ${serverId} failed 5 times: ${errors.join('; ')}`);
}

function labLeftovers(name: string): string[] {
  const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return [
    ...netns.split('\n').filter((l) => l.startsWith(`ipl-${name}-`)),
    ...links.split('\n').filter((l) => l.includes(` ipl-${name}-`)),
    ...[`/tmp/ipl-lab/${name}`].filter((p) => existsSync(p)),
  ];
}

describe('lab', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await createLab({
      name: 'lab',
      devices: [
        { id: 'shaped', ssh: 'openssh', rateMbit: RATE_MBIT },
        { id: 'drop', ssh: 'dropbear', password: 'pw-drop' },
        { id: 'noiperf', ssh: 'openssh', iperf3: false, env: { LAB_GREETING: "it's me" } },
      ],
      servers: [{ id: 'srv' }, { id: 'authsrv', port: 5301, auth: { username: 'alice', password: 'wonderland' } }],
    });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('gives every host an address in its own subnet and devices a fingerprinted SSH server', () => {
    expect(lab.name).toBe(realLabName('lab'));
    expect(lab.name).toMatch(/^lab[0-9a-z]{2}$/);
    const n = Number(lab.subnet.split('.')[2]);
    expect(lab.subnet).toBe(`10.203.${n}.0/24`);
    expect(lab.device('shaped').host).toBe(`10.203.${n}.10`);
    expect(lab.server('srv').host).toBe(`10.203.${n}.100`);
    expect(lab.device('shaped').hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    for (const id of ['shaped', 'drop']) {
      expect(scannedFingerprint(lab.device(id).host)).toBe(lab.device(id).hostKeyFingerprint);
    }
    expect(() => lab.device('nope')).toThrow(/no device 'nope'/);
    expect(() => lab.server('nope')).toThrow(/no server 'nope'/);
  });

  it('lets the test process log in to OpenSSH and dropbear devices with the client key', () => {
    for (const id of ['shaped', 'drop']) {
      const r = ssh(lab, id, 'id -un; command -v iperf3');
      expect(r.stdout).toBe('ipl\n/usr/bin/iperf3\n');
      expect(r.status).toBe(0);
    }
  });

  it('gives a device without iperf3 a PATH without it, and extra environment', () => {
    const r = ssh(lab, 'noiperf', 'echo "$LAB_GREETING"; iperf3 -v');
    expect(r.stdout).toBe("it's me\n");
    expect(r.status).toBe(127);
  });

  it('shapes a device link: real TCP upload and download within 10% of the shaped rate', async () => {
    for (const direction of [[], ['-R']]) {
      const json = await iperf3(lab, 'shaped', 'srv', ['-t', '4', '-O', '1', ...direction]);
      const mbit = json.end.sum_received.bits_per_second / 1e6;
      expect(mbit, `direction ${direction.join('') || 'upload'}`).toBeGreaterThan(RATE_MBIT * 0.9);
      expect(mbit).toBeLessThan(RATE_MBIT * 1.1);
    }
  });

  it('changes and removes shaping at runtime', async () => {
    await lab.setRate('shaped', 8);
    const slow = await iperf3(lab, 'shaped', 'srv', ['-t', '3', '-O', '1']);
    expect(slow.end.sum_received.bits_per_second / 1e6).toBeGreaterThan(8 * 0.9);
    expect(slow.end.sum_received.bits_per_second / 1e6).toBeLessThan(8 * 1.1);
    await lab.setRate('shaped', null);
    const free = await iperf3(lab, 'shaped', 'srv', ['-t', '2']);
    expect(free.end.sum_received.bits_per_second / 1e6).toBeGreaterThan(RATE_MBIT * 2);
    await lab.setRate('shaped', RATE_MBIT);
  });

  it('injects UDP loss per device and direction', async () => {
    await lab.setLoss('srv', 'drop', 5);
    const up = await iperf3(lab, 'drop', 'srv', ['-u', '-b', '10M', '-t', '3']);
    expect(up.end.sum?.lost_percent).toBeGreaterThan(2);
    expect(up.end.sum?.lost_percent).toBeLessThan(10);
    // other devices are not affected
    const other = await iperf3(lab, 'shaped', 'srv', ['-u', '-b', '5M', '-t', '2']);
    expect(other.end.sum?.lost_percent).toBeLessThan(1);
    await lab.setLoss('srv', 'drop', 0);
    await lab.setLoss('srv', 'drop', 20, 'download');
    const down = await iperf3(lab, 'drop', 'srv', ['-u', '-b', '10M', '-t', '3', '-R']);
    expect(down.end.sum?.lost_percent).toBeGreaterThan(12);
    expect(down.end.sum?.lost_percent).toBeLessThan(30);
    await lab.setLoss('srv', 'drop', 0, 'download');
    const clean = await iperf3(lab, 'drop', 'srv', ['-u', '-b', '10M', '-t', '2', '-R']);
    expect(clean.end.sum?.lost_percent).toBeLessThan(1);
  });

  it('stops and starts an iperf3 server', async () => {
    await lab.stopServer('srv');
    const down = await lab.exec('shaped', ['iperf3', '-c', lab.server('srv').host, '-J', '-t', '1']);
    expect((JSON.parse(down.stdout) as Iperf3Json).error).toMatch(/Connection refused/);
    await lab.startServer('srv');
    await lab.startServer('srv'); // already running: no-op
    const up = await iperf3(lab, 'shaped', 'srv', ['-t', '1']);
    expect(up.error).toBeUndefined();
  });

  it('runs an authenticating iperf3 server', async () => {
    const s = lab.server('authsrv');
    expect(s.auth?.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    const run = (password: string) =>
      lab.exec('shaped', ['sh', '-c', 'IFS= read -r IPERF3_PASSWORD; export IPERF3_PASSWORD; exec "$@"', 'sh',
        'iperf3', '-c', s.host, '-p', String(s.port), '-J', '-t', '1', '--username', 'alice', '--rsa-public-key-path', s.auth!.publicKeyPath,
      ], { stdin: `${password}\n` });
    expect((JSON.parse((await run('wonderland')).stdout) as Iperf3Json).error).toBeUndefined();
    expect((JSON.parse((await run('wrong')).stdout) as Iperf3Json).error).toBe('test authorization failed');
  });

  it('stops and starts SSH, and rotates host keys', async () => {
    await lab.stopSsh('drop');
    expect(ssh(lab, 'drop', 'true').stderr).toMatch(/Connection refused/);
    await lab.startSsh('drop');
    expect(ssh(lab, 'drop', 'true').status).toBe(0);
    const before = lab.device('shaped').hostKeyFingerprint;
    const after = await lab.rotateHostKey('shaped');
    expect(after).not.toBe(before);
    expect(lab.device('shaped').hostKeyFingerprint).toBe(after);
    expect(scannedFingerprint(lab.device('shaped').host)).toBe(after);
  });

  it('lists the processes of a namespace and builds SSH targets', async () => {
    const procs = await lab.processes('srv');
    expect(procs.map((p) => p.argv.slice(0, 2))).toContainEqual(['iperf3', '-s']);
    expect(lab.sshTarget('drop')).toMatchObject({ id: 'drop', host: lab.device('drop').host, port: 22, username: 'ipl' });
    expect(lab.sshTarget('drop').privateKey).toEqual(lab.clientKey.privateKey);
    expect(lab.sshTarget('drop', 'password')).toMatchObject({ password: 'pw-drop' });
    await expect(lab.processes('nope')).rejects.toThrow(/no host 'nope'/);
  });

  it('reports a clear error for bad input', async () => {
    await expect(createLab({ name: 'ldup', devices: [{ id: 'a', ssh: 'openssh' }], servers: [{ id: 'a' }] })).rejects.toThrow(
      /host id 'a' is used twice/,
    );
    await expect(createLab({ name: 'Bad-Name' })).rejects.toThrow(/must match/);
    await expect(createLab({ name: 'toolong' })).rejects.toThrow(/must match/);
    const n = Number(lab.subnet.split('.')[2]);
    await expect(createLab({ name: 'lsub', subnet: n })).rejects.toThrow(new RegExp(`already used by interface ipl-${lab.name}-br`));
    await expect(createLab({ name: 'lbad', devices: [{ id: 'x', ssh: 'dropbear', sshdOptions: ['MaxSessions 1'] }] })).rejects.toThrow(
      /openssh devices only/,
    );
    expect(labLeftovers(realLabName('lbad'))).toEqual([]);
    await expect(lab.setLoss('srv', 'drop', 5.5)).rejects.toThrow(/integer 0-100/);
    await expect(lab.setRate('drop', -1)).rejects.toThrow(/must be a number/);
  });
});

describe('lab lifecycle', () => {
  it('takes the next free subnet when the derived one is in use', async () => {
    const wanted = subnetNumberFor(realLabName('lnext'));
    const blocker = await createLab({ name: 'lblk', subnet: wanted });
    try {
      const next = await createLab({ name: 'lnext' });
      expect(next.subnet).toBe(`10.203.${(wanted % 254) + 1}.0/24`);
      await next.destroy();
    } finally {
      await blocker.destroy();
    }
  });

  it('runs two labs at once and destroy removes everything, twice', async () => {
    const [a, b] = await Promise.all([
      createLab({ name: 'laba', devices: [{ id: 'd', ssh: 'openssh' }], servers: [{ id: 's' }] }),
      createLab({ name: 'labb', devices: [{ id: 'd', ssh: 'dropbear' }] }),
    ]);
    expect(a.subnet).not.toBe(b.subnet);
    expect(a.name).toBe(realLabName('laba'));
    const pids = [...(await a.processes('d')), ...(await a.processes('s')), ...(await b.processes('d'))].map((p) => p.pid);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    expect(labLeftovers(a.name).length).toBeGreaterThan(0);
    await a.destroy();
    await a.destroy();
    expect(labLeftovers(a.name)).toEqual([]);
    expect(ssh(b, 'd', 'true').status).toBe(0); // the other lab is untouched
    await b.destroy();
    expect(labLeftovers(b.name)).toEqual([]);
    expect(existsSync(`/etc/netns/ipl-${a.name}-d`)).toBe(false);
    const alive = pids.filter((pid) => spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim().replace(/^Z.*/, '') !== '');
    expect(alive).toEqual([]);
  });

  it('cleanup removes labs whose owner process is gone, and keeps live ones', async () => {
    const live = await createLab({ name: 'lkeep', devices: [{ id: 'd', ssh: 'openssh' }] });
    const dead = spawnSync('true').pid!; // a process id that has exited
    const orphan = realLabName('lorph');
    execFileSync(LAB_SCRIPT, ['create', orphan, String(subnetNumberFor(orphan)), String(dead)]);
    execFileSync(LAB_SCRIPT, ['add-device', orphan, 'd', '10', 'dropbear']);
    expect(labLeftovers(orphan).length).toBeGreaterThan(0);
    expect(await cleanupLabs()).toContain(orphan);
    expect(labLeftovers(orphan)).toEqual([]);
    expect(labLeftovers(live.name).length).toBeGreaterThan(0);
    // a lab of a live owner cannot be taken over by another process
    const takeover = spawnSync(LAB_SCRIPT, ['create', live.name, '78', '1'], { encoding: 'utf8' });
    expect(takeover.stderr).toMatch(new RegExp(`lab '${live.name}' is in use by process ${process.pid}`));
    await live.destroy();
    expect(labLeftovers(live.name)).toEqual([]);
  });
});
