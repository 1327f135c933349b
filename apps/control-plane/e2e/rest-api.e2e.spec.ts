import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from './support/control-plane-process';

const testBody = (overrides: Record<string, unknown> = {}) => ({
  name: 'chat gateway',
  probe: { url: 'wss://chat.example.com/ws' },
  schedule: { interval_s: 60 },
  locations: ['eu-west'],
  ...overrides,
});

/**
 * The whole suite on both databases the control plane runs on: a real PostgreSQL 15 server and the
 * embedded PGlite (PostgreSQL 18), so every query is proven on both majors.
 */
describe.each(['postgres', 'embedded'] as const)('REST API on %s', (backend) => {
  let pg: TestPostgres | undefined;
  let dataDir: string | undefined;
  let cp: ControlPlaneProcess;
  let databaseUrl: string | undefined;
  const adminKey = newAdminKey();
  const secretKey = newSecretKey();
  let admin: ReturnType<typeof restClient>;
  const environment = (): Record<string, string> =>
    backend === 'postgres'
      ? { DATABASE_URL: databaseUrl!, WSMON_ADMIN_KEY: adminKey, WSMON_SECRET_KEY: secretKey }
      : { WSMON_DATA_DIR: dataDir!, WSMON_ADMIN_KEY: adminKey };

  beforeAll(async () => {
    if (backend === 'postgres') {
      pg = await startTestPostgres();
      databaseUrl = await pg.createDatabase('rest_api');
    } else {
      dataDir = await mkdtemp(join(tmpdir(), 'wsmon-rest-'));
    }
    cp = await startControlPlane(environment());
    admin = restClient(cp.httpUrl, adminKey);
    expect(
      (await admin('POST', '/locations', { name: 'eu-west', kind: 'managed', region: 'eu-west-1' })).status,
    ).toBe(201);
    expect((await admin('POST', '/locations', { name: 'office', kind: 'private' })).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
    await pg?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Keys for each role, created by the admin through the API itself. */
  async function keyFor(role: 'admin' | 'editor' | 'viewer'): Promise<string> {
    const response = await admin<{ key: string }>('POST', '/api-keys', { name: `${role} key`, role });
    expect(response.status).toBe(201);
    return response.body.key;
  }

  function expectError(response: { status: number; body: any }, status: number, code: string) {
    expect(response.status).toBe(status);
    expect(response.body).toEqual({
      error: expect.objectContaining({ status, code, message: expect.any(String) }),
    });
  }

  describe('health and documentation', () => {
    it('answers /healthz and /readyz without a key', async () => {
      expect(await (await fetch(`${cp.httpUrl}/healthz`)).json()).toEqual({ status: 'ok' });
      expect(await (await fetch(`${cp.httpUrl}/readyz`)).json()).toEqual({ status: 'ready' });
    });

    it('serves an OpenAPI document generated from the code, with the shared schemas', async () => {
      const document = (await (await fetch(`${cp.httpUrl}/api/docs/openapi.json`)).json()) as any;
      expect(Object.keys(document.paths)).toEqual(
        expect.arrayContaining([
          '/api/v1/tests',
          '/api/v1/tests/{id}',
          '/api/v1/locations',
          '/api/v1/secrets',
        ]),
      );
      const createTest = document.paths['/api/v1/tests'].post.requestBody.content['application/json'].schema;
      expect(createTest.properties.probe.properties.timeout_ms).toMatchObject({
        minimum: 100,
        maximum: 30000,
      });
      expect((await fetch(`${cp.httpUrl}/api/docs`)).status).toBe(200);
    });
  });

  describe('access control', () => {
    it('refuses requests without a key, with an unknown key and with a malformed header', async () => {
      expectError(await restClient(cp.httpUrl)('GET', '/tests'), 401, 'unauthenticated');
      expectError(
        await restClient(cp.httpUrl, 'wsk_000000000000_' + 'A'.repeat(43))('GET', '/tests'),
        401,
        'unauthenticated',
      );
      const raw = await fetch(`${cp.httpUrl}/api/v1/tests`, {
        headers: { authorization: `Basic ${adminKey}` },
      });
      expect(raw.status).toBe(401);
    });

    it('gives viewers read access only', async () => {
      const viewer = restClient(cp.httpUrl, await keyFor('viewer'));
      expect((await viewer('GET', '/tests')).status).toBe(200);
      expect((await viewer('GET', '/locations')).status).toBe(200);
      expect((await viewer('GET', '/agents')).status).toBe(200);
      expectError(await viewer('POST', '/tests', testBody()), 403, 'permission_denied');
      expectError(await viewer('POST', '/locations', { name: 'nope' }), 403, 'permission_denied');
      expectError(await viewer('GET', '/secrets'), 403, 'permission_denied');
      expectError(await viewer('GET', '/api-keys'), 403, 'permission_denied');
    });

    it('gives editors tests and locations, not keys, secrets or agent tokens', async () => {
      const editor = restClient(cp.httpUrl, await keyFor('editor'));
      const created = await editor<{ id: string }>('POST', '/tests', testBody({ name: 'by editor' }));
      expect(created.status).toBe(201);
      expect((await editor('PATCH', `/tests/${created.body.id}`, { tags: ['edited'] })).status).toBe(200);
      expect((await editor('POST', '/locations', { name: 'editor-made' })).status).toBe(201);
      expectError(await editor('POST', '/api-keys', { name: 'x', role: 'admin' }), 403, 'permission_denied');
      expectError(await editor('POST', '/secrets', { name: 'X', value: 'y' }), 403, 'permission_denied');
      expectError(await editor('POST', '/locations/eu-west/tokens', {}), 403, 'permission_denied');
      expect((await editor('DELETE', `/tests/${created.body.id}`)).status).toBe(204);
    });

    it('shows a new API key once, and a revoked key stops working', async () => {
      const created = await admin<{ api_key: { id: string }; key: string }>('POST', '/api-keys', {
        name: 'ci',
        role: 'viewer',
      });
      expect(created.body.key).toMatch(/^wsk_[0-9a-f]{12}_/);
      const listed = await admin<{ id: string }[]>('GET', '/api-keys');
      expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
      const ci = restClient(cp.httpUrl, created.body.key);
      expect((await ci('GET', '/tests')).status).toBe(200);
      expect((await admin('DELETE', `/api-keys/${created.body.api_key.id}`)).status).toBe(200);
      expectError(await ci('GET', '/tests'), 401, 'unauthenticated');
    });

    it('refuses to revoke the last admin key', async () => {
      const keys = await admin<{ id: string; role: string; revoked_at: string | null }[]>('GET', '/api-keys');
      const admins = keys.body.filter((k) => k.role === 'admin' && k.revoked_at === null);
      expect(admins).toHaveLength(1);
      expectError(await admin('DELETE', `/api-keys/${admins[0]!.id}`), 409, 'conflict');
    });
  });

  describe('locations', () => {
    it('creates, reads by id or name, lists, updates and deletes', async () => {
      const created = await admin<any>('POST', '/locations', { name: 'us-east', labels: { tier: 'gold' } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        name: 'us-east',
        kind: 'private',
        region: null,
        labels: { tier: 'gold' },
      });
      expect((await admin('GET', `/locations/${created.body.id}`)).body).toEqual(created.body);
      expect((await admin<any>('GET', '/locations/us-east')).body.id).toBe(created.body.id);
      const updated = await admin<any>('PATCH', '/locations/us-east', { region: 'us-east-1' });
      expect(updated.body).toMatchObject({ region: 'us-east-1', labels: { tier: 'gold' } });
      const listed = await admin<{ items: { name: string }[] }>('GET', '/locations?page_size=200');
      expect(listed.body.items.map((l) => l.name)).toContain('us-east');
      expect((await admin('DELETE', '/locations/us-east')).status).toBe(204);
      expectError(await admin('GET', '/locations/us-east'), 404, 'not_found');
    });

    it('refuses a duplicate name and deleting a location that tests use', async () => {
      expectError(await admin('POST', '/locations', { name: 'eu-west' }), 409, 'conflict');
      const test = await admin<{ id: string }>('POST', '/tests', testBody({ name: 'pins eu-west' }));
      expectError(await admin('DELETE', '/locations/eu-west'), 409, 'conflict');
      await admin('DELETE', `/tests/${test.body.id}`);
    });

    it('reports every field error of a bad location at once', async () => {
      const response = await admin<any>('POST', '/locations', { name: 'Bad Name', kind: 'cloud', extra: 1 });
      expectError(response, 400, 'invalid_argument');
      expect(response.body.error.field_errors.map((e: any) => [e.path, e.rule])).toEqual(
        expect.arrayContaining([
          ['name', 'format'],
          ['kind', 'enum'],
          ['extra', 'unknown_field'],
        ]),
      );
    });
  });

  describe('tests', () => {
    it('creates a test with defaults applied and the probe configuration normalised', async () => {
      const created = await admin<any>('POST', '/tests', testBody({ tags: ['prod', 'chat'] }));
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        name: 'chat gateway',
        description: '',
        enabled: true,
        tags: ['prod', 'chat'],
        locations: ['eu-west'],
        retry: { attempts: 0, delay_ms: 1000 },
        alert: { min_failing_locations: 1, for_minutes: 5 },
        probe: { url: 'wss://chat.example.com/ws', timeout_ms: 10000, interpretation: 'handshake_latency' },
      });
      expect(created.body.revision).toBeGreaterThan(0);
      expect((await admin('GET', `/tests/${created.body.id}`)).body).toEqual(created.body);
    });

    it('validates through the shared schema and names every field and rule', async () => {
      const response = await admin<any>(
        'POST',
        '/tests',
        testBody({
          probe: {
            url: 'http://x',
            timeout_ms: 50,
            assertions: [{ type: 'received_message', operator: 'matches', target: '(' }],
          },
          schedule: { cron: '61 * * * * *' },
        }),
      );
      expectError(response, 400, 'invalid_argument');
      expect(response.body.error.field_errors.map((e: any) => [e.path, e.rule])).toEqual(
        expect.arrayContaining([
          ['probe.url', 'ws_scheme'],
          ['probe.timeout_ms', 'min'],
          ['probe.assertions[0].target', 'regex'],
          ['schedule.cron', 'cron'],
        ]),
      );
    });

    it('refuses unknown locations and references to missing secrets', async () => {
      const response = await admin<any>(
        'POST',
        '/tests',
        testBody({
          locations: ['eu-west', 'atlantis'],
          probe: { url: 'wss://x.example/ws', headers: { Authorization: 'Bearer {{ secrets.NOPE }}' } },
        }),
      );
      expectError(response, 400, 'invalid_argument');
      expect(response.body.error.field_errors.map((e: any) => [e.path, e.rule])).toEqual([
        ['locations[1]', 'exists'],
        ['probe', 'secret_exists'],
      ]);
    });

    it('replaces, patches, pauses and resumes, each with a higher revision', async () => {
      const created = await admin<any>('POST', '/tests', testBody({ name: 'lifecycle' }));
      const id = created.body.id as string;
      const replaced = await admin<any>(
        'PUT',
        `/tests/${id}`,
        testBody({ name: 'lifecycle v2', locations: ['office'] }),
      );
      expect(replaced.body).toMatchObject({ name: 'lifecycle v2', locations: ['office'], tags: [] });
      const patched = await admin<any>('PATCH', `/tests/${id}`, { description: 'watched' });
      expect(patched.body).toMatchObject({
        name: 'lifecycle v2',
        description: 'watched',
        locations: ['office'],
      });
      const paused = await admin<any>('POST', `/tests/${id}/pause`);
      expect(paused.body.enabled).toBe(false);
      const resumed = await admin<any>('POST', `/tests/${id}/resume`);
      expect(resumed.body.enabled).toBe(true);
      const revisions = [created, replaced, patched, paused, resumed].map((r) => r.body.revision as number);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
      expect(new Set(revisions).size).toBe(revisions.length);
      expect((await admin('DELETE', `/tests/${id}`)).status).toBe(204);
      expectError(await admin('GET', `/tests/${id}`), 404, 'not_found');
      expectError(await admin('DELETE', `/tests/${id}`), 404, 'not_found');
    });

    it('lists with filters and pages through with tokens', async () => {
      for (let i = 0; i < 5; i++) {
        const response = await admin(
          'POST',
          '/tests',
          testBody({ name: `paged ${i}`, tags: ['paged'], enabled: i % 2 === 0 }),
        );
        expect(response.status).toBe(201);
      }
      const seen: string[] = [];
      let token: string | null = null;
      do {
        const query: string = `/tests?tag=paged&page_size=2${token ? `&page_token=${token}` : ''}`;
        const page = await admin<{ items: { name: string }[]; next_page_token: string | null }>('GET', query);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.items.map((t) => t.name));
        token = page.body.next_page_token;
      } while (token);
      expect(seen).toEqual(['paged 0', 'paged 1', 'paged 2', 'paged 3', 'paged 4']);
      const disabled = await admin<{ items: { name: string }[] }>('GET', '/tests?tag=paged&enabled=false');
      expect(disabled.body.items.map((t) => t.name)).toEqual(['paged 1', 'paged 3']);
      const text = await admin<{ items: { name: string }[] }>('GET', '/tests?q=PAGED%203');
      expect(text.body.items.map((t) => t.name)).toEqual(['paged 3']);
      const byLocation = await admin<{ items: unknown[] }>('GET', '/tests?tag=paged&location=office');
      expect(byLocation.body.items).toEqual([]);
      expectError(await admin('GET', '/tests?page_token=garbage'), 400, 'invalid_argument');
      expectError(await admin('GET', '/tests?page_size=0'), 400, 'invalid_argument');
    });
  });

  describe('secrets', () => {
    const value = 'super-secret-value-1f9a';

    it('stores secrets encrypted, never returns values, and guards referenced ones', async () => {
      const created = await admin<any>('POST', '/secrets', { name: 'CHAT_TOKEN', value });
      expect(created.status).toBe(201);
      expect(Object.keys(created.body).sort()).toEqual(['created_at', 'name', 'updated_at']);
      expectError(await admin('POST', '/secrets', { name: 'CHAT_TOKEN', value: 'x' }), 409, 'conflict');
      const test = await admin<any>(
        'POST',
        '/tests',
        testBody({
          name: 'uses secret',
          probe: { url: 'wss://x.example/ws', cookies: 'sid={{ secrets.CHAT_TOKEN }}' },
        }),
      );
      expect(test.status).toBe(201);
      expect((await admin('PUT', '/secrets/CHAT_TOKEN', { value: `${value}-2` })).status).toBe(200);
      // Agents hold the resolved value: a new value must reach them as a new revision of the test.
      const afterRotation = await admin<any>('GET', `/tests/${test.body.id}`);
      expect(afterRotation.body.revision).toBeGreaterThan(test.body.revision);
      const everything = JSON.stringify([
        (await admin('GET', '/secrets')).body,
        (await admin('GET', `/tests/${test.body.id}`)).body,
        (await admin('GET', '/tests?page_size=200')).body,
      ]);
      expect(everything).not.toContain(value);
      expectError(await admin('DELETE', '/secrets/CHAT_TOKEN'), 409, 'conflict');
      await admin('DELETE', `/tests/${test.body.id}`);
      expect((await admin('DELETE', '/secrets/CHAT_TOKEN')).status).toBe(204);
      expectError(await admin('PUT', '/secrets/CHAT_TOKEN', { value: 'x' }), 404, 'not_found');
    });

    // Read straight from PostgreSQL; the embedded database has no second door to check through.
    if (backend === 'postgres')
      it('keeps no plaintext in the database', async () => {
        await admin('POST', '/secrets', { name: 'AT_REST', value });
        const { Client } = await import('pg');
        const client = new Client({ connectionString: databaseUrl! });
        await client.connect();
        const rows = await client.query<{ sealed: Buffer }>(
          "SELECT sealed FROM secrets WHERE name = 'AT_REST'",
        );
        await client.end();
        expect(rows.rows[0]?.sealed.includes(Buffer.from(value))).toBe(false);
      });
  });

  describe('agent tokens and agents', () => {
    it('shows a token secret once, lists without it, and revokes', async () => {
      const created = await admin<any>('POST', '/locations/office/tokens', { name: 'rack 7' });
      expect(created.status).toBe(201);
      expect(created.body.secret).toMatch(/^wsa_[0-9a-f]{12}_/);
      const listed = await admin<any[]>('GET', '/locations/office/tokens');
      expect(listed.body.map((t) => t.name)).toContain('rack 7');
      expect(JSON.stringify(listed.body)).not.toContain(created.body.secret);
      const revoked = await admin<any>('DELETE', `/agent-tokens/${created.body.token.id}`);
      expect(revoked.body.revoked_at).not.toBeNull();
      expectError(await admin('DELETE', '/agent-tokens/not-a-token'), 404, 'not_found');
    });

    it('lists agents (none until one connects) and 404s an unknown one', async () => {
      expect((await admin('GET', '/agents')).body).toEqual([]);
      expectError(await admin('GET', '/agents/unknown-agent'), 404, 'not_found');
    });
  });

  it('keeps its data across a restart', async () => {
    const before = await admin<{ items: unknown[] }>('GET', '/tests?page_size=200');
    expect(await cp.stop()).toBe(0);
    cp = await startControlPlane(environment());
    admin = restClient(cp.httpUrl, adminKey);
    expect((await admin('GET', '/tests?page_size=200')).body).toEqual(before.body);
  }, 60_000);
});
