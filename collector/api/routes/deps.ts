import type { apiSchemas } from '../../../contract/apiParams.js';
import type { ApiLimits } from '../../../contract/apiParams.js';
import type { ApiDeps } from '../types.js';

/** What every route plugin receives from buildApi. */
export interface RouteDeps {
  deps: ApiDeps;
  limits: ApiLimits;
  schemas: ReturnType<typeof apiSchemas>;
  /** ISO time reported by GET /api/v1/health */
  startedAt: string;
}
