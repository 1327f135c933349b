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
