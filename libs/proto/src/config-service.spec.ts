import { fromBinary } from '@bufbuild/protobuf';
import {
  type DescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath, type HealthImplementation } from 'grpc-health-check';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addHealthAndReflection,
  AgentServiceClient,
  ConfigServiceClient,
  ConfigServiceService,
  HEALTH_SERVICE,
  type ConfigServiceServer,
  type Location,
  LocationKind,
  Test,
  UpdateTestRequest,
} from './index';

const CONFIG_SERVICE = ConfigServiceClient.serviceName;
const CALL_MS = 2_000;

type Callback<T> = (error: grpc.ServiceError | null, response?: T) => void;

/** Runs one callback-style call as a promise. */
function unary<T>(start: (callback: Callback<T>) => unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, response) => (error ? reject(error) : resolve(response as T)));
  });
}

const options = (): grpc.CallOptions => ({ deadline: Date.now() + CALL_MS });

/** Just enough of the service to prove the generated definition end to end; grpc-js answers the rest UNIMPLEMENTED. */
function inMemoryLocations(): Pick<ConfigServiceServer, 'createLocation' | 'getLocation' | 'listLocations'> {
  const locations = new Map<string, Location>();
  return {
    createLocation: ({ request }, callback) => {
      const input = request.location;
      if (!input?.name) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: 'location.name is required' });
        return;
      }
      const now = new Date();
      const location: Location = {
        ...input,
        id: randomUUID(),
        kind:
          input.kind === LocationKind.LOCATION_KIND_UNSPECIFIED
            ? LocationKind.LOCATION_KIND_PRIVATE
            : input.kind,
        create_time: now,
        update_time: now,
      };
      locations.set(location.id, location);
      callback(null, { location });
    },
    getLocation: ({ request }, callback) => {
      const location = locations.get(request.id);
      if (location) callback(null, { location });
      else
        callback({
          code: grpc.status.NOT_FOUND,
          details: `location ${JSON.stringify(request.id)} not found`,
        });
    },
    listLocations: (_call, callback) => {
      callback(null, { locations: [...locations.values()], next_page_token: '' });
    },
  };
}

interface HealthClient extends grpc.Client {
  check(
    request: { service: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: Callback<{ status: string }>,
  ): grpc.ClientUnaryCall;
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

interface ReflectionClient extends grpc.Client {
  ServerReflectionInfo(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
  ): grpc.ClientDuplexStream<Record<string, string>, ReflectionResponse>;
}

/** A client for a service defined by a .proto file, loaded the way any grpc-js user would. */
function dynamicClient<C>(file: string, includeDir: string, service: string, address: string): C {
  const definition = loadSync(file, { includeDirs: [includeDir], keepCase: true, enums: String });
  const Client = grpc.makeGenericClientConstructor(definition[service] as grpc.ServiceDefinition, service);
  return new Client(address, grpc.credentials.createInsecure()) as C;
}

/**
 * What grpcurl checks when it links the descriptors reflection returned: every type a file uses is
 * fully qualified and defined in the file itself or in a file it imports.
 */
function unresolvedReferences(files: readonly FileDescriptorProto[]): string[] {
  const defined = new Map<string, Set<string>>();
  for (const file of files) {
    const names = new Set<string>();
    const add = (messages: readonly DescriptorProto[], scope: string) => {
      for (const m of messages) {
        names.add(`${scope}.${m.name}`);
        for (const e of m.enumType) names.add(`${scope}.${m.name}.${e.name}`);
        add(m.nestedType, `${scope}.${m.name}`);
      }
    };
    add(file.messageType, `.${file.package}`);
    for (const e of file.enumType) names.add(`.${file.package}.${e.name}`);
    defined.set(file.name, names);
  }
  const unresolved: string[] = [];
  for (const file of files) {
    const visible = [file.name, ...file.dependency].map((name) => defined.get(name) ?? new Set<string>());
    const check = (reference: string) => {
      if (reference && !visible.some((names) => names.has(reference))) {
        unresolved.push(`${file.name}: ${reference}`);
      }
    };
    const visit = (messages: readonly DescriptorProto[]) => {
      for (const m of messages) {
        m.field.forEach((f) => check(f.typeName));
        visit(m.nestedType);
      }
    };
    visit(file.messageType);
    for (const method of file.service.flatMap((s) => s.method)) {
      check(method.inputType);
      check(method.outputType);
    }
  }
  return unresolved;
}

describe('wsmon.v1 messages', () => {
  it('carry a test, its probe JSON included, through the wire encoding unchanged', () => {
    const probe = {
      url: 'wss://feed.example.com/ws',
      timeout_ms: 5000,
      ping_mode: 'message',
      send_message: '{"op":"ping"}',
      headers: { 'X-Tenant': 'acme' },
      assertions: [{ type: 'response_time', operator: 'less_than', property: 'connect', target: 500 }],
      tls: { skip_verify: false },
    };
    const test: Test = {
      id: 't-1',
      name: 'feed',
      tags: ['prod'],
      enabled: false,
      probe,
      schedule: { interval_s: 60 },
      locations: ['eu-west'],
      retry: { attempts: 2 },
      revision: 3,
      create_time: new Date('2026-01-02T03:04:05.678Z'),
    };
    const decoded = Test.decode(Test.encode(test).finish());
    expect(decoded).toEqual(test);
    expect(decoded.probe).toStrictEqual(probe);
    // Presence survives: absent optional fields stay absent, so the REST defaults can apply.
    expect(decoded.description).toBeUndefined();
    expect(decoded.retry?.delay_ms).toBeUndefined();
    expect(decoded.schedule?.cron).toBeUndefined();

    const mask = UpdateTestRequest.decode(
      UpdateTestRequest.encode({ test: { ...test, name: 'renamed' }, update_mask: ['name'] }).finish(),
    );
    expect(mask.update_mask).toEqual(['name']);
  });
});

describe(CONFIG_SERVICE, { timeout: 10_000 }, () => {
  let server: grpc.Server;
  let health: HealthImplementation;
  let address: string;
  let client: ConfigServiceClient;

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(ConfigServiceService, inMemoryLocations());
    health = addHealthAndReflection(server, [CONFIG_SERVICE]);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    address = `127.0.0.1:${port}`;
    client = new ConfigServiceClient(address, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    server?.forceShutdown();
  });

  it('creates, gets and lists a location through the generated client and service definition', async () => {
    const created = await unary<{ location?: Location }>((cb) =>
      client.createLocation(
        {
          location: {
            id: '',
            name: 'eu-west',
            kind: LocationKind.LOCATION_KIND_UNSPECIFIED,
            region: 'eu-west-1',
            labels: { team: 'edge' },
          },
        },
        new grpc.Metadata(),
        options(),
        cb,
      ),
    );
    const location = created.location;
    expect(location).toMatchObject({
      name: 'eu-west',
      kind: LocationKind.LOCATION_KIND_PRIVATE,
      region: 'eu-west-1',
      labels: { team: 'edge' },
    });
    expect(location?.create_time).toBeInstanceOf(Date);
    const id = location?.id ?? '';

    const got = await unary<{ location?: Location }>((cb) =>
      client.getLocation({ id }, new grpc.Metadata(), options(), cb),
    );
    expect(got.location).toEqual(location);

    const listed = await unary<{ locations: Location[]; next_page_token: string }>((cb) =>
      client.listLocations({ page_size: 0, page_token: '' }, new grpc.Metadata(), options(), cb),
    );
    expect(listed.locations.map((l) => l.name)).toEqual(['eu-west']);
    expect(listed.next_page_token).toBe('');
  });

  it('answers NOT_FOUND with a message for an unknown location', async () => {
    const error = await unary((cb) =>
      client.getLocation({ id: 'missing' }, new grpc.Metadata(), options(), cb),
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: grpc.status.NOT_FOUND, details: 'location "missing" not found' });
  });

  it('answers UNIMPLEMENTED for the methods the server leaves out', async () => {
    const error = await unary((cb) =>
      client.deleteTest({ id: 'x' }, new grpc.Metadata(), options(), cb),
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: grpc.status.UNIMPLEMENTED });
  });

  it('serves the standard health service for the server and each service', async () => {
    const healthClient = dynamicClient<HealthClient>(
      healthProtoPath,
      dirname(healthProtoPath),
      HEALTH_SERVICE,
      address,
    );
    const check = (service: string) =>
      unary<{ status: string }>((cb) => healthClient.check({ service }, new grpc.Metadata(), options(), cb));
    try {
      expect(await check('')).toEqual({ status: 'SERVING' });
      expect(await check(CONFIG_SERVICE)).toEqual({ status: 'SERVING' });
      health.setStatus(CONFIG_SERVICE, 'NOT_SERVING');
      expect(await check(CONFIG_SERVICE)).toEqual({ status: 'NOT_SERVING' });
      await expect(check('wsmon.v1.Unknown')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      health.setStatus(CONFIG_SERVICE, 'SERVING');
      healthClient.close();
    }
  });

  it('describes the contract through server reflection (v1)', async () => {
    const reflectionRoot = join(
      dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')),
      'build',
      'proto',
    );
    const reflection = dynamicClient<ReflectionClient>(
      'grpc/reflection/v1/reflection.proto',
      reflectionRoot,
      'grpc.reflection.v1.ServerReflection',
      address,
    );
    const ask = (requests: Record<string, string>[]) =>
      new Promise<ReflectionResponse[]>((resolve, reject) => {
        const responses: ReflectionResponse[] = [];
        const stream = reflection.ServerReflectionInfo(new grpc.Metadata(), options());
        stream.on('data', (response: ReflectionResponse) => responses.push(response));
        stream.on('error', reject);
        stream.on('end', () => resolve(responses));
        for (const request of requests) stream.write(request);
        stream.end();
      });
    try {
      const [services, file, agentFile] = await ask([
        { list_services: '' },
        { file_containing_symbol: CONFIG_SERVICE },
        { file_containing_symbol: AgentServiceClient.serviceName },
      ]);
      expect(services?.list_services_response?.service.map((s) => s.name).sort()).toEqual(
        [CONFIG_SERVICE, HEALTH_SERVICE].sort(),
      );

      const files = (file?.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
      const config = files.find((f) => f.package === 'wsmon.v1');
      // proto-loader rebuilds one descriptor per package: the file holding ConfigService holds every
      // service of wsmon.v1, described whether or not this server serves it.
      expect(config?.service.map((s) => s.name).sort()).toEqual(['AgentService', 'ConfigService']);
      const test = config?.messageType.find((m) => m.name === 'Test');
      expect(test?.field.map((f) => f.name)).toEqual(expect.arrayContaining(['create_time', 'update_time']));
      expect(config?.dependency).toEqual(['google_protobuf.proto']);
      expect(unresolvedReferences(files)).toEqual([]);

      const agentFiles = (agentFile?.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
      const connect = agentFiles
        .find((f) => f.package === 'wsmon.v1')
        ?.service.find((s) => s.name === 'AgentService')
        ?.method.find((m) => m.name === 'Connect');
      expect(connect).toMatchObject({
        inputType: '.wsmon.v1.ConnectRequest',
        outputType: '.wsmon.v1.ConnectResponse',
        clientStreaming: true,
        serverStreaming: true,
      });
      expect(unresolvedReferences(agentFiles)).toEqual([]);
    } finally {
      reflection.close();
    }
  });
});
