import type { ProbeConfigInput } from '@wsmon/contracts';
import { POOL_BACKENDS, startBackendPool, type BackendPool } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegexCache } from '../assertions';
import { runProbe } from '../probe';
import { compileStickySession, serverIdOf } from './sticky-session';

let pool: BackendPool;

beforeAll(async () => {
  pool = await startBackendPool();
});

afterAll(async () => {
  await pool.close();
});

function stickyProbe(path: string, sticky: Record<string, unknown>, extra: Partial<ProbeConfigInput> = {}) {
  return runProbe({
    url: pool.url(path),
    timeout_ms: 3000,
    profile: 'sticky_session',
    sticky_session: sticky,
    ...extra,
  });
}

describe(compileStickySession.name, () => {
  it.each([
    ['{"server_id":"a"}', { server_id_path: '$.server_id' }, 'a'],
    ['{"meta":{"node":7}}', { server_id_path: '$.meta.node' }, '7'],
    ['served by b-2', { server_id_regex: 'served by (\\S+)' }, 'b-2'],
    ['node=c', { server_id_regex: 'c' }, 'c'],
    ['{"other":1}', { server_id_path: '$.server_id' }, undefined],
    ['not json', { server_id_path: '$.server_id' }, undefined],
  ])('reads the server id of %s', (message, options, id) => {
    expect(serverIdOf(message, { connections: 2, ...options }, new RegexCache())).toBe(id);
  });

  it('passes when every connection reaches the same server, and reports the ids seen', async () => {
    const before = pool.connections();
    const result = await stickyProbe('/sticky', { connections: 4, server_id_path: '$.server_id' });
    expect(result.failure).toBeNull();
    expect(pool.connections() - before).toBe(4);
    expect(result.profile?.facts).toMatchObject({
      server_ids: Array(4).fill(POOL_BACKENDS[0]),
      distinct_servers: 1,
    });
    expect(result.profile?.phases.map((p) => p.name)).toEqual([
      'connection_1',
      'connection_2',
      'connection_3',
      'connection_4',
    ]);
    expect(result.messages_received).toBe(4);
    expect(JSON.parse(result.last_message!.data)).toMatchObject({ server_id: POOL_BACKENDS[0] });
  });

  it('fails with sticky_session_broken when connections land on different servers', async () => {
    const result = await stickyProbe('/round-robin', { connections: 3, server_id_path: '$.server_id' });
    expect(result.failure).toMatchObject({
      reason: 'assertion_failed',
      cause: 'sticky_session_broken',
      category: 'ASSERTION',
    });
    expect(new Set(result.profile?.facts.server_ids as string[]).size).toBeGreaterThan(1);
    expect(result.failure?.message).toContain('reached');
  });

  it('reads the id with a regex from a text message', async () => {
    const result = await stickyProbe('/text', { connections: 2, server_id_regex: 'served by (\\S+)' });
    expect(result.failure).toBeNull();
    expect(result.profile?.facts.server_ids).toEqual([POOL_BACKENDS[0], POOL_BACKENDS[0]]);
  });

  it('sends a message first to servers that speak only when spoken to', async () => {
    const result = await stickyProbe('/on-request', {
      connections: 2,
      server_id_path: '$.server_id',
      send: 'hi',
    });
    expect(result.failure).toBeNull();
    expect(result.messages_sent).toBe(2);
  });

  it('fails with sticky_server_id_missing when the first message names no server', async () => {
    const result = await stickyProbe('/no-id', { server_id_path: '$.server_id' });
    expect(result.failure).toMatchObject({ reason: 'ws_reply_mismatch', cause: 'sticky_server_id_missing' });
  });

  it('fails with reply_timeout when no first message comes', async () => {
    const result = await stickyProbe('/mute', { server_id_path: '$.server_id', message_timeout_ms: 100 });
    expect(result.failure).toMatchObject({ reason: 'ws_reply_timeout', cause: 'reply_timeout' });
  });

  it('reports the failure of a later connection, with the ids seen so far', async () => {
    const result = await stickyProbe('/once', { connections: 3, server_id_path: '$.server_id' });
    expect(result.failure).toMatchObject({
      reason: 'ws_closed_early',
      cause: 'closed_by_server',
      error_code: 'CLOSE_1013',
    });
    expect(result.profile?.phases.map((p) => `${p.name}:${p.passed}`)).toEqual([
      'connection_1:true',
      'connection_2:false',
    ]);
    expect(result.profile?.facts.server_ids).toEqual([POOL_BACKENDS[0]]);
    expect(result.close).toMatchObject({ code: 1000, initiator: 'client' });
  });
});
