import type * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatusMap } from 'grpc-health-check';
import { dirname, relative, sep } from 'node:path';
import { withFileDependencies } from './file-dependencies';
import { protoFiles } from './proto-files';

/** The standard health service, `grpc.health.v1.Health`. */
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * Adds the standard health service and server reflection (v1 and v1alpha) to a grpc-js server.
 *
 * Health answers SERVING for each of `serviceNames` and for `""` (the whole server). Reflection
 * describes exactly `serviceNames` and the health service, from the `.proto` files of `proto/`
 * loaded at runtime, so `grpcurl` and similar tools work without local copies of the contract.
 *
 * @param serviceNames fully-qualified names of the services the server serves, such as
 *   `wsmon.v1.ConfigService`; each must be defined in `proto/`.
 * @returns the health implementation: set NOT_SERVING on shutdown, before the server drains:
 *   `health.setStatus('', 'NOT_SERVING')`.
 * @throws Error when a service name is not defined by the contract.
 */
export function addHealthAndReflection(
  server: grpc.Server,
  serviceNames: readonly string[],
): HealthImplementation {
  const contract = protoFiles();
  // grpc-health-check ships .../proto/health/v1/health.proto, whose package is grpc.health.v1.
  const healthRoot = dirname(dirname(dirname(healthProtoPath)));
  const healthFile = relative(healthRoot, healthProtoPath).split(sep).join('/');
  // keepCase: the descriptors reflection serves keep the contract's snake_case field names.
  const definition = loadSync([...contract.all, healthFile], {
    includeDirs: [contract.root, healthRoot],
    keepCase: true,
  });

  // Messages and enums have a `format`; services are plain maps of methods.
  const unknown = serviceNames.filter((name) => {
    const entry = definition[name];
    return entry === undefined || 'format' in entry;
  });
  if (unknown.length > 0) {
    throw new Error(`not services of the contract in ${contract.root}: ${unknown.join(', ')}`);
  }

  const statuses: ServingStatusMap = { '': 'SERVING' };
  for (const name of serviceNames) statuses[name] = 'SERVING';
  const health = new HealthImplementation(statuses);
  health.addToServer(server);

  new ReflectionService(withFileDependencies(definition), {
    services: [...serviceNames, HEALTH_SERVICE],
  }).addToServer(server);
  return health;
}
