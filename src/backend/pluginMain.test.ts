/** Start-up and shutdown of the plugin in-process, with a recorded process and logger. */
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createPluginLogger, hclogTimestamp } from './logger.js';
import { runPlugin, type PluginProcess } from './pluginMain.js';
import { PluginClient } from '../../tests/support/pluginClient.js';

function recorder() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createPluginLogger({ destination: destination as unknown as pino.DestinationStream }) };
}

function fakeProcess(env: Record<string, string>) {
  const signals = new Map<string, () => void>();
  const out: string[] = [];
  const err: string[] = [];
  const exits: number[] = [];
  const proc: PluginProcess = {
    env,
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    on: (signal, listener) => signals.set(signal, listener),
    exit: (code) => exits.push(code),
  };
  return { proc, signals, out, err, exits };
}

const GRAFANA_ENV = { grafana_plugin_type: 'datasource', PLUGIN_PROTOCOL_VERSIONS: '2' };

describe('runPlugin', () => {
  it('listens, prints the handshake and stops on SIGTERM', async () => {
    const { lines, logger } = recorder();
    const p = fakeProcess({ ...GRAFANA_ENV, GF_VERSION: '12.0.0' });
    const started = await runPlugin(p.proc, logger);
    expect(started).not.toBeNull();
    expect(p.out).toEqual([`1|2|tcp|127.0.0.1:${started!.server.port}|grpc\n`]);
    p.signals.get('SIGINT')?.();
    expect(lines.at(-1)?.['@message']).toMatch(/^ignoring SIGINT/);
    p.signals.get('SIGTERM')?.();
    expect(await started!.stopped).toBe(0);
    expect(p.exits).toEqual([0]);
  });

  it('stops on GRPCController/Shutdown, and Health reports NOT_SERVING while stopping', async () => {
    const { logger } = recorder();
    const p = fakeProcess({ grafana_plugin_type: 'datasource' });
    const started = await runPlugin(p.proc, logger);
    const client = new PluginClient(`127.0.0.1:${started!.server.port}`);
    try {
      await client.shutdown();
      expect(await started!.stopped).toBe(0);
      expect(p.exits).toEqual([0]);
    } finally {
      client.close();
    }
  });

  it('refuses to start without the magic cookie or with another protocol version', async () => {
    const { lines, logger } = recorder();
    const direct = fakeProcess({});
    expect(await runPlugin(direct.proc, logger)).toBeNull();
    expect(direct.exits).toEqual([1]);
    expect(direct.out).toEqual([]);
    expect(direct.err.join('')).toContain('not meant to be run directly');
    const v1 = fakeProcess({ grafana_plugin_type: 'datasource', PLUGIN_PROTOCOL_VERSIONS: '1' });
    expect(await runPlugin(v1.proc, logger)).toBeNull();
    expect(v1.exits).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({ '@level': 'error', offered: ['1'] });
  });

  it('reports a bad or full port range', async () => {
    const { lines, logger } = recorder();
    const bad = fakeProcess({ ...GRAFANA_ENV, PLUGIN_MIN_PORT: 'x', PLUGIN_MAX_PORT: '10' });
    expect(await runPlugin(bad.proc, logger)).toBeNull();
    expect(bad.exits).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({ '@level': 'error', error: 'PLUGIN_MIN_PORT must be a port number, got "x"' });
    const reversed = fakeProcess({ ...GRAFANA_ENV, PLUGIN_MIN_PORT: '20', PLUGIN_MAX_PORT: '10' });
    expect(await runPlugin(reversed.proc, logger)).toBeNull();
    expect(lines.at(-1)?.error).toContain('is greater than PLUGIN_MAX_PORT');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const full = fakeProcess({ ...GRAFANA_ENV, PLUGIN_MIN_PORT: String(port), PLUGIN_MAX_PORT: String(port) });
      expect(await runPlugin(full.proc, logger)).toBeNull();
      expect(lines.at(-1)?.error).toBe(`no free port from ${port} to ${port} (PLUGIN_MIN_PORT/PLUGIN_MAX_PORT)`);
    } finally {
      taken.close();
    }
  });
});

describe('PluginServer.stop', () => {
  it('cuts calls still in flight after the grace period', async () => {
    const { createServer: createHttpServer } = await import('node:http');
    const hanging = createHttpServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const { PluginServer } = await import('./pluginServer.js');
    const { logger } = recorder();
    const server = new PluginServer({ logger });
    const port = await server.listen();
    const client = new PluginClient(`127.0.0.1:${port}`);
    try {
      const settings = {
        jsonData: { collectorUrl: `http://127.0.0.1:${(hanging.address() as { port: number }).port}` },
        secure: { apiToken: 't' },
      };
      const pending = client.queryData(settings, [{ refId: 'A', json: { queryType: 'latest' }, fromMs: 0, toMs: 1 }]).catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await server.stop(50);
      expect(await server.stop()).toBeUndefined();
      expect(String(await pending)).toMatch(/CANCELLED|UNAVAILABLE|Call cancelled/);
    } finally {
      client.close();
      hanging.closeAllConnections();
      hanging.close();
    }
  });
});

describe('logger', () => {
  it('writes hclog JSON with microsecond timestamps and redacts secrets', () => {
    const { lines, logger } = recorder();
    logger.warn({ apiToken: 'tok', nested: { iperf3Password: 'pw' } }, 'hello');
    logger.fatal('boom');
    logger.trace('hidden at debug level');
    expect(lines[0]).toMatchObject({ '@level': 'warn', '@message': 'hello', apiToken: '[redacted]', nested: { iperf3Password: '[redacted]' } });
    expect(lines[1]).toMatchObject({ '@level': 'error', '@message': 'boom' });
    expect(lines).toHaveLength(2);
    expect(hclogTimestamp(new Date('2025-01-02T03:04:05.678Z'))).toBe('2025-01-02T03:04:05.678000Z');
  });
});
