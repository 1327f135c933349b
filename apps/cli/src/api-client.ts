import type { Command } from 'commander';
import type { ConfigFieldError } from '@wsmon/contracts';
import { UsageError, type CliIo } from './cli-io';

/** Where the control plane listens when neither `--server` nor `WSMON_SERVER` says. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** How long one request may take, beyond any time the server was asked to wait. */
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_PAGE_SIZE = 200;

/** The flags every command that talks to the control plane takes. */
export interface ServerFlags {
  readonly server?: string;
  readonly apiKey?: string;
}

/** Adds `--server` and `--api-key` to a command (the environment variables are preferred for the key). */
export function withServerOptions(command: Command): Command {
  return command
    .optionsGroup('Control plane:')
    .option(
      '--server <url>',
      `the control plane's HTTP address (env WSMON_SERVER; default ${DEFAULT_SERVER})`,
    )
    .option(
      '--api-key <key>',
      'API key; prefer the environment variable WSMON_API_KEY, which other users cannot see',
    );
}

/**
 * An error answer of the REST API, in its one shape `{error: {status, code, message, field_errors?}}`,
 * or a control plane that could not be reached (`status` 0).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fieldErrors: readonly ConfigFieldError[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The message, then one line per field error (the API's messages already name the field). */
  lines(): string[] {
    const head = this.status === 0 ? this.message : `${this.message} (HTTP ${this.status} ${this.code})`;
    return [head, ...this.fieldErrors.map((e) => `${e.message} [${e.rule}]`)];
  }

  /** The same refusal, its message prefixed with what was being done and its field errors rewritten. */
  about(context: string, field: (error: ConfigFieldError) => ConfigFieldError = (e) => e): ApiError {
    return new ApiError(this.status, this.code, `${context}: ${this.message}`, this.fieldErrors.map(field));
  }
}

export interface Page<T> {
  readonly items: T[];
  readonly next_page_token: string | null;
}

type Query = Record<string, string | number | boolean | undefined>;

/** A small client of the control plane's REST API (`/api/v1`), authenticated by an API key. */
export class ApiClient {
  constructor(
    /** Without a trailing slash; may carry a path prefix (a reverse proxy's). */
    readonly baseUrl: string,
    private readonly apiKey: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  get<T>(path: string, query?: Query, extraTimeoutMs = 0): Promise<T> {
    return this.request<T>('GET', path, undefined, query, extraTimeoutMs);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }

  /** Every item of a paginated list, page by page. */
  async all<T>(path: string, query: Query = {}): Promise<T[]> {
    const items: T[] = [];
    let token: string | undefined;
    do {
      const page = await this.get<Page<T>>(path, { ...query, page_size: MAX_PAGE_SIZE, page_token: token });
      items.push(...page.items);
      token = page.next_page_token ?? undefined;
    } while (token);
    return items;
  }

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query: Query = {},
    extraTimeoutMs = 0,
  ): Promise<T> {
    const url = new URL(`${this.baseUrl}/api/v1${path}`);
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers: {
          authorization: `Bearer ${this.apiKey}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS + extraTimeoutMs),
      });
    } catch (error) {
      throw new ApiError(
        0,
        'unreachable',
        `cannot reach the control plane at ${this.baseUrl}: ${why(error)}`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw errorOf(response, parsed, method, url.pathname);
    return parsed as T;
  }
}

function why(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if ((error as { name?: unknown }).name === 'TimeoutError') return 'no answer in time';
  return typeof cause?.message === 'string' ? cause.message : String((error as Error)?.message ?? error);
}

function errorOf(response: Response, body: unknown, method: string, path: string): ApiError {
  const error = (body as { error?: Partial<ApiError & { field_errors: ConfigFieldError[] }> } | undefined)
    ?.error;
  if (error && typeof error.message === 'string') {
    const fields = Array.isArray(error.field_errors) ? error.field_errors : [];
    // The message of a 400 repeats its field errors, which are listed one per line instead.
    const message = fields.length ? 'invalid request' : error.message;
    return new ApiError(
      response.status,
      typeof error.code === 'string' ? error.code : 'error',
      message,
      fields,
    );
  }
  return new ApiError(response.status, 'error', `${method} ${path} answered ${response.status}`);
}

/**
 * The client the flags and the environment describe: `--server`, else `WSMON_SERVER`, else
 * {@link DEFAULT_SERVER}; `--api-key`, else `WSMON_API_KEY`. The key is never printed.
 */
export function apiClientFrom(flags: ServerFlags, io: Pick<CliIo, 'env' | 'fetch'>): ApiClient {
  const server = flags.server ?? io.env.WSMON_SERVER ?? DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`--server: ${JSON.stringify(server)} is not a URL such as ${DEFAULT_SERVER}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--server: must be an http:// or https:// URL, not ${url.protocol}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new UsageError('--server: give the address only (no credentials, query or fragment)');
  }
  const apiKey = flags.apiKey ?? io.env.WSMON_API_KEY;
  if (!apiKey) {
    throw new UsageError('no API key: set WSMON_API_KEY (or pass --api-key)');
  }
  return new ApiClient(url.href.replace(/\/+$/, ''), apiKey, io.fetch);
}
