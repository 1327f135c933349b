export { getZooTlsMaterial, type CertAndKey, type ZooTlsMaterial } from './tls-fixtures';
export {
  startTargetZoo,
  ZOO_SECRETS,
  ZOO_SERVER_ID,
  ZOO_SUBPROTOCOL,
  type TargetZoo,
  type TlsTarget,
} from './ws-target-zoo';
export { DNS_SERVFAIL_NAME, DNS_SILENT_NAME, startTestDnsServer, type TestDnsServer } from './dns-server';
export { startTestPostgres, type TestPostgres, type TestPostgresOptions } from './postgres';
export { spawnAckingChild, type AckingChild } from './acking-child';
export { GRAPHQL_TOKEN, graphqlTestSchema, startGraphqlServer, type GraphqlServer } from './graphql-server';
export {
  SOCKET_IO_PING,
  SOCKET_IO_SERVER_ID,
  SOCKET_IO_TOKEN,
  startSocketIoServer,
  type SocketIoServer,
} from './socket-io-server';
export {
  JSON_RPC_FIRST_BLOCK,
  JSON_RPC_NODE_MODES,
  startJsonRpcNode,
  type JsonRpcNode,
  type JsonRpcNodeMode,
} from './json-rpc-node';
export { POOL_BACKENDS, startBackendPool, type BackendPool } from './backend-pool';
export {
  STOMP_LOGIN,
  STOMP_PASSCODE,
  STOMP_SERVER_NAME,
  STOMP_TICK_MS,
  startStompServer,
  type StompServer,
} from './stomp-server';
export { goalMark, median, quantile, table } from './bench-report';
