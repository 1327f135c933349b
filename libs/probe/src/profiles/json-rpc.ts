import {
  JSON_RPC_DEFAULTS,
  jsonRpcOptionsSchema,
  selectJsonPath,
  type JsonRpcOptions,
} from '@wsmon/contracts';
import { numericValue, type RegexCache } from '../assertions';
import { fail } from '../failure';
import { now } from '../wait';
import {
  elapsed,
  jsonObject,
  quote,
  text,
  timedOut,
  type Inbound,
  type ProfileCompiler,
  type ProfileSession,
} from './profile';

/**
 * JSON-RPC 2.0 over WebSocket, as blockchain nodes speak it. `subscribe` mode: phases `subscribe`
 * (until the subscription id), `notifications` (until the awaited count), `unsubscribe`; `call` mode:
 * phase `call` (until the response).
 */
export const compileJsonRpc: ProfileCompiler = (config, regexes) => {
  const options = config.json_rpc ?? jsonRpcOptionsSchema.parse({});
  return {
    name: 'json_rpc',
    secrets: [],
    run: (session) => new JsonRpcConversation(session, options, regexes).run(),
  };
};

interface Response {
  readonly result: unknown;
  readonly atMs: number;
}

class JsonRpcConversation {
  private nextId = 1;
  /** Notifications that arrived while a response was awaited, in order. */
  private readonly pending: { body: Record<string, unknown>; message: Inbound }[] = [];
  private readonly blockNumbers: number[] = [];

  constructor(
    private readonly session: ProfileSession,
    private readonly options: JsonRpcOptions,
    private readonly regexes: RegexCache,
  ) {}

  async run(): Promise<void> {
    if (this.options.mode === 'call') return this.call();
    return this.subscribe();
  }

  private async call(): Promise<void> {
    const method = this.options.method!;
    const response = await this.session.phase('call', () =>
      this.request(method, this.options.params ?? [], this.options.response_timeout_ms),
    );
    this.session.subject(JSON.stringify(response.result ?? null), response.atMs);
    this.checkFreshness(response.result, 1);
  }

  private async subscribe(): Promise<void> {
    const session = this.session;
    const options = this.options;
    const method = options.method ?? JSON_RPC_DEFAULTS.subscribeMethod;
    const params =
      options.params ?? (options.method === undefined ? [...JSON_RPC_DEFAULTS.subscribeParams] : []);
    const subscribedMs = now();
    const response = await session.phase('subscribe', () =>
      this.request(method, params, options.response_timeout_ms),
    );
    const subscription = response.result;
    if (typeof subscription !== 'string' && typeof subscription !== 'number') {
      throw fail(
        'protocol_error',
        'jsonrpc_invalid_response',
        `expected a subscription id as the result of ${method}, got ${quote(JSON.stringify(subscription ?? null))}`,
      );
    }
    session.fact('subscription_id', subscription);
    let unsubscribed = false;
    try {
      await session.phase('notifications', () => this.notifications(subscription, subscribedMs));
      const unsubscribe = options.unsubscribe_method ?? JSON_RPC_DEFAULTS.unsubscribeMethod;
      const answer = await session.phase('unsubscribe', () =>
        this.request(unsubscribe, [subscription], options.response_timeout_ms),
      );
      unsubscribed = true;
      session.fact('unsubscribed', answer.result === true);
    } finally {
      session.fact('block_numbers', [...this.blockNumbers]);
      // Leaving the subscription behind costs the node; say so even when the probe already failed.
      if (!unsubscribed)
        this.send(options.unsubscribe_method ?? JSON_RPC_DEFAULTS.unsubscribeMethod, [subscription]);
    }
  }

  private send(method: string, params: unknown): number {
    const id = this.nextId++;
    this.session.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    return id;
  }

  /** One request and its response; its `error` is a failure. */
  private async request(method: string, params: unknown, timeoutMs: number | undefined): Promise<Response> {
    const startMs = now();
    const id = this.send(method, params);
    const endMs = this.session.endAfter(timeoutMs);
    for (;;) {
      const message = await this.session.next(endMs);
      if (!message) throw timedOut('jsonrpc_response_timeout', `no response to ${method}`, startMs);
      const body = this.parse(message);
      if (body.id === undefined && typeof body.method === 'string') {
        this.pending.push({ body, message });
        continue;
      }
      if (body.id !== id) continue;
      this.session.roundTrip(elapsed(startMs, message.atMs));
      const error = body.error as { code?: unknown; message?: unknown } | undefined;
      if (error !== undefined && error !== null) {
        const code = typeof error.code === 'number' ? error.code : undefined;
        const said = typeof error.message === 'string' ? error.message : JSON.stringify(error);
        throw fail(
          'protocol_error',
          'jsonrpc_error',
          `${method} failed: ${code === undefined ? '' : `${code} `}${quote(said)}`,
          code === undefined ? undefined : `JSONRPC_${code}`,
        );
      }
      if (!Object.hasOwn(body, 'result')) {
        throw fail(
          'protocol_error',
          'jsonrpc_invalid_response',
          `the response to ${method} has neither result nor error`,
        );
      }
      return { result: body.result, atMs: message.atMs };
    }
  }

  private parse(message: Inbound): Record<string, unknown> {
    const body = jsonObject(text(message));
    if (!body || body.jsonrpc !== '2.0') {
      throw fail(
        'protocol_error',
        'jsonrpc_invalid_response',
        `the server sent a message that is not JSON-RPC 2.0: ${quote(text(message))}`,
      );
    }
    return body;
  }

  private async notifications(subscription: string | number, subscribedMs: number): Promise<void> {
    const wanted = this.options.notifications ?? 1;
    const startMs = now();
    const endMs = this.session.endAfter(this.options.notification_timeout_ms);
    let received = 0;
    for (;;) {
      const queued = this.pending.shift();
      const next = queued ?? (await this.nextNotification(endMs));
      if (!next) {
        throw timedOut(
          'jsonrpc_notification_timeout',
          `${received} of ${wanted} notification${wanted === 1 ? '' : 's'} of subscription ${subscription}`,
          startMs,
        );
      }
      const params = next.body.params as { subscription?: unknown; result?: unknown } | undefined;
      if (params?.subscription !== subscription) continue;
      received++;
      this.session.fact('notifications', received);
      if (received === 1)
        this.session.fact('first_notification_ms', elapsed(subscribedMs, next.message.atMs));
      this.session.subject(JSON.stringify(params.result ?? null), next.message.atMs);
      this.checkFreshness(params.result, received);
      if (received >= wanted) return;
    }
  }

  private async nextNotification(
    endMs: number,
  ): Promise<{ body: Record<string, unknown>; message: Inbound } | null> {
    for (;;) {
      const message = await this.session.next(endMs);
      if (!message) return null;
      const body = this.parse(message);
      if (typeof body.method === 'string' && body.params !== undefined) return { body, message };
    }
  }

  /** The freshness checks on one notification's result (or the call's result). */
  private checkFreshness(result: unknown, n: number): void {
    const freshness = this.options.freshness;
    if (!freshness) return;
    const select = (path: string) => {
      const selected = selectJsonPath(result, this.regexes.path(path));
      return selected.found ? numericValue(selected.value) : null;
    };
    const block = select(freshness.block_number_path);
    if (block !== null) {
      this.blockNumbers.push(block);
      this.session.fact('latest_block_number', block);
    }
    if (freshness.increasing_block_number) {
      if (block === null) {
        throw fail(
          'protocol_error',
          'jsonrpc_invalid_response',
          `notification ${n} has no numeric block number at ${freshness.block_number_path}`,
        );
      }
      const previous = this.blockNumbers.at(-2);
      if (previous !== undefined && block <= previous) {
        throw fail(
          'assertion_failed',
          'jsonrpc_block_not_increasing',
          `notification ${n} carries block ${block}, not above the previous ${previous}: the node is not following the chain`,
        );
      }
    }
    if (freshness.max_age_s !== undefined) {
      const timestamp = select(freshness.timestamp_path);
      if (timestamp === null) {
        throw fail(
          'protocol_error',
          'jsonrpc_invalid_response',
          `no numeric timestamp at ${freshness.timestamp_path} to check the age of`,
        );
      }
      // The node's timestamp is wall-clock time, so its age can only be taken on the wall clock.
      const ageS = Math.round((Date.now() / 1000 - timestamp) * 1000) / 1000;
      this.session.fact('latest_age_s', ageS);
      if (ageS > freshness.max_age_s) {
        throw fail(
          'assertion_failed',
          'jsonrpc_stale_data',
          `the data is ${ageS} s old, more than the ${freshness.max_age_s} s allowed`,
        );
      }
    }
  }
}
