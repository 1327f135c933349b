import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import {
  ConfigServiceClient,
  LocationKind,
  type CreateAgentTokenResponse,
  type CreateLocationResponse,
  type CreateTestResponse,
  type DeleteLocationResponse,
  type GetLocationResponse,
  type GetTestResponse,
  type ListAgentTokensResponse,
  type ListLocationsResponse,
  type ListTestsResponse,
  type PauseTestResponse,
  type RevokeAgentTokenResponse,
  type UpdateLocationResponse,
  type UpdateTestResponse,
} from '@wsmon/proto';
import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newAdminKey,
  newSecretKey,
  restClient,
  startControlPlane,
  type ControlPlaneProcess,
} from './support/control-plane-process';
import { fieldViolations } from './support/grpc-status';

let pg: TestPostgres;
let cp: ControlPlaneProcess;
let client: ConfigServiceClient;
const adminKey = newAdminKey();
let viewerKey: string;

beforeAll(async () => {
  pg = await startTestPostgres();
  cp = await startControlPlane({
    DATABASE_URL: await pg.createDatabase('grpc_api'),
    WSMON_ADMIN_KEY: adminKey,
    WSMON_SECRET_KEY: newSecretKey(),
  });
  client = new ConfigServiceClient(cp.grpcAddress, credentials.createInsecure());
  const viewer = await restClient(cp.httpUrl, adminKey)<{ key: string }>('POST', '/api-keys', {
    name: 'v',
    role: 'viewer',
  });
  viewerKey = viewer.body.key;
}, 120_000);

afterAll(async () => {
  client?.close();
  await cp?.stop();
  await pg?.stop();
});

/** Call metadata with the key; null sends none. */
const auth = (key: string | null) => {
  const metadata = new Metadata();
  if (key !== null) metadata.set('authorization', `Bearer ${key}`);
  return metadata;
};

type Callback<Res> = (error: ServiceError | null, response: Res) => void;

/** One unary call with the key in its metadata (the admin's unless given; null sends none). */
function rpc<Res>(
  invoke: (metadata: Metadata, callback: Callback<Res>) => unknown,
  key: string | null = adminKey,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(auth(key), (error, response) => (error ? reject(error) : resolve(response)));
  });
}

async function callError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('the call succeeded');
}

describe('gRPC ConfigService', () => {
  it('creates, reads, updates and lists locations', async () => {
    const created = await rpc<CreateLocationResponse>((md, cb) =>
      client.createLocation(
        {
          location: {
            id: '',
            name: 'eu-west',
            kind: LocationKind.LOCATION_KIND_MANAGED,
            region: 'eu-west-1',
            labels: { tier: 'gold' },
          },
        },
        md,
        cb,
      ),
    );
    expect(created.location).toMatchObject({
      name: 'eu-west',
      kind: LocationKind.LOCATION_KIND_MANAGED,
      labels: { tier: 'gold' },
    });
    const got = await rpc<GetLocationResponse>((md, cb) => client.getLocation({ id: 'eu-west' }, md, cb));
    expect(got.location?.id).toBe(created.location?.id);
    const updated = await rpc<UpdateLocationResponse>((md, cb) =>
      client.updateLocation(
        {
          location: { id: 'eu-west', name: '', kind: 0, region: 'eu-west-2', labels: {} },
          update_mask: ['region'],
        },
        md,
        cb,
      ),
    );
    expect(updated.location).toMatchObject({ region: 'eu-west-2', labels: { tier: 'gold' } });
    const listed = await rpc<ListLocationsResponse>((md, cb) =>
      client.listLocations({ page_size: 10, page_token: '' }, md, cb),
    );
    expect(listed.locations.map((l) => l.name)).toContain('eu-west');
  });

  it('creates a test with the REST defaults, patches it with a field mask and pauses it', async () => {
    const created = await rpc<CreateTestResponse>((md, cb) =>
      client.createTest(
        {
          test: {
            id: '',
            name: 'chat gateway',
            tags: ['prod'],
            probe: {
              url: 'wss://chat.example.com/ws',
              ping_mode: 'protocol',
              interpretation: 'round_trip_latency',
            },
            schedule: { cron: '*/30 * * * * *' },
            locations: ['eu-west'],
            revision: 0,
          },
        },
        md,
        cb,
      ),
    );
    expect(created.test).toMatchObject({
      name: 'chat gateway',
      enabled: true,
      description: '',
      retry: { attempts: 0, delay_ms: 1000 },
      probe: { url: 'wss://chat.example.com/ws', timeout_ms: 10000 },
    });
    const id = created.test!.id;
    const patched = await rpc<UpdateTestResponse>((md, cb) =>
      client.updateTest(
        {
          test: { id, name: '', tags: [], locations: [], revision: 0, description: 'watched' },
          update_mask: ['description'],
        },
        md,
        cb,
      ),
    );
    expect(patched.test).toMatchObject({ name: 'chat gateway', description: 'watched', tags: ['prod'] });
    expect(patched.test!.revision).toBeGreaterThan(created.test!.revision);
    const paused = await rpc<PauseTestResponse>((md, cb) => client.pauseTest({ id }, md, cb));
    expect(paused.test?.enabled).toBe(false);
    const listed = await rpc<ListTestsResponse>((md, cb) =>
      client.listTests(
        {
          page_size: 10,
          page_token: '',
          tag: 'prod',
          location: '',
          query: '',
          enabled: false,
        },
        md,
        cb,
      ),
    );
    expect(listed.tests.map((t) => t.id)).toEqual([id]);
    // The same data through REST: one service behind both APIs.
    const rest = await restClient(cp.httpUrl, adminKey)<{ description: string }>('GET', `/tests/${id}`);
    expect(rest.body.description).toBe('watched');
  });

  it('returns INVALID_ARGUMENT with field violations from the shared schema', async () => {
    const error = await callError(
      rpc<CreateTestResponse>((md, cb) =>
        client.createTest(
          {
            test: {
              id: '',
              name: 'bad',
              tags: [],
              probe: { url: 'http://x', timeout_ms: 50 },
              schedule: { interval_s: 0 },
              locations: ['eu-west'],
              revision: 0,
            },
          },
          md,
          cb,
        ),
      ),
    );
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldViolations(error).map((v) => [v.field, v.reason])).toEqual(
      expect.arrayContaining([
        ['test.probe.url', 'ws_scheme'],
        ['test.probe.timeout_ms', 'min'],
        ['test.schedule.interval_s', 'min'],
      ]),
    );
  });

  it('maps the other errors to their statuses', async () => {
    expect(
      (
        await callError(
          rpc<GetTestResponse>((md, cb) =>
            client.getTest({ id: '00000000-0000-0000-0000-000000000000' }, md, cb),
          ),
        )
      ).code,
    ).toBe(status.NOT_FOUND);
    const duplicate = { location: { id: '', name: 'eu-west', kind: 0, labels: {} } };
    expect(
      (await callError(rpc<CreateLocationResponse>((md, cb) => client.createLocation(duplicate, md, cb))))
        .code,
    ).toBe(status.ALREADY_EXISTS);
    expect(
      (
        await callError(
          rpc<DeleteLocationResponse>((md, cb) => client.deleteLocation({ id: 'eu-west' }, md, cb)),
        )
      ).code,
    ).toBe(status.FAILED_PRECONDITION);
    expect(
      (
        await callError(
          rpc<ListTestsResponse>(
            (md, cb) =>
              client.listTests({ page_size: 1, page_token: '', tag: '', location: '', query: '' }, md, cb),
            null,
          ),
        )
      ).code,
    ).toBe(status.UNAUTHENTICATED);
    const asViewer = rpc<CreateLocationResponse>(
      (md, cb) => client.createLocation({ location: { id: '', name: 'x', kind: 0, labels: {} } }, md, cb),
      viewerKey,
    );
    expect((await callError(asViewer)).code).toBe(status.PERMISSION_DENIED);
    const noMask = rpc<UpdateTestResponse>((md, cb) =>
      client.updateTest(
        {
          test: { id: 'x', name: '', tags: [], locations: [], revision: 0 },
          update_mask: [],
        },
        md,
        cb,
      ),
    );
    expect((await callError(noMask)).code).toBe(status.INVALID_ARGUMENT);
  });

  it('applies the roles as REST does: editors write tests and locations, not agent tokens', async () => {
    const editor = await restClient(cp.httpUrl, adminKey)<{ key: string }>('POST', '/api-keys', {
      name: 'e',
      role: 'editor',
    });
    const created = await rpc<CreateLocationResponse>(
      (md, cb) =>
        client.createLocation({ location: { id: '', name: 'by-editor', kind: 0, labels: {} } }, md, cb),
      editor.body.key,
    );
    expect(created.location?.name).toBe('by-editor');
    const token = rpc<CreateAgentTokenResponse>(
      (md, cb) => client.createAgentToken({ location_id: 'by-editor', name: 'x' }, md, cb),
      editor.body.key,
    );
    expect((await callError(token)).code).toBe(status.PERMISSION_DENIED);
    const viewerRead = await rpc<GetLocationResponse>(
      (md, cb) => client.getLocation({ id: 'by-editor' }, md, cb),
      viewerKey,
    );
    expect(viewerRead.location?.name).toBe('by-editor');
  });

  it('issues and revokes agent tokens', async () => {
    const created = await rpc<CreateAgentTokenResponse>((md, cb) =>
      client.createAgentToken({ location_id: 'eu-west', name: 'rack 1' }, md, cb),
    );
    expect(created.secret).toMatch(/^wsa_/);
    const listed = await rpc<ListAgentTokensResponse>((md, cb) =>
      client.listAgentTokens(
        {
          location_id: 'eu-west',
          page_size: 0,
          page_token: '',
        },
        md,
        cb,
      ),
    );
    expect(listed.agent_tokens.map((t) => t.name)).toContain('rack 1');
    const revoked = await rpc<RevokeAgentTokenResponse>((md, cb) =>
      client.revokeAgentToken({ id: created.agent_token!.id }, md, cb),
    );
    expect(revoked.agent_token?.revoke_time).toBeInstanceOf(Date);
  });

  it('answers a malformed message with an error status and goes on serving', async () => {
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]); // a length prefix past the end
    const error = await new Promise<ServiceError>((resolve, reject) =>
      client.makeUnaryRequest(
        '/wsmon.v1.ConfigService/CreateTest',
        () => garbage,
        (bytes: Buffer) => bytes,
        {},
        auth(adminKey),
        (err: ServiceError | null) => (err ? resolve(err) : reject(new Error('accepted garbage'))),
      ),
    );
    expect([status.INTERNAL, status.INVALID_ARGUMENT]).toContain(error.code);
    const listed = await rpc<ListLocationsResponse>((md, cb) =>
      client.listLocations({ page_size: 1, page_token: '' }, md, cb),
    );
    expect(listed.locations).toHaveLength(1);
  });

  it('serves the standard health service', async () => {
    const definition = grpc.loadPackageDefinition(
      loadSync(healthProtoPath, { keepCase: true, enums: String }),
    );
    const { Health } = (
      definition.grpc as unknown as { health: { v1: { Health: grpc.ServiceClientConstructor } } }
    ).health.v1;
    const health = new Health(cp.grpcAddress, credentials.createInsecure()) as unknown as grpc.Client & {
      check(request: { service: string }, callback: Callback<{ status: string }>): void;
    };
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        health.check({ service }, (error, response) => (error ? reject(error) : resolve(response))),
      );
    expect((await check('')).status).toBe('SERVING');
    expect((await check('wsmon.v1.ConfigService')).status).toBe('SERVING');
    health.close();
  });
});
