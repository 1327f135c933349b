import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetricFamily } from '@wsmon/metrics';
import type { ProbeRuntime } from '@wsmon/probe';
import { acquireDirectoryLock, type DirectoryLock } from '@wsmon/runtime';
import type { AgentConfig } from './config/agent-config';
import { ConfigStore, type KeptConfigLoad } from './config/config-store';
import { checkAssignment, type HeldTest } from './config/test-assignment';
import { startAgentHttpServer, type AgentHttpServer, type Readiness } from './http/agent-http-server';
import { agentMetricFamilies } from './http/agent-metrics';
import { defaultProbeModules, loadProbeModules, type ProbeModules } from './http/probe-modules';
import { loadAgentIdentity, type AgentIdentity } from './identity/agent-identity';
import type { ResultRecord } from './results/result-record';
import { ProbeRunner } from './runs/probe-runner';
import { FileSlotStore, TestScheduler } from './scheduler';
import {
  AgentSession,
  type AgentSessionOptions,
  type SessionHost,
  type SessionStatus,
} from './session/agent-session';
import type { HeldConfig } from './session/config-sync';
import { ResultSpool } from './spool/result-spool';

/** Files of the data directory. */
export const DATA_FILES = {
  lock: 'agent.lock',
  config: 'config.enc',
  slots: 'slots.json',
  spool: 'spool',
} as const;

export interface AgentShutdownOptions {
  /** How long probes in flight may go on at shutdown before they are abandoned. Default 10 s. */
  readonly runDeadlineMs?: number;
  /** How long to wait for the control plane to acknowledge the results left. Default 5 s. */
  readonly ackWaitMs?: number;
  /** How long to wait for the control plane to end the call after the half-close. Default 2 s. */
  readonly closeWaitMs?: number;
}

export interface AgentOptions {
  readonly config: AgentConfig;
  /** One line per event, without the `wsmon agent: ` prefix. Default: stdout, with it. */
  readonly log?: (line: string) => void;
  /** For tests: backoff, limits, observers of the session. */
  readonly session?: Partial<
    Pick<
      AgentSessionOptions,
      | 'backoff'
      | 'random'
      | 'healthySessionMs'
      | 'resultLimits'
      | 'welcomeTimeoutMs'
      | 'onEvent'
      | 'capabilities'
      | 'env'
    >
  >;
  readonly probeRuntime?: ProbeRuntime;
  readonly shutdown?: AgentShutdownOptions;
}

/** Writes `wsmon agent: <line>` to stdout: one line per event. */
export function stdoutLog(line: string): void {
  process.stdout.write(`wsmon agent: ${line}\n`);
}

/**
 * The agent, composed: its data directory (locked against a second agent), identity, kept
 * configuration, result spool, scheduler and probe runner, local HTTP server, and the session with
 * the control plane. The kept configuration runs from the start, so the agent probes while the
 * control plane is unreachable (unless its last session drained it).
 *
 * In-process: `const agent = await Agent.start({ config: loadAgentConfig(env, argv) })`, then
 * `agent.stop()`. As a process: `main.ts` (the `wsmon-agent` command).
 */
export class Agent {
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly identity: AgentIdentity,
    private readonly config: AgentConfig,
    private readonly log: (line: string) => void,
    private readonly lock: DirectoryLock,
    readonly spool: ResultSpool<ResultRecord>,
    private readonly scheduler: TestScheduler<HeldTest>,
    private readonly runner: ProbeRunner,
    private readonly session: AgentSession,
    private readonly http: AgentHttpServer,
    private readonly shutdownOptions: AgentShutdownOptions,
  ) {}

  /**
   * Starts the agent. Throws `DirectoryLockedError` when another agent holds the data directory and
   * `ProbeModulesError` for a bad modules file; anything it opened is closed again.
   */
  static async start(options: AgentOptions): Promise<Agent> {
    const { config } = options;
    const log = options.log ?? stdoutLog;
    const modules: ProbeModules =
      config.probeModulesPath === undefined
        ? defaultProbeModules()
        : loadProbeModules(config.probeModulesPath);
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const lock = await acquireDirectoryLock(config.dataDir, DATA_FILES.lock, 'wsmon agent');
    const opened: { close(): Promise<void> }[] = [];
    try {
      const identity = await loadAgentIdentity(config.dataDir, log);
      log(`starting agent ${identity.agentId} (version ${identity.version}), data in ${config.dataDir}`);
      const store = new ConfigStore(join(config.dataDir, DATA_FILES.config), config.token);
      const held = heldConfig(await store.load(), log, options.probeRuntime);
      const spool = await ResultSpool.open<ResultRecord>(join(config.dataDir, DATA_FILES.spool), {
        maxBytes: config.spoolMaxBytes,
        onIncident: (incident) =>
          log(
            incident.kind === 'torn-tail'
              ? `result spool: cut off an incomplete last write in ${incident.segment}`
              : `result spool: ${incident.lostRecords} results lost to damage in ${incident.segment} (kept in ${incident.quarantine})`,
          ),
      });
      opened.push(spool);
      const slots = await FileSlotStore.open(join(config.dataDir, DATA_FILES.slots), {
        onError: (error) => log(`slot store: ${(error as Error).message}`),
      });
      const runner = new ProbeRunner({
        spool,
        concurrency: config.concurrency,
        ...(options.probeRuntime === undefined ? {} : { probeRuntime: options.probeRuntime }),
        ...(config.debug ? { debugLog: (line: string) => log(line) } : {}),
        onError: log,
      });
      const scheduler = new TestScheduler<HeldTest>({
        run: runner.runScheduled,
        maxConcurrent: config.concurrency,
        store: slots,
        onRunError: (test, _slotMs, error) => log(`test ${test.id}: run failed: ${(error as Error).message}`),
      });
      opened.push({ close: async () => void (await scheduler.stop({ deadlineMs: 0 })) });
      const runTests = (tests: readonly HeldTest[]) => {
        scheduler.apply(tests);
        runner.keepLastResultsOf(new Set(tests.map((test) => test.id)));
      };
      if (!held.drained) runTests([...held.tests.values()]);
      const host: SessionHost = {
        runTests,
        capacity: () => ({ inFlight: runner.inFlight, freeSlots: runner.freeSlots }),
        runNow: (runId, test) => runner.runOnDemand(runId, test),
        settleRuns: async (gracePeriodMs) => {
          await runner.settle(gracePeriodMs);
        },
      };
      // The HTTP server starts before the agent object exists: its callbacks find it here.
      const self: { agent?: Agent } = {};
      const http = await startAgentHttpServer({
        host: config.httpHost,
        port: config.httpPort,
        readiness: () => self.agent?.readiness() ?? { ready: false, reason: 'starting' },
        agentMetrics: () => self.agent?.metrics() ?? [],
        modules,
        maxConcurrentProbes: config.concurrency,
        ...(options.probeRuntime === undefined ? {} : { probeRuntime: options.probeRuntime }),
        ...(config.debug ? { debugLog: (line: string) => log(line) } : {}),
      });
      opened.push(http);
      const session = new AgentSession({
        ...options.session,
        connection: config,
        identity,
        held,
        store,
        spool,
        host,
        log,
      });
      const agent = new Agent(
        identity,
        config,
        log,
        lock,
        spool,
        scheduler,
        runner,
        session,
        http,
        options.shutdown ?? {},
      );
      self.agent = agent;
      log(`serving /healthz /readyz /metrics /probe on ${http.url}`);
      session.start();
      return agent;
    } catch (error) {
      for (const resource of opened.reverse()) await resource.close().catch(() => undefined);
      lock.release();
      throw error;
    }
  }

  /** `http://host:port` of the local HTTP server. */
  get httpUrl(): string {
    return this.http.url;
  }

  status(): SessionStatus {
    return this.session.status();
  }

  /** Ready when connected to the control plane and configured by it (and not drained). */
  readiness(): Readiness {
    const status = this.session.status();
    if (!status.connected) return { ready: false, reason: 'not connected to the control plane' };
    if (status.drained) return { ready: false, reason: 'drained by the control plane' };
    if (!status.configured) return { ready: false, reason: 'waiting for the configuration' };
    return { ready: true };
  }

  metrics(): MetricFamily[] {
    const status = this.session.status();
    return agentMetricFamilies({
      agentId: this.identity.agentId,
      version: this.identity.version,
      location: status.location ?? '',
      connected: status.connected,
      drained: status.drained,
      configRevision: status.configRevision,
      heldTests: status.heldTests,
      rejectedTests: status.rejectedTests,
      spool: this.spool.stats(),
      runs: this.runner.runCounts(),
      inFlight: this.runner.inFlight,
      freeSlots: this.runner.freeSlots,
      concurrency: this.config.concurrency,
      scheduler: this.scheduler.stats(),
      lastResults: this.runner.lastResultsOf(),
    });
  }

  /**
   * Shuts down: stops scheduling, lets probes in flight finish within the run deadline and abandons
   * the rest, makes their results durable, ends the session (results flushed and acknowledged if the
   * control plane answers in time, DrainDone when `drain` is in force, a clean half-close), then
   * closes the HTTP server and the spool and releases the data directory. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const { runDeadlineMs = 10_000, ackWaitMs, closeWaitMs } = this.shutdownOptions;
    this.log('stopping');
    this.runner.stop();
    const [stopped] = await Promise.all([
      this.scheduler.stop({ deadlineMs: runDeadlineMs }),
      this.runner.settle(runDeadlineMs),
    ]);
    if (stopped.aborted > 0) this.log(`${stopped.aborted} probes abandoned at the shutdown deadline`);
    await this.session.stop({
      ...(ackWaitMs === undefined ? {} : { ackWaitMs }),
      ...(closeWaitMs === undefined ? {} : { closeWaitMs }),
    });
    await this.http.close().catch((error: unknown) => this.log(`http: ${(error as Error).message}`));
    await this.spool.close();
    this.lock.release();
    this.log('stopped');
  }
}

/** The kept configuration, each test checked again by this version's schema. */
function heldConfig(loaded: KeptConfigLoad, log: (line: string) => void, runtime?: ProbeRuntime): HeldConfig {
  const held: HeldConfig = { revision: 0, drained: false, tests: new Map() };
  if (loaded.kind === 'none') return held;
  if (loaded.kind === 'unreadable') {
    log(`the kept configuration is unreadable (${loaded.reason}): starting with none`);
    return held;
  }
  held.revision = loaded.config.revision;
  held.drained = loaded.config.drained;
  for (const assignment of loaded.config.tests) {
    const checked = checkAssignment(assignment, runtime);
    if (checked.ok) held.tests.set(checked.test.id, checked.test);
    else log(`kept test ${assignment.test_id} dropped: ${checked.rejection.message}`);
  }
  log(
    held.drained
      ? `kept configuration: ${held.tests.size} tests at revision ${held.revision}, drained: running none until synchronised`
      : `kept configuration: ${held.tests.size} tests at revision ${held.revision}`,
  );
  return held;
}
