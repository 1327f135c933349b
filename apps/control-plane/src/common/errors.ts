import type { ConfigFieldError } from '@wsmon/contracts';

/**
 * Domain errors, raised by services and mapped once per transport: to HTTP statuses by the
 * REST exception filter, to gRPC status codes by the gRPC handlers.
 */
export abstract class DomainError extends Error {
  abstract readonly kind:
    'invalid_argument' | 'not_found' | 'conflict' | 'unauthenticated' | 'permission_denied';
}

export class InvalidArgumentError extends DomainError {
  readonly kind = 'invalid_argument';
  constructor(readonly fieldErrors: readonly ConfigFieldError[]) {
    super(`invalid request: ${fieldErrors.map((e) => e.message).join('; ')}`);
  }
}

export class NotFoundError extends DomainError {
  readonly kind = 'not_found';
  constructor(resource: string, key: string) {
    super(`${resource} ${JSON.stringify(key)} does not exist`);
  }
}

/** The request conflicts with the current state (a location in use, the last admin key). */
export class ConflictError extends DomainError {
  readonly kind = 'conflict';
}

/** A resource with that name exists already: 409 on REST, ALREADY_EXISTS on gRPC. */
export class AlreadyExistsError extends ConflictError {}

export class UnauthenticatedError extends DomainError {
  readonly kind = 'unauthenticated';
}

export class PermissionDeniedError extends DomainError {
  readonly kind = 'permission_denied';
}

/** The field errors of a failed parse, as a domain error. */
export function invalid(path: string, rule: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError([{ path, rule, message: `${path}: ${message}` }]);
}
