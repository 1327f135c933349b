import { setFlagsFromString } from 'node:v8';
import { EnvironmentError } from '@wsmon/contracts';
import { DirectoryLockedError } from '@wsmon/runtime';
import { Agent, stdoutLog } from './agent';
import { AgentUsageError, loadAgentConfig, type AgentConfig } from './config/agent-config';
import { ProbeModulesError } from './http/probe-modules';

/** Exit codes: 0 stopped cleanly, 1 failed, 2 bad configuration or the data directory in use. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
/** A shutdown that takes longer than this (probes, acks and close have their own bounds) is cut short. */
const SHUTDOWN_LIMIT_MS = 30_000;
/**
 * How far V8 lets the old generation grow past what survived the last full collection before it
 * collects again. Probes leave their sockets and buffers to the old generation (Node's own net and
 * ws objects survive the young collections; a bare `ws` client loop does the same), where only a
 * full collection frees them, and V8's own factor, up to 4 on a machine with memory to spare, let
 * an agent with 10,000 tests (50 MB live) swell to 300 MB before one (`npm run bench:agent`). At 30%
 * it collects every ten seconds or so, for no measurable CPU, and stays near 170 MB. V8 reads this
 * flag at every collection, so setting it at start works; a value given to node wins.
 */
const HEAP_GROWING_PERCENT = 30;

function boundHeapGrowth(): void {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((option) =>
    /heap[-_]growing[-_]percent/.test(option),
  );
  if (!given) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

function fail(lines: readonly string[], code: number): never {
  for (const line of lines) process.stderr.write(`wsmon agent: ${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  boundHeapGrowth();
  let config: AgentConfig;
  try {
    config = loadAgentConfig(process.env, process.argv.slice(2));
  } catch (error) {
    if (error instanceof EnvironmentError) fail(error.problems, EXIT_USAGE);
    if (error instanceof AgentUsageError) fail([error.message], EXIT_USAGE);
    throw error;
  }
  let agent: Agent;
  try {
    agent = await Agent.start({ config });
  } catch (error) {
    if (error instanceof DirectoryLockedError) {
      fail([`${error.message}: another agent uses the data directory ${config.dataDir}`], EXIT_USAGE);
    }
    if (error instanceof ProbeModulesError) fail(error.message.split('\n'), EXIT_USAGE);
    const { code, syscall, path } = error as NodeJS.ErrnoException;
    if (syscall === 'listen') {
      fail([`cannot serve HTTP on ${config.httpHost}:${config.httpPort} (${code})`], EXIT_USAGE);
    }
    if (code === 'EACCES' || code === 'EROFS' || code === 'ENOSPC') {
      fail([`cannot use the data directory: ${path ?? config.dataDir} (${code})`], EXIT_USAGE);
    }
    throw error;
  }
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      stdoutLog(`${signal} again: exiting now`);
      process.exit(EXIT_FAILED);
    }
    signalled = true;
    stdoutLog(`${signal} received`);
    setTimeout(() => {
      stdoutLog('the shutdown took too long: exiting now');
      process.exit(EXIT_FAILED);
    }, SHUTDOWN_LIMIT_MS).unref();
    agent.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        stdoutLog(`the shutdown failed: ${(error as Error).message}`);
        process.exit(EXIT_FAILED);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((error: unknown) => fail([`${(error as Error)?.stack ?? String(error)}`], EXIT_FAILED));
