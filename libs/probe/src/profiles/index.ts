import type { ProbeConfig } from '@wsmon/contracts';
import type { RegexCache } from '../assertions';
import { compileGraphql } from './graphql';
import { compileJsonRpc } from './json-rpc';
import type { ProfileCompiler, ProfileDriver } from './profile';
import { compileSocketIo } from './socket-io';
import { compileStickySession } from './sticky-session';
import { compileStomp } from './stomp';

const COMPILERS: Record<Exclude<NonNullable<ProbeConfig['profile']>, 'raw'>, ProfileCompiler> = {
  graphql: compileGraphql,
  socket_io: compileSocketIo,
  stomp: compileStomp,
  json_rpc: compileJsonRpc,
  sticky_session: compileStickySession,
};

/** The profile a configuration runs, compiled once; undefined for `raw` (the steps). */
export function compileProfile(config: ProbeConfig, regexes: RegexCache): ProfileDriver | undefined {
  const profile = config.profile ?? 'raw';
  return profile === 'raw' ? undefined : COMPILERS[profile](config, regexes);
}

export type { ProfileDriver, ProfileSession, ProfileConnection, Inbound } from './profile';
