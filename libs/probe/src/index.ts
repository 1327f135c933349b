export {
  createProbe,
  runProbe,
  invalidConfigResult,
  PROBE_USER_AGENT,
  type Probe,
  type ProbeRuntime,
} from './probe';
export { dnsServerLookup, systemLookup, type HostLookup, type ResolvedAddress } from './lookup';
export { REDACTED } from './secrets';
