/**
 * One error format for every answer the API does not want to give: an ApiErrorBody naming the
 * parameter or field and the fix. Typed errors of the core become 404/409/400; schema failures
 * of the route's zod schemas become 400 with one entry per bad field.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiErrorBody } from '../../contract/api.js';
import { formatFieldErrors, type FieldError } from '../../contract/settings.js';
import { DeviceIdTakenError, DeviceManagedByFileError, DeviceRejectedError, DevicesBusyError, SettingsRejectedError, StoreBusyError, UnknownDevicesError } from '../errors.js';

/** How to fix the client errors fastify raises itself (its messages say what, not how). */
const FIXES: Partial<Record<number, string>> = {
  413: 'the body is larger than the collector accepts',
  415: 'send the body as JSON with "Content-Type: application/json"',
};

export function sendError(reply: FastifyReply, status: number, body: ApiErrorBody): FastifyReply {
  return reply.code(status).send(body);
}

/** Field errors of a failed parse; an unknown top-level parameter or field is named as its own field. */
export function issueErrors(issues: readonly z.core.$ZodIssue[], known: readonly string[], what = 'parameter'): FieldError[] {
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 0
      ? issue.keys.map((key) => ({ field: key, message: `unknown ${what}; known: ${known.join(', ')}` }))
      : [{ field: issue.path.map(String).join('.') || '(root)', message: issue.message }],
  );
}

/** The parameter names a route's schema for `part` knows (for "unknown parameter" answers). */
function knownKeys(request: FastifyRequest, part: string): string[] {
  // only routes with a zod object schema for `part` reach here: their validation failed
  const schema = (request.routeOptions.schema as Record<string, { shape: Record<string, unknown> }>)[part];
  return Object.keys(schema.shape);
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, { error: 'not-found', message: `no route ${request.method} ${request.url.split('?')[0]}; docs/api.md lists the routes` }),
  );

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const part = String(err.validationContext); // querystring, params or body
      // the type provider passes each zod issue as code (keyword), path (instancePath), message and the rest in params
      const issues = err.validation.map(
        (v) => ({ ...v.params, code: v.keyword, message: v.message, path: v.instancePath.split('/').filter((p) => p !== '') }) as unknown as z.core.$ZodIssue,
      );
      const fields = issueErrors(issues, knownKeys(request, part), part === 'body' ? 'field' : 'parameter');
      return sendError(reply, 400, { error: 'invalid-request', message: formatFieldErrors(fields), fields });
    }
    if (err instanceof UnknownDevicesError) return sendError(reply, 404, { error: 'unknown-device', message: err.message });
    if (err instanceof DevicesBusyError) return sendError(reply, 409, { error: 'already-running', message: err.message });
    if (err instanceof DeviceManagedByFileError) return sendError(reply, 409, { error: 'managed-by-file', message: err.message });
    if (err instanceof DeviceIdTakenError) return sendError(reply, 409, { error: 'device-exists', message: err.message });
    if (err instanceof DeviceRejectedError) return sendError(reply, 400, { error: 'device-rejected', message: err.message, fields: err.fields });
    if (err instanceof StoreBusyError) return sendError(reply, 503, { error: 'busy', message: err.message });
    if (err instanceof SettingsRejectedError) return sendError(reply, 400, { error: 'settings-rejected', message: err.message, fields: err.fields });
    const status = err.statusCode ?? 500;
    if (status < 500) {
      // fastify's own errors (bad JSON, wrong content type, body too large) carry clear messages
      const error = (STATUS_CODES[status] as string).toLowerCase().replace(/[^a-z]+/g, '-');
      const fix = FIXES[status];
      return sendError(reply, status, { error, message: fix ? `${err.message}; ${fix}` : err.message });
    }
    request.log.error({ err }, 'request failed');
    return sendError(reply, 500, { error: 'internal', message: 'internal error; the collector log has the details' });
  });
}
