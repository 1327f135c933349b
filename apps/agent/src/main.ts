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

function fail(lines: readonly string[], code: number): never {
  for (const line of lines) process.stderr.write(`wsmon agent: ${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
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
