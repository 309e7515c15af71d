/**
 * Metric reads in worker threads: the event loop stays free during a long series query (an
 * HTTP /healthz answers before it), the queue is bounded (503), and a reader that cannot work
 * fails its reads with the reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../api/app.js';
import { StoreBusyError } from '../../errors.js';
import { Telemetry } from '../../telemetry.js';
import { TestControl } from '../../../tests/support/fakeControl.js';
import { ReadPool } from './readPool.js';
import { SqliteStore } from './sqliteStore.js';

const TOKEN = 'pool-test-token-0123456789abcdef';
const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** enough rows that the bucketed scan takes a good part of a second on a CI machine */
const ROWS = 250_000;
const DEVICES = 50;

let dir: string;
let path: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'read-pool-'));
  path = join(dir, 'collector.db');
  void SqliteStore.open(path).close(); // the real schema
  const db = new Database(path);
  db.prepare("INSERT INTO runs (id, device, trigger, status, started_at) VALUES (1, 'dev-0', 'schedule', 'ok', ?)").run(T0);
  db.prepare(
    `WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < ${ROWS - 1})
     INSERT INTO metrics (run_id, device, server, direction, name, value, time_ms, failed)
     SELECT 1, 'dev-' || (n % ${DEVICES}), 's:5201', CASE (n / ${DEVICES}) % 2 WHEN 0 THEN 'upload' ELSE 'download' END, 'tcp_received_bps', n % 1000, ? + n * 1000, 0 FROM i`,
  ).run(T0);
  db.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const everything = { devices: 'all' as const, metrics: ['tcp_received_bps' as const], fromMs: T0, toMs: T0 + ROWS * 1000, maxPoints: 100 };

describe('SQLite metric reads off the event loop', () => {
  it('answers /healthz over HTTP while a series query over every row is still running', async () => {
    const store = SqliteStore.open(path);
    const events: string[] = [];
    let started!: () => void;
    const seriesStarted = new Promise<void>((resolve) => (started = resolve));
    // the API's store, reporting when its series query starts and ends
    const metrics = {
      series: store.metrics.series.bind(store.metrics),
      seriesBlock: async (q: Parameters<typeof store.metrics.seriesBlock>[0]) => {
        events.push('series started');
        started();
        const result = await store.metrics.seriesBlock(q);
        events.push('series done');
        return result;
      },
      latest: store.metrics.latest.bind(store.metrics),
    };
    const app: FastifyInstance = buildApi({ store: Object.assign(Object.create(store) as SqliteStore, { metrics }), telemetry: new Telemetry(), token: TOKEN, version: '0', control: new TestControl() });
    app.addHook('onResponse', async (request) => {
      if (request.url === '/healthz') events.push('healthz answered');
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const series = fetch(`${url}/api/v1/series?device=all&metric=tcp_received_bps&from=${everything.fromMs}&to=${everything.toMs}&maxPoints=100`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      await seriesStarted;
      const health = await fetch(`${url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      const body = (await (await series).json()) as { series: { points: unknown[] }[] };
      // every device, both directions, reduced to 100 points each
      expect(body.series).toHaveLength(DEVICES * 2);
      expect(body.series.every((s) => s.points.length === 100)).toBe(true);
      expect(events).toEqual(['series started', 'healthz answered', 'series done']);
    } finally {
      await app.close();
      await store.close();
    }
  });

  it('answers latest values from the readers too', async () => {
    const store = SqliteStore.open(path, { readers: 1 });
    try {
      const before = await store.metrics.latest({ devices: ['dev-1'], metrics: ['tcp_received_bps'] });
      expect(before.map((v) => [v.direction, v.timeMs])).toEqual([
        ['download', T0 + (ROWS - 49) * 1000],
        ['upload', T0 + (ROWS - 99) * 1000],
      ]);
    } finally {
      await store.close();
    }
  });
});

describe('ReadPool', () => {
  it('runs at most `size` reads, queues `maxQueued`, and refuses the next with StoreBusyError', async () => {
    const pool = new ReadPool(path, { size: 1, maxQueued: 1 });
    try {
      const sql = 'SELECT count(*) FROM metrics WHERE value >= ?';
      const first = pool.all(sql, [0]);
      const second = pool.all(sql, [500]);
      await expect(pool.all(sql, [999])).rejects.toThrow(StoreBusyError);
      await expect(pool.all(sql, [999])).rejects.toThrow(/busy: 1 metric queries are running and 1 are waiting; retry in a few seconds/);
      expect(await first).toEqual([[ROWS]]);
      expect(await second).toEqual([[ROWS / 2]]);
      // the queue drained: reads are accepted again
      expect(await pool.all('SELECT 1 + ?', [1])).toEqual([[2]]);
    } finally {
      await pool.close();
    }
  });

  it('fails a read with the database error and keeps serving the next ones', async () => {
    const pool = new ReadPool(path, { size: 1 });
    try {
      await expect(pool.all('SELECT nope FROM metrics', [])).rejects.toMatchObject({ message: expect.stringContaining('no such column: nope'), code: 'SQLITE_ERROR' });
      // read-only: a write is refused
      await expect(pool.all('DELETE FROM metrics RETURNING 1', [])).rejects.toThrow('attempt to write a readonly database');
      expect(await pool.all('SELECT count(*) FROM runs', [])).toEqual([[1]]);
    } finally {
      await pool.close();
    }
  });

  it('fails reads with the reason when a reader cannot open the file, and replaces it for queued reads', async () => {
    const pool = new ReadPool(join(dir, 'missing.db'), { size: 1 });
    try {
      const reads = [pool.all('SELECT 1', []), pool.all('SELECT 2', [])];
      const results = await Promise.allSettled(reads);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      for (const r of results) expect(String((r as PromiseRejectedResult).reason)).toMatch(/^Error: cannot read the database .*missing\.db: /);
    } finally {
      await pool.close();
    }
  });

  it('refuses reads once closed, and fails the queued ones', async () => {
    const pool = new ReadPool(path, { size: 1 });
    const running = pool.all('SELECT count(*) FROM metrics', []);
    const queued = pool.all('SELECT 1', []);
    const failed = [expect(queued).rejects.toThrow('the store is closed'), expect(running).rejects.toThrow('the store is closed')];
    await pool.close();
    await Promise.all(failed);
    await expect(pool.all('SELECT 1', [])).rejects.toThrow('the store is closed');
  });
});
