/**
 * The wire contract of wsmon for TypeScript: the messages and the grpc-js service definition, client
 * and server types generated from `proto/` (never edited by hand: `npm run proto:generate`), and the
 * runtime helpers every gRPC server of wsmon uses.
 */
export * from './generated/wsmon/v1/agent';
export * from './generated/wsmon/v1/config';
export { addHealthAndReflection, HEALTH_SERVICE } from './health-and-reflection';
export { CONFIG_PROTO, protoFiles, type ProtoFiles } from './proto-files';
export type { HealthImplementation, ServingStatus } from 'grpc-health-check';
