// Admin API errors: one JSON shape with a stable code.
import type { FastifyReply } from 'fastify';
import type { ErrorCode } from '../errors.ts';

export interface ApiError {
  readonly error: { readonly code: ErrorCode; readonly message: string };
}

export function sendError(reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
  const body: ApiError = { error: { code, message } };
  return reply.code(status).send(body);
}
