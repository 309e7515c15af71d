import type { apiSchemas } from '../../../contract/apiParams.js';
import type { ApiLimits } from '../../../contract/apiParams.js';
import { apiErrorBodySchema } from '../../../contract/apiResponses.js';
import type { ApiDeps } from '../types.js';

/** Error answers every authenticated route may give (documented so that clients and fuzzers know them). */
export const ERROR_RESPONSES = { '4xx': apiErrorBodySchema, 500: apiErrorBodySchema, 503: apiErrorBodySchema } as const;

/** What every route plugin receives from buildApi. */
export interface RouteDeps {
  deps: ApiDeps;
  limits: ApiLimits;
  schemas: ReturnType<typeof apiSchemas>;
  /** ISO time reported by GET /api/v1/health */
  startedAt: string;
}
