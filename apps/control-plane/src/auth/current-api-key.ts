import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { Role } from '@wsmon/contracts';

/** The key a request was authenticated with. */
export interface AuthenticatedKey {
  readonly id: string;
  readonly role: Role;
}

/** ApiKeyGuard leaves the key it authenticated on the request, for the handlers that record who asked. */
export type AuthenticatedRequest = Request & { apiKey?: AuthenticatedKey };

/** The handler parameter that receives the request's API key; undefined on public handlers. */
export const CurrentApiKey = createParamDecorator(
  (_: unknown, context: ExecutionContext): AuthenticatedKey | undefined =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().apiKey,
);
