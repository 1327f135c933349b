import type { AddressInfo } from 'node:net';
import type { ProbeConfigInput, ProbeResult } from '@wsmon/contracts';
import { GRAPHQL_TOKEN, startGraphqlServer, type GraphqlServer } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { runProbe } from '../probe';
import { REDACTED } from '../secrets';
import { compileGraphql } from './graphql';

let server: GraphqlServer;

beforeAll(async () => {
  server = await startGraphqlServer();
});

afterAll(async () => {
  await server.close();
});

const GREETINGS = 'subscription { greetings(count: 2, interval_ms: 10) }';

function graphqlProbe(
  path: string,
  graphql: Record<string, unknown> = {},
  extra: Partial<ProbeConfigInput> = {},
) {
  return runProbe({ url: server.url(path), timeout_ms: 3000, profile: 'graphql', graphql, ...extra });
}

function phaseNames(result: ProbeResult) {
  return result.profile?.phases.map((p) => `${p.name}:${p.passed ? 'ok' : 'failed'}`);
}

describe(compileGraphql.name, () => {
  describe('graphql-transport-ws against the graphql-ws server', () => {
    it('inits, subscribes, gets a first result, completes, and records every phase', async () => {
      const result = await graphqlProbe(
        '/graphql',
        {
          subscribe: { query: GREETINGS },
        },
        { interpretation: 'round_trip_latency' },
      );

      expect(result.failure).toBeNull();
      expect(result.success).toBe(true);
      expect(result.subprotocol).toBe('graphql-transport-ws');
      expect(phaseNames(result)).toEqual(['connection_init:ok', 'subscribe:ok', 'complete:ok']);
      expect(result.profile?.facts).toMatchObject({ protocol: 'graphql-transport-ws' });
      expect(result.profile?.facts.ack_ms).toBeGreaterThan(0);
      expect(result.profile?.facts.first_result_ms).toBeGreaterThan(0);
      // Without ping the round trip is connection_init to connection_ack.
      expect(result.value).toBe(result.profile?.facts.ack_ms);
      expect(JSON.parse(result.last_message!.data)).toEqual({ data: { greetings: 'hello 1' } });
      for (const phase of result.profile!.phases) {
        expect(phase.start_ms).toBeGreaterThanOrEqual(result.timings.open_ms!);
        expect(phase.duration_ms).toBeGreaterThanOrEqual(0);
      }
      expect(result.close).toMatchObject({ code: 1000, initiator: 'client' });
    });

    it('times an application ping/pong round trip', async () => {
      const result = await graphqlProbe('/graphql', { ping: true }, { interpretation: 'round_trip_latency' });
      expect(result.success).toBe(true);
      expect(phaseNames(result)).toEqual(['connection_init:ok', 'ping:ok']);
      expect(result.value).toBe(result.profile?.facts.ping_ms);
      expect(result.timings.round_trip_ms).toBe(result.profile?.facts.ping_ms);
    });

    it('sends the init payload and scrubs its credentials from the result', async () => {
      const result = await graphqlProbe('/graphql/auth', {
        init_payload: { token: GRAPHQL_TOKEN, client: 'wsmon' },
        subscribe: { query: GREETINGS },
      });
      expect(result.success).toBe(true);
      expect(server.initPayloads.at(-1)).toEqual({ token: GRAPHQL_TOKEN, client: 'wsmon' });
      expect(JSON.stringify(result)).not.toContain(GRAPHQL_TOKEN);
    });

    it('names a refused init (4403) and never shows the token', async () => {
      const result = await graphqlProbe('/graphql/auth', {
        init_payload: { token: `${GRAPHQL_TOKEN}-wrong` },
      });
      expect(result.failure).toMatchObject({
        reason: 'protocol_error',
        cause: 'graphql_forbidden',
        category: 'INVALID_REQUEST',
        error_code: 'CLOSE_4403',
      });
      expect(phaseNames(result)).toEqual(['connection_init:failed']);
      expect(JSON.stringify(result)).not.toContain(GRAPHQL_TOKEN);
    });

    it('fails with graphql_ack_timeout when no connection_ack comes', async () => {
      const result = await graphqlProbe('/graphql/no-ack', { ack_timeout_ms: 200 });
      expect(result.failure).toMatchObject({
        reason: 'ws_reply_timeout',
        cause: 'graphql_ack_timeout',
        category: 'TIMEOUT',
      });
      expect(result.profile?.phases[0]?.duration_ms).toBeGreaterThanOrEqual(199);
    });

    it('names the error message of an invalid subscription', async () => {
      const result = await graphqlProbe('/graphql', { subscribe: { query: 'subscription { nope }' } });
      expect(result.failure).toMatchObject({ reason: 'protocol_error', cause: 'graphql_error' });
      expect(result.failure?.message).toContain('nope');
    });

    it('fails on a first result that carries errors', async () => {
      const result = await graphqlProbe('/graphql', { subscribe: { query: 'subscription { failing }' } });
      expect(result.failure).toMatchObject({ cause: 'graphql_result_errors', category: 'ASSERTION' });
      expect(result.failure?.message).toContain('the resolver failed');
    });

    it('fails with graphql_next_timeout when the subscription sends nothing', async () => {
      const result = await graphqlProbe('/graphql', {
        subscribe: { query: 'subscription { silent }', timeout_ms: 150 },
      });
      expect(result.failure).toMatchObject({ reason: 'ws_reply_timeout', cause: 'graphql_next_timeout' });
      expect(phaseNames(result)).toEqual(['connection_init:ok', 'subscribe:failed']);
    });

    it('fails when the subscription completes without a result', async () => {
      const result = await graphqlProbe('/graphql', { subscribe: { query: 'subscription { empty }' } });
      expect(result.failure).toMatchObject({ cause: 'graphql_completed_early' });
    });

    it('checks JSON path assertions on the first result', async () => {
      const result = await graphqlProbe(
        '/graphql',
        { subscribe: { query: GREETINGS } },
        {
          assertions: [
            { type: 'json_path', property: '$.data.greetings', operator: 'equals', target: 'hello 1' },
            { type: 'json_path', property: '$.data.greetings', operator: 'matches', target: '^bye' },
          ],
        },
      );
      expect(result.assertions.map((a) => a.passed)).toEqual([true, false]);
      expect(result.failure).toMatchObject({ reason: 'assertion_failed', cause: 'assertion' });
    });

    it('fails at the upgrade when the server does not speak the legacy protocol asked for', async () => {
      const result = await graphqlProbe('/graphql', { protocol: 'subscriptions-transport-ws' });
      expect(result.failure).toMatchObject({ cause: 'subprotocol_mismatch' });
    });
  });

  describe('close codes of graphql-transport-ws', () => {
    let scripted: WebSocketServer;
    let port: number;

    beforeAll(async () => {
      // Answers connection_init by closing with the code the path names, as a server under test would.
      scripted = new WebSocketServer({
        host: '127.0.0.1',
        port: 0,
        handleProtocols: (p) => [...p][0] ?? false,
      });
      scripted.on('connection', (ws, req) => {
        ws.once('message', () => ws.close(Number(req.url?.slice(1)), 'scripted'));
      });
      await new Promise((resolve) => scripted.once('listening', resolve));
      port = (scripted.address() as AddressInfo).port;
    });

    afterAll(async () => {
      for (const client of scripted.clients) client.terminate();
      await new Promise((resolve) => scripted.close(resolve));
    });

    it.each([
      [4400, 'graphql_invalid_message', 'INVALID_REQUEST'],
      [4401, 'graphql_unauthorized', 'INVALID_REQUEST'],
      [4403, 'graphql_forbidden', 'INVALID_REQUEST'],
      [4406, 'subprotocol_mismatch', 'INVALID_REQUEST'],
      [4408, 'graphql_init_timeout', 'TIMEOUT'],
      [4409, 'graphql_duplicate_id', 'INVALID_REQUEST'],
      [4429, 'graphql_too_many_inits', 'INVALID_REQUEST'],
      [4500, 'closed_by_server', 'CONNRESET'],
    ])('close %i becomes %s', async (code, cause, category) => {
      const result = await runProbe({
        url: `ws://127.0.0.1:${port}/${code}`,
        timeout_ms: 2000,
        profile: 'graphql',
      });
      expect(result.failure).toMatchObject({ cause, category, error_code: `CLOSE_${code}` });
    });
  });

  describe('subscriptions-transport-ws (legacy) against its own server', () => {
    it('inits, counts keep-alives, subscribes and stops', async () => {
      const result = await graphqlProbe('/legacy', {
        protocol: 'subscriptions-transport-ws',
        subscribe: { query: GREETINGS },
      });
      expect(result.failure).toBeNull();
      expect(result.subprotocol).toBe('graphql-ws');
      expect(phaseNames(result)).toEqual(['connection_init:ok', 'subscribe:ok', 'complete:ok']);
      expect(result.profile?.facts.keep_alives).toBeGreaterThanOrEqual(0);
      expect(JSON.parse(result.last_message!.data)).toMatchObject({ data: { greetings: 'hello 1' } });
    });

    it('names a connection_error and scrubs the credential', async () => {
      const result = await graphqlProbe('/legacy/auth', {
        protocol: 'subscriptions-transport-ws',
        init_payload: { authToken: 'wrong-token-value' },
      });
      expect(result.failure).toMatchObject({ reason: 'protocol_error', cause: 'graphql_connection_error' });
      expect(JSON.stringify(result)).not.toContain('wrong-token-value');
      expect(JSON.stringify(result.profile)).not.toContain(REDACTED.repeat(2));
    });

    it('accepts the token', async () => {
      const result = await graphqlProbe('/legacy/auth', {
        protocol: 'subscriptions-transport-ws',
        init_payload: { token: GRAPHQL_TOKEN },
      });
      expect(result.failure).toBeNull();
    });
  });
});
