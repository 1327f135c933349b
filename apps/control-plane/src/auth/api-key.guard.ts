import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import type { Role } from '@wsmon/contracts';
import { PermissionDeniedError } from '../common/errors';
import { ApiKeysService } from './api-keys.service';
import type { AuthenticatedRequest } from './current-api-key';
import { hasRole, PUBLIC, REQUIRED_ROLE } from './roles';

/** Every REST handler: a valid bearer key with at least the handler's role. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, targets)) return true;
    // A handler that forgot to name a role is admin-only rather than open.
    const required = this.reflector.getAllAndOverride<Role>(REQUIRED_ROLE, targets) ?? 'admin';
    const request = context.switchToHttp().getRequest<Request>();
    const key = await this.apiKeys.authenticate(bearer(request.headers.authorization));
    (request as AuthenticatedRequest).apiKey = key;
    if (!hasRole(key.role, required)) {
      throw new PermissionDeniedError(`this needs the ${required} role; the key has ${key.role}`);
    }
    return true;
  }
}

export function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
