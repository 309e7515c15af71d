/**
 * The OpenAPI document of the collector API, generated from the routes' zod schemas (the same
 * ones that validate requests). `npm run openapi` writes it to docs/openapi.json; a test fails
 * when the committed file differs from what the code generates.
 */
import type { Store } from '../store/store.js';
import type { Telemetry } from '../telemetry.js';
import { buildApi } from './app.js';
import type { CollectorControl } from './types.js';

/** Generation registers routes only and serves no request, so the dependencies are never used. */
const unused = {};

export async function openApiDocument(version: string): Promise<unknown> {
  const app = buildApi({
    store: unused as Store,
    telemetry: unused as Telemetry,
    control: unused as CollectorControl,
    token: 'openapi-generation-only',
    version,
    startedAt: new Date(0),
  });
  await app.ready();
  const doc = app.swagger();
  await app.close();
  return doc;
}
