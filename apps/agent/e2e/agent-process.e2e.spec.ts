import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTargetZoo, type TargetZoo } from '@wsmon/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignment, ScriptedControlPlane } from '../src/session/scripted-control-plane.spec-helper';

const MAIN = 'apps/agent/src/main.ts';
const TOKEN = 'wsa_e2e_0123456789abcdef0123';
const WAIT_MS = 15_000;

let zoo: TargetZoo;
let scratch: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  zoo = await startTargetZoo();
  scratch = mkdtempSync(join(tmpdir(), 'wsmon-agent-e2e-'));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await zoo.close();
  rmSync(scratch, { recursive: true, force: true });
});

interface AgentProcess {
  readonly child: ChildProcess;
  readonly stdout: string[];
  stderr(): string;
  /** The first stdout line (from the start) matching, as a match. */
  line(pattern: RegExp): Promise<RegExpMatchArray>;
  readonly exited: Promise<number | null>;
}

/** `wsmon-agent` as a process, run from its sources (tsx), with only the environment given. */
function spawnAgent(env: Record<string, string>, args: string[] = []): AgentProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const stdout: string[] = [];
  let stderr = '';
  let pending = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop()!;
    stdout.push(...lines);
    for (const wake of [...waiters]) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
      for (const wake of [...waiters]) wake();
    }),
  );
  const line = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        for (const text of stdout) {
          const match = text.match(pattern);
          if (match) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(match);
            return;
          }
        }
        if (child.exitCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(
            new Error(`exited (${child.exitCode}) without ${pattern}:\n${stdout.join('\n')}\n${stderr}`),
          );
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no line ${pattern} within ${WAIT_MS} ms:\n${stdout.join('\n')}\n${stderr}`));
      }, WAIT_MS);
      waiters.add(check);
      check();
    });
  return { child, stdout, stderr: () => stderr, line, exited };
}

function agentEnv(controlPlane: string, dataDir: string): Record<string, string> {
  return {
    WSMON_CONTROL_PLANE: controlPlane,
    WSMON_TOKEN: TOKEN,
    WSMON_INSECURE: '1',
    WSMON_AGENT_DATA_DIR: dataDir,
    WSMON_AGENT_HTTP_PORT: '0',
    WSMON_AGENT_SPOOL_MAX_BYTES: String(8 * 1024 * 1024),
  };
}

async function scheduledSuccesses(httpUrl: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const match = /^wsmon_agent_probes_total\{kind="scheduled",outcome="success"\} (\d+)$/m.exec(text);
  return Number(match?.[1] ?? 0);
}

describe('the wsmon-agent process', () => {
  it('refuses a bad configuration, naming every problem, with exit code 2', async () => {
    const agent = spawnAgent({ WSMON_AGENT_CONCURRENCY: '0' });
    expect(await agent.exited).toBe(2);
    expect(agent.stderr()).toContain('wsmon agent: WSMON_CONTROL_PLANE: is required');
    expect(agent.stderr()).toContain('wsmon agent: WSMON_TOKEN: is required');
    expect(agent.stderr()).toContain('wsmon agent: WSMON_AGENT_CONCURRENCY: must be at least 1');
  });

  it('probes from its kept configuration across a restart while the control plane is down, then delivers the results', async () => {
    const dataDir = join(scratch, 'data');
    const plane = await ScriptedControlPlane.start({ token: TOKEN });
    const echo = assignment({
      test_id: 'echo',
      probe: { url: zoo.url('/echo') },
      schedule: { interval_s: 1 },
    });

    // First run: configured by the control plane, results acknowledged, DrainDone at SIGTERM.
    const first = spawnAgent(agentEnv(plane.address, dataDir));
    const stream = await plane.nextStream();
    const hello = await stream.next('hello');
    stream.welcome();
    stream.acknowledgeResults();
    await first.line(
      new RegExp(`^wsmon agent: connected to ${plane.address} as ${hello.agent_id} \\(location eu-1\\)$`),
    );
    stream.snapshot(3, [echo]);
    await first.line(/^wsmon agent: configured: 1 tests at revision 3$/);
    const delivered = (await stream.next('result_batch')).results;
    expect(delivered[0]).toMatchObject({ test_id: 'echo', success: true });
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(stream.all('drain_done')).toHaveLength(1);
    await plane.close();

    // Second run, the control plane gone: the kept configuration runs; a second agent is refused.
    const second = spawnAgent(agentEnv(plane.address, dataDir));
    await second.line(/^wsmon agent: kept configuration: 1 tests at revision 3$/);
    const [, httpUrl] = await second.line(/^wsmon agent: serving .* on (http:\/\/\S+)$/);
    const deadline = Date.now() + WAIT_MS;
    while ((await scheduledSuccesses(httpUrl!)) < 1) {
      if (Date.now() > deadline) throw new Error(`no run of the kept test:\n${second.stdout.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await fetch(`${httpUrl}/readyz`)).status).toBe(503);
    const intruder = spawnAgent(agentEnv(plane.address, dataDir));
    expect(await intruder.exited).toBe(2);
    expect(intruder.stderr()).toContain(`another agent uses the data directory ${dataDir}`);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    // Third run, a control plane back: the results of the second run arrive, as they were recorded.
    const back = await ScriptedControlPlane.start({ token: TOKEN });
    try {
      const third = spawnAgent(agentEnv(back.address, dataDir));
      const resumed = await back.nextStream();
      expect(await resumed.next('hello')).toMatchObject({
        agent_id: hello.agent_id,
        config_revision: 3,
        test_revisions: { echo: 1 },
      });
      resumed.welcome();
      resumed.acknowledgeResults();
      const offline = (await resumed.next('result_batch')).results;
      expect(offline.length).toBeGreaterThan(0);
      expect(offline[0]!.sequence).toBeGreaterThan(delivered.at(-1)!.sequence);
      expect(offline.every((result) => result.test_id === 'echo')).toBe(true);
      third.child.kill('SIGTERM');
      expect(await third.exited).toBe(0);
    } finally {
      await back.close();
    }
  });
});
