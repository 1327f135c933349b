import type { ServiceError } from '@grpc/grpc-js';
import { BinaryReader } from '@bufbuild/protobuf/wire';

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
  readonly reason: string;
}

/**
 * The google.rpc.BadRequest field violations of an error, decoded from `grpc-status-details-bin`
 * (google.rpc.Status → details: Any → BadRequest) as a generic gRPC client would.
 */
export function fieldViolations(error: ServiceError): FieldViolation[] {
  const found: FieldViolation[] = [];
  const [bin] = error.metadata.get('grpc-status-details-bin');
  if (!(bin instanceof Buffer)) return found;
  const statusMessage = new BinaryReader(bin);
  while (statusMessage.pos < statusMessage.len) {
    const [field, wireType] = statusMessage.tag();
    if (field !== 3) {
      statusMessage.skip(wireType);
      continue;
    }
    const any = new BinaryReader(statusMessage.bytes());
    while (any.pos < any.len) {
      const [anyField, anyWireType] = any.tag();
      if (anyField !== 2) {
        any.skip(anyWireType);
        continue;
      }
      const badRequest = new BinaryReader(any.bytes());
      while (badRequest.pos < badRequest.len) {
        badRequest.tag();
        const violation = new BinaryReader(badRequest.bytes());
        const decoded = { field: '', description: '', reason: '' };
        while (violation.pos < violation.len) {
          const [f] = violation.tag();
          const text = violation.string();
          if (f === 1) decoded.field = text;
          else if (f === 2) decoded.description = text;
          else if (f === 3) decoded.reason = text;
        }
        found.push(decoded);
      }
    }
  }
  return found;
}
