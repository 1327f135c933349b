export { createProbe, runProbe, invalidConfigResult, PROBE_USER_AGENT, type Probe } from './probe';
export { REDACTED } from './secrets';
