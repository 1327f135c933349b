import { randomUUID } from 'node:crypto';
import {
  GRAPHQL_SUBPROTOCOLS,
  graphqlOptionsSchema,
  type CloseInfo,
  type FailureCause,
  type GraphqlOptions,
} from '@wsmon/contracts';
import { fail, type ProbeFailureError } from '../failure';
import { sensitiveLeaves } from '../secrets';
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
 * GraphQL over WebSocket: `graphql-transport-ws` (the protocol of the graphql-ws library) or the legacy
 * `subscriptions-transport-ws` (Apollo's, negotiated as `graphql-ws`). Phases: `connection_init` (until
 * `connection_ack`), `ping` (until `pong`), `subscribe` (until the first result), `complete`.
 */
export const compileGraphql: ProfileCompiler = (config) => {
  const options = config.graphql ?? graphqlOptionsSchema.parse({});
  return {
    name: 'graphql',
    protocols: [GRAPHQL_SUBPROTOCOLS[options.protocol]],
    secrets: sensitiveLeaves(options.init_payload),
    run: (session) => new GraphqlConversation(session, options).run(),
    closeFailure: graphqlCloseFailure,
  };
};

/** The close codes of graphql-transport-ws, by the cause they name. */
const CLOSE_CAUSES: Record<number, { cause: FailureCause; words: string }> = {
  4400: { cause: 'graphql_invalid_message', words: 'the server rejected a message as invalid' },
  4401: { cause: 'graphql_unauthorized', words: 'unauthorized' },
  4403: { cause: 'graphql_forbidden', words: 'the server refused the connection (forbidden)' },
  4406: { cause: 'subprotocol_mismatch', words: 'the server does not accept the subprotocol' },
  4408: { cause: 'graphql_init_timeout', words: 'connection initialisation timeout' },
  4409: { cause: 'graphql_duplicate_id', words: 'a subscriber for this id already exists' },
  4429: { cause: 'graphql_too_many_inits', words: 'too many initialisation requests' },
};

export function graphqlCloseFailure(close: CloseInfo): ProbeFailureError | undefined {
  const known = CLOSE_CAUSES[close.code];
  if (!known) return undefined;
  const reason = close.reason ? ` (${close.reason})` : '';
  return fail(
    'protocol_error',
    known.cause,
    `the server closed the connection with ${close.code}${reason}: ${known.words}`,
    `CLOSE_${close.code}`,
  );
}

const MAX_FACT_CHARS = 1024;

interface GraphqlMessage {
  readonly message: Inbound;
  readonly body: Record<string, unknown>;
  readonly type: string;
}

class GraphqlConversation {
  private readonly legacy: boolean;
  private keepAlives = 0;

  constructor(
    private readonly session: ProfileSession,
    private readonly options: GraphqlOptions,
  ) {
    this.legacy = options.protocol === 'subscriptions-transport-ws';
  }

  async run(): Promise<void> {
    const session = this.session;
    session.fact('protocol', this.options.protocol);
    try {
      const ackMs = await session.phase('connection_init', () => this.init());
      if (this.options.ping) session.roundTrip(await session.phase('ping', () => this.ping()));
      else session.roundTrip(ackMs);
      const subscribe = this.options.subscribe;
      if (subscribe) {
        const id = randomUUID();
        await session.phase('subscribe', () => this.subscribe(id, subscribe));
        await session.phase('complete', () => {
          session.send(JSON.stringify({ id, type: this.legacy ? 'stop' : 'complete' }));
          return Promise.resolve();
        });
      }
    } finally {
      if (this.legacy) session.fact('keep_alives', this.keepAlives);
    }
  }

  /** The next protocol message; answers the server's pings and counts legacy keep-alives on the way. */
  private async read(endMs: number): Promise<GraphqlMessage | null> {
    for (;;) {
      const message = await this.session.next(endMs);
      if (!message) return null;
      const body = jsonObject(text(message));
      if (!body || typeof body.type !== 'string') {
        throw fail(
          'protocol_error',
          'graphql_invalid_message',
          `the server sent a message that is not ${this.options.protocol}: ${quote(text(message))}`,
        );
      }
      if (!this.legacy && body.type === 'ping') {
        this.session.send(JSON.stringify({ type: 'pong' }));
        continue;
      }
      if (this.legacy && body.type === 'ka') {
        this.keepAlives++;
        continue;
      }
      return { message, body, type: body.type };
    }
  }

  private async init(): Promise<number> {
    const payload = this.options.init_payload;
    const startMs = now();
    this.session.send(JSON.stringify({ type: 'connection_init', ...(payload ? { payload } : {}) }));
    const endMs = this.session.endAfter(this.options.ack_timeout_ms);
    for (;;) {
      const got = await this.read(endMs);
      if (!got) throw timedOut('graphql_ack_timeout', 'no connection_ack', startMs);
      if (got.type === 'connection_ack') {
        const ackMs = elapsed(startMs, got.message.atMs);
        this.session.fact('ack_ms', ackMs);
        if (got.body.payload !== undefined && got.body.payload !== null) {
          this.session.fact('ack_payload', JSON.stringify(got.body.payload).slice(0, MAX_FACT_CHARS));
        }
        return ackMs;
      }
      if (got.type === 'connection_error') {
        throw fail(
          'protocol_error',
          'graphql_connection_error',
          `the server refused connection_init: ${quote(JSON.stringify(got.body.payload ?? null))}`,
        );
      }
      // A pong nobody asked for is allowed by graphql-transport-ws; anything else is out of order.
      if (got.type === 'pong') continue;
      throw fail(
        'protocol_error',
        'graphql_invalid_message',
        `expected connection_ack, the server sent ${quote(got.type)}`,
      );
    }
  }

  private async ping(): Promise<number> {
    const startMs = now();
    this.session.send(JSON.stringify({ type: 'ping' }));
    const endMs = this.session.endAfter(this.options.ping_timeout_ms);
    for (;;) {
      const got = await this.read(endMs);
      if (!got) throw timedOut('pong_timeout', 'no pong answered the ping', startMs);
      if (got.type === 'pong') {
        const pingMs = elapsed(startMs, got.message.atMs);
        this.session.fact('ping_ms', pingMs);
        return pingMs;
      }
    }
  }

  private async subscribe(id: string, subscribe: NonNullable<GraphqlOptions['subscribe']>): Promise<void> {
    const payload = {
      query: subscribe.query,
      ...(subscribe.variables ? { variables: subscribe.variables } : {}),
      ...(subscribe.operation_name ? { operationName: subscribe.operation_name } : {}),
    };
    const startMs = now();
    this.session.send(JSON.stringify({ id, type: this.legacy ? 'start' : 'subscribe', payload }));
    const endMs = this.session.endAfter(subscribe.timeout_ms);
    const resultType = this.legacy ? 'data' : 'next';
    for (;;) {
      const got = await this.read(endMs);
      if (!got)
        throw timedOut('graphql_next_timeout', `no ${resultType} message for the subscription`, startMs);
      if (got.body.id !== id) continue;
      if (got.type === resultType) {
        const result = got.body.payload;
        this.session.subject(JSON.stringify(result ?? null), got.message.atMs);
        this.session.fact('first_result_ms', elapsed(startMs, got.message.atMs));
        const errors = (result as { errors?: unknown } | null | undefined)?.errors;
        if (Array.isArray(errors) && errors.length > 0) {
          throw fail(
            'protocol_error',
            'graphql_result_errors',
            `the first result carries errors: ${quote(JSON.stringify(errors))}`,
          );
        }
        return;
      }
      if (got.type === 'error') {
        throw fail(
          'protocol_error',
          'graphql_error',
          `the server rejected the subscription: ${quote(JSON.stringify(got.body.payload ?? null))}`,
        );
      }
      if (got.type === 'complete') {
        throw fail(
          'protocol_error',
          'graphql_completed_early',
          'the server completed the subscription before sending any result',
        );
      }
    }
  }
}
