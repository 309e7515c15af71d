/** CheckHealth and error mapping against collectors that misbehave (fault injection). */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindApiToken } from '../../contract/settings.js';
import { checkHealth } from './checkHealth.js';
import { InstanceManager } from './instanceSettings.js';
import { describeError } from './queryErrors.js';

let web: Server;
let url: string;

beforeAll(async () => {
  web = createServer((req, res) => {
    if (req.url?.startsWith('/fields')) {
      const body = { error: 'invalid-settings', message: 'invalid settings', fields: [{ field: 'servers.0.host', message: 'unknown host' }] };
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else if (req.url?.startsWith('/html')) res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Grafana</html>');
    else res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal', message: 'database is locked' }));
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(web.address() as { port: number }).port}`;
});
afterAll(() => web.close());

function instance(collectorUrl: string) {
  return new InstanceManager().get({
    uid: collectorUrl,
    lastUpdatedMS: 1,
    jsonData: Buffer.from(JSON.stringify({ collectorUrl, servers: [{ host: '10.0.0.1' }] })),
    decryptedSecureJsonData: { apiToken: bindApiToken(collectorUrl, 't') },
  });
}

describe('checkHealth', () => {
  it('reports a collector that fails', async () => {
    const r = await checkHealth(instance(url));
    expect(r).toMatchObject({ status: 'ERROR', message: 'The collector answered HTTP 500: database is locked' });
  });

  it('reports settings the collector rejects, field by field', async () => {
    const r = await checkHealth(instance(`${url}/fields`));
    expect(r.message).toBe('The collector rejected the iperf3 settings: servers.0.host: unknown host. Fix these entries and save again.');
  });

  it('reports a URL that answers something other than JSON', async () => {
    const r = await checkHealth(instance(`${url}/html`));
    expect(r.status).toBe('ERROR');
    expect(r.message).toContain(`did not answer JSON: is ${url}/html the collector?`);
  });

  it('rejects a collector URL that is not a URL', () => {
    expect(() => instance('not a url')).toThrow('collectorUrl: must be an http:// or https:// URL');
  });
});

describe('describeError', () => {
  it('treats unexpected errors as the plugin\'s own (500)', () => {
    expect(describeError(new Error('bug'))).toEqual({ status: 500, message: 'internal error in the plugin: bug', errorSource: 'plugin' });
    expect(describeError('odd')).toMatchObject({ status: 500, message: 'internal error in the plugin: odd' });
  });
});
