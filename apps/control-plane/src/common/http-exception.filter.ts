import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import type { ConfigFieldError } from '@wsmon/contracts';
import { DomainError, InvalidArgumentError } from './errors';

/** The one JSON shape of every REST error. */
export interface ErrorBody {
  readonly error: {
    readonly status: number;
    readonly code: string;
    readonly message: string;
    readonly field_errors?: readonly ConfigFieldError[];
  };
}

const STATUS: Record<DomainError['kind'], number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  conflict: 409,
};

const CODE_OF_STATUS: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body = this.toBody(exception);
    response.status(body.error.status).json(body);
  }

  private toBody(exception: unknown): ErrorBody {
    if (exception instanceof DomainError) {
      const status = STATUS[exception.kind];
      const fieldErrors =
        exception instanceof InvalidArgumentError ? { field_errors: exception.fieldErrors } : {};
      return { error: { status, code: exception.kind, message: exception.message, ...fieldErrors } };
    }
    if (exception instanceof HttpException) {
      // Nest's own: unknown routes (404), malformed JSON bodies (400), oversized bodies (413).
      const status = exception.getStatus();
      return { error: { status, code: CODE_OF_STATUS[status] ?? 'error', message: exception.message } };
    }
    this.logger.error(
      exception instanceof Error ? (exception.stack ?? exception.message) : String(exception),
    );
    return { error: { status: 500, code: 'internal', message: 'internal error' } };
  }
}
