import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiErrorBody } from '../../contract/api.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * An onRequest hook requiring `Authorization: Bearer <token>`. Both sides are hashed first so
 * that the comparison is constant-time whatever the lengths; the token never appears in answers.
 */
export function bearerTokenHook(token: string) {
  if (token.trim() === '') throw new Error('the API token is empty; set a token (at least 16 random characters) in the token file');
  const expected = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    const problem =
      header === undefined
        ? 'missing Authorization header; send "Authorization: Bearer <token>" with the collector API token'
        : match === null
          ? 'the Authorization header must be "Bearer <token>"'
          : timingSafeEqual(digest(match[1]), expected)
            ? null
            : 'wrong API token; use the token the collector was configured with';
    if (problem === null) return undefined;
    const body: ApiErrorBody = { error: 'unauthorized', message: problem };
    // returning the reply tells fastify the answer is sent and the route must not run
    return reply.code(401).header('www-authenticate', 'Bearer realm="iperf3-collector"').send(body);
  };
}
