import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COLLECTOR_VERSION } from '../version.js';
import { openApiDocument } from './openapi.js';

interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: unknown }>>;
}

describe('the OpenAPI document', () => {
  it('is generated from the route schemas and committed as docs/openapi.json (npm run openapi)', async () => {
    const generated = (await openApiDocument(COLLECTOR_VERSION)) as OpenApi;
    const committed = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as OpenApi;
    expect(committed, 'docs/openapi.json is stale: run npm run openapi').toEqual(JSON.parse(JSON.stringify(generated)));
  });

  it('documents every API route with the parameters its schema validates', async () => {
    const doc = (await openApiDocument(COLLECTOR_VERSION)) as OpenApi;
    expect(doc.openapi).toBe('3.1.0');
    const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    expect(ops.sort()).toEqual(
      [
        'GET /api/v1/devices',
        'GET /api/v1/devices/export',
        'POST /api/v1/devices',
        'PATCH /api/v1/devices/{id}',
        'DELETE /api/v1/devices/{id}',
        'GET /api/v1/health',
        'GET /api/v1/latest',
        'GET /api/v1/runs',
        'GET /api/v1/runs/{id}',
        'GET /api/v1/runs/{id}/intervals',
        'GET /api/v1/series',
        'GET /api/v1/servers',
        'GET /api/v1/settings',
        'POST /api/v1/runs',
        'PUT /api/v1/settings',
      ].sort(),
    );
    const names = (path: string) => (doc.paths[path].get.parameters ?? []).map((p) => p.name);
    expect(names('/api/v1/series')).toEqual(['device', 'metric', 'from', 'to', 'maxPoints', 'server', 'direction', 'splitByServer', 'format']);
    expect(names('/api/v1/runs/{id}')).toEqual(['id']);
    expect(doc.paths['/api/v1/runs'].post.requestBody).toBeDefined();
    expect(doc.paths['/api/v1/settings'].put.requestBody).toBeDefined();
    expect(doc.paths['/api/v1/devices'].post.requestBody).toBeDefined();
    expect(((doc.paths['/api/v1/devices/{id}'].delete.parameters ?? []) as { name: string }[]).map((p) => p.name)).toEqual(['history', 'id']);
  });
});
