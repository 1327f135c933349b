import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { version } from '../../package.json';
import { errorCode, writeFileDurably } from '../storage/durable-file';

/** Who the agent is: what its Hello says about it. */
export interface AgentIdentity {
  /** Generated at the first start (a UUID) and kept in the data directory: survives restarts. */
  readonly agentId: string;
  readonly hostname: string;
  /** The agent's version, from its package.json (bundled at build time). */
  readonly version: string;
}

/** The agent's version, as its Hello reports it. */
export const AGENT_VERSION: string = version;

export const AGENT_ID_FILE = 'agent-id';
/** Hello.agent_id: 1 to 128 characters; a generated one is a UUID. */
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Reads the agent id kept in `dataDir`, or generates one and keeps it (durably, before it is ever
 * sent: the control plane assigns tests by it). A damaged id file is replaced by a new id, and
 * `onWarning` says so: the control plane then sees a new agent, which is harmless.
 */
export async function loadAgentIdentity(
  dataDir: string,
  onWarning: (message: string) => void = () => undefined,
): Promise<AgentIdentity> {
  const path = join(dataDir, AGENT_ID_FILE);
  let agentId: string | undefined;
  try {
    const kept = (await readFile(path, 'utf8')).trim();
    if (AGENT_ID.test(kept)) agentId = kept;
    else onWarning(`${path} does not hold an agent id: a new one is generated`);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  if (agentId === undefined) {
    agentId = randomUUID();
    await writeFileDurably(path, `${agentId}\n`, 0o644);
  }
  return { agentId, hostname: hostname(), version: AGENT_VERSION };
}
