import { Metadata, status, type handleUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { ConfigFieldError, Role } from '@wsmon/contracts';
import { bearer } from '../auth/api-key.guard';
import type { ApiKeysService } from '../auth/api-keys.service';
import type { AuthenticatedKey } from '../auth/current-api-key';
import { hasRole } from '../auth/roles';
import {
  AlreadyExistsError,
  DomainError,
  InvalidArgumentError,
  PermissionDeniedError,
} from '../common/errors';

const CODE: Record<DomainError['kind'], status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  conflict: status.FAILED_PRECONDITION,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
};

/**
 * google.rpc.Status with a google.rpc.BadRequest detail, encoded by hand: two small messages do
 * not justify generating the googleapis protos. Generic clients decode it from
 * `grpc-status-details-bin`.
 */
function statusDetails(code: status, message: string, violations: readonly ConfigFieldError[]): Buffer {
  const badRequest = new BinaryWriter();
  for (const v of violations) {
    const violation = new BinaryWriter()
      .uint32(10)
      .string(v.path)
      .uint32(18)
      .string(v.message)
      .uint32(26)
      .string(v.rule);
    badRequest.uint32(10).bytes(violation.finish());
  }
  const any = new BinaryWriter()
    .uint32(10)
    .string('type.googleapis.com/google.rpc.BadRequest')
    .uint32(18)
    .bytes(badRequest.finish());
  return Buffer.from(
    new BinaryWriter()
      .uint32(8)
      .int32(code)
      .uint32(18)
      .string(message)
      .uint32(26)
      .bytes(any.finish())
      .finish(),
  );
}

/** A domain error as a gRPC status; anything else is INTERNAL and says nothing of its insides. */
export function toServiceError(error: unknown, fieldPrefix = ''): Partial<ServiceError> {
  if (!(error instanceof DomainError)) return { code: status.INTERNAL, details: 'internal error' };
  const code = error instanceof AlreadyExistsError ? status.ALREADY_EXISTS : CODE[error.kind];
  if (!(error instanceof InvalidArgumentError)) return { code, details: error.message };
  // Field paths are relative to the request message: `test.probe.url`.
  const violations = error.fieldErrors.map((e) => ({
    ...e,
    path: fieldPrefix ? `${fieldPrefix}.${e.path}` : e.path,
    message: fieldPrefix ? `${fieldPrefix}.${e.message}` : e.message,
  }));
  const details = violations.map((v) => v.message).join('; ');
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', statusDetails(code, details, violations));
  return { code, details, metadata };
}

/**
 * A unary handler that authenticates the `authorization: Bearer <key>` metadata, checks the
 * role and maps errors to statuses. An error never escapes to grpc-js.
 */
export function unary<Request, Response>(
  apiKeys: ApiKeysService,
  role: Role,
  handle: (request: Request, key: AuthenticatedKey) => Promise<Response>,
  fieldPrefix = '',
): handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const run = async () => {
      const header = call.metadata.get('authorization')[0];
      const key = await apiKeys.authenticate(bearer(typeof header === 'string' ? header : undefined));
      if (!hasRole(key.role, role))
        throw new PermissionDeniedError(`this needs the ${role} role; the key has ${key.role}`);
      return handle(call.request, key);
    };
    run().then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error, fieldPrefix)),
    );
  };
}
