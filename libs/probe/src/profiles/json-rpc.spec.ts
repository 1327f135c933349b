import type { ProbeConfigInput, ProbeResult } from '@wsmon/contracts';
import {
  JSON_RPC_FIRST_BLOCK,
  startBackendPool,
  startJsonRpcNode,
  type JsonRpcNode,
  type JsonRpcNodeMode,
} from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProbe } from '../probe';
import { compileJsonRpc } from './json-rpc';

let node: JsonRpcNode;

beforeAll(async () => {
  node = await startJsonRpcNode();
});

afterAll(async () => {
  await node.close();
});

function jsonRpcProbe(
  mode: JsonRpcNodeMode,
  jsonRpc: Record<string, unknown> = {},
  extra: Partial<ProbeConfigInput> = {},
) {
  return runProbe({
    url: node.url(mode),
    timeout_ms: 3000,
    profile: 'json_rpc',
    json_rpc: jsonRpc,
    ...extra,
  });
}

const phaseNames = (result: ProbeResult) =>
  result.profile?.phases.map((p) => `${p.name}:${p.passed ? 'ok' : 'failed'}`);

describe(compileJsonRpc.name, () => {
  describe('subscribe mode (eth_subscribe newHeads by default)', () => {
    it('subscribes, receives a notification, unsubscribes before closing', async () => {
      const result = await jsonRpcProbe('healthy', {}, { interpretation: 'round_trip_latency' });
      expect(result.failure).toBeNull();
      expect(phaseNames(result)).toEqual(['subscribe:ok', 'notifications:ok', 'unsubscribe:ok']);
      const facts = result.profile!.facts;
      expect(facts.subscription_id).toMatch(/^0x/);
      expect(facts).toMatchObject({ notifications: 1, unsubscribed: true });
      expect(facts.first_notification_ms).toBeGreaterThan(0);
      expect(node.unsubscribed).toContain(facts.subscription_id);
      expect(node.requests.slice(-2)).toEqual(['eth_subscribe', 'eth_unsubscribe']);
      // The round trip is the subscribe request's; the checked message is the notification's result.
      expect(result.value).toBeGreaterThan(0);
      expect((JSON.parse(result.last_message!.data) as { number: string }).number).toMatch(/^0x/);
    });

    it('checks that block numbers increase and that the head is fresh', async () => {
      const result = await jsonRpcProbe('healthy', {
        notifications: 3,
        freshness: { increasing_block_number: true, max_age_s: 60 },
      });
      expect(result.failure).toBeNull();
      const blocks = result.profile!.facts.block_numbers as number[];
      expect(blocks).toHaveLength(3);
      expect(blocks[0]).toBeGreaterThan(JSON_RPC_FIRST_BLOCK);
      expect(blocks[1]).toBeGreaterThan(blocks[0]!);
      expect(result.profile!.facts.latest_age_s).toBeLessThan(60);
    });

    it('fails with jsonrpc_block_not_increasing on a stuck node', async () => {
      const result = await jsonRpcProbe('stuck', {
        notifications: 2,
        freshness: { increasing_block_number: true },
      });
      expect(result.failure).toMatchObject({
        reason: 'assertion_failed',
        cause: 'jsonrpc_block_not_increasing',
        category: 'ASSERTION',
      });
      // Unsubscribed all the same.
      expect(node.unsubscribed).toContain(result.profile!.facts.subscription_id);
    });

    it('fails with jsonrpc_stale_data on an hour-old head', async () => {
      const result = await jsonRpcProbe('stale', { freshness: { max_age_s: 120 } });
      expect(result.failure).toMatchObject({ cause: 'jsonrpc_stale_data', category: 'ASSERTION' });
      expect(result.profile!.facts.latest_age_s).toBeGreaterThan(3000);
    });

    it('fails with jsonrpc_notification_timeout when no notification comes', async () => {
      const result = await jsonRpcProbe('silent', { notification_timeout_ms: 200 });
      expect(result.failure).toMatchObject({
        reason: 'ws_reply_timeout',
        cause: 'jsonrpc_notification_timeout',
        category: 'TIMEOUT',
      });
      expect(phaseNames(result)).toEqual(['subscribe:ok', 'notifications:failed']);
      expect(node.unsubscribed).toContain(result.profile!.facts.subscription_id);
    });

    it('names the error of a node without subscriptions', async () => {
      const result = await jsonRpcProbe('no-subscriptions');
      expect(result.failure).toMatchObject({
        reason: 'protocol_error',
        cause: 'jsonrpc_error',
        category: 'INVALID_REQUEST',
        error_code: 'JSONRPC_-32601',
      });
      expect(result.failure?.message).toContain('notifications not supported');
    });

    it('fails with jsonrpc_response_timeout when the node answers nothing', async () => {
      const result = await jsonRpcProbe('mute', { response_timeout_ms: 150 });
      expect(result.failure).toMatchObject({ cause: 'jsonrpc_response_timeout' });
    });
  });

  describe('call mode', () => {
    it('calls a method and checks its result', async () => {
      const result = await jsonRpcProbe(
        'healthy',
        {
          mode: 'call',
          method: 'eth_getBlockByNumber',
          params: ['latest', false],
          freshness: { max_age_s: 60 },
        },
        {
          interpretation: 'round_trip_latency',
          assertions: [{ type: 'json_path', property: '$.number', operator: 'greater_than', target: 1 }],
        },
      );
      expect(result.failure).toBeNull();
      expect(phaseNames(result)).toEqual(['call:ok']);
      expect(result.assertions[0]).toMatchObject({
        passed: true,
        actual: `0x${JSON_RPC_FIRST_BLOCK.toString(16)}`,
      });
    });

    it('names the error of an unknown method', async () => {
      const result = await jsonRpcProbe('healthy', { mode: 'call', method: 'eth_nope' });
      expect(result.failure).toMatchObject({ cause: 'jsonrpc_error', error_code: 'JSONRPC_-32601' });
    });

    it('fails with jsonrpc_invalid_response on a server that is not JSON-RPC', async () => {
      const pool = await startBackendPool();
      try {
        const result = await runProbe({
          url: pool.url('/text'),
          timeout_ms: 2000,
          profile: 'json_rpc',
          json_rpc: { mode: 'call', method: 'eth_chainId' },
        });
        expect(result.failure).toMatchObject({ cause: 'jsonrpc_invalid_response' });
      } finally {
        await pool.close();
      }
    });
  });
});
