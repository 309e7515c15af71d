/**
 * The collector API fuzzed by schemathesis (PyPI, installed by .ci/run) from docs/openapi.json,
 * the document generated from the same zod schemas that validate the requests: every operation
 * gets generated valid and invalid requests, and must answer without a server error and within
 * its documented response schema.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../collector/config/load.js';
import { ClassifiedError } from '../../collector/model.js';
import { startService, type Service } from '../../collector/service.js';
import { REPO_ROOT } from '../support/pluginProcess.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
let service: Service;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fuzz-'));
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'key'), 'k');
  // devices added by the fuzzer name files in this folder (POST /api/v1/devices answers 201 for them)
  mkdirSync(join(dir, 'credentials'));
  for (const name of ['0', 'a', 'A', 'key']) writeFileSync(join(dir, 'credentials', name), 'k');
  const loaded = loadConfigText(
    `apiTokenFile: token
deviceCredentialsDir: credentials
listen: 127.0.0.1:0
database: ./fuzz.db
servers: [{ host: 127.0.0.1 }]
devices:
  - { id: r1, host: 192.0.2.1, username: root, privateKeyFile: key, labels: { site: lab } }
`,
    join(dir, 'collector.yaml'),
  );
  // run-now requests are fuzzed too: the device is unreachable at once (no network is touched)
  const connector = { connect: async () => Promise.reject(new ClassifiedError('unreachable', 'fuzzing: no device')) };
  service = await startService(loaded, pino({ level: 'silent' }), { connector, schedule: false });
});

afterAll(async () => {
  await service?.close();
});

describe('the collector API under schemathesis', () => {
  it('answers every generated request without a server error and inside its documented schema', { timeout: 300_000 }, async () => {
    // asynchronous: the collector answers from this very process
    const st = await promisify(execFile)(
      'st',
      [
        'run',
        join(REPO_ROOT, 'docs/openapi.json'),
        '--url',
        service.url,
        '-H',
        `Authorization: Bearer ${TOKEN}`,
        '--max-examples',
        '25',
        '--checks',
        'not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance',
        '--phases',
        'coverage,fuzzing',
        '--seed',
        '20261205',
        '--generation-deterministic',
      ],
      { encoding: 'utf8', cwd: dir, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_TELEMETRY: 'false' } },
    ).catch((err: NodeJS.ErrnoException & { stdout?: string }) => {
      if (err.code === 'ENOENT') throw new Error('schemathesis (st) is not installed: pip install schemathesis==4.32.5 (.ci/run does)');
      throw new Error(`schemathesis found problems:\n${(err.stdout ?? '').slice(-6000)}`);
    });
    const summary = /(\d+) generated, (\d+) passed/.exec(st.stdout);
    expect(summary, st.stdout.slice(-2000)).not.toBeNull();
    expect(Number(summary![1])).toBeGreaterThan(100);
    expect(summary![2]).toBe(summary![1]);
  });
});
