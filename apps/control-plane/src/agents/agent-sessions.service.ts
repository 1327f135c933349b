import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { Metadata, status } from '@grpc/grpc-js';
import { Histogram } from '@wsmon/metrics';
import type { AgentResult } from '@wsmon/proto';
import { parseCredential, secretMatches } from '../auth/credentials';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ChangeBus, RESYNC } from '../database/change-bus';
import { LocationsRepository } from '../locations/locations.repository';
import { ResultsRepository } from '../results/results.repository';
import { InvalidResultError, ResultsService } from '../results/results.service';
import { TestsRepository } from '../tests/tests.repository';
import { agentLivenessMs, AgentsRepository, type AgentMember } from './agents.repository';
import {
  AgentStream,
  StreamError,
  type AgentCall,
  type AgentStreamHost,
  type StreamIdentity,
} from './agent-stream';
import { rendezvousOwner } from './rendezvous';
import { TestCatalog, type CatalogTest } from './test-catalog';

/** A test's place in its location: which agent runs it, if any. */
export interface TestPlacement {
  readonly locationId: string;
  readonly agentId: string | undefined;
}

/**
 * The agent sessions of this replica and the assignment of tests to agents. Every replica computes
 * the same assignment from the same rows (agents table, tests), so replicas need no coordination
 * beyond LISTEN/NOTIFY: a change anywhere makes each replica re-synchronise its own streams.
 */
@Injectable()
export class AgentSessionsService implements AgentStreamHost, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('agent-sessions');
  readonly replicaId = randomUUID();
  readonly heartbeatMs: number;
  private readonly graceMs: number;
  /** Local streams that sent their Hello, by agent id. */
  private readonly streams = new Map<string, AgentStream>();
  private readonly unsubscribe: (() => void)[] = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private reconcileQueue = new Set<string>();
  private reconciling: Promise<void> | undefined;
  private shuttingDown = false;
  /**
   * This replica's counts since it started, for `/metrics`. `streamErrors` is by gRPC status name: the
   * status the control plane ended a stream with (UNAUTHENTICATED for a refused token), CANCELLED for a
   * stream the agent or the network broke off.
   */
  readonly counters = {
    streamsOpened: 0,
    streamErrors: new Map<string, number>(),
    resultsIngested: 0,
    /** Seconds from a result's slot to its commit here. */
    ingestLagSeconds: new Histogram(INGEST_LAG_BUCKETS_S),
  };

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly agents: AgentsRepository,
    private readonly locations: LocationsRepository,
    private readonly catalog: TestCatalog,
    private readonly results: ResultsService,
    private readonly runs: ResultsRepository,
    private readonly tests: TestsRepository,
    private readonly bus: ChangeBus,
  ) {
    this.heartbeatMs = config.agentHeartbeatMs;
    this.graceMs = config.agentGraceMs;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.catalog.refresh();
    this.unsubscribe.push(
      this.bus.subscribe('wsmon_config', () => void this.configChanged()),
      this.bus.subscribe('wsmon_agents', (payload) => this.membershipChanged(payload)),
      this.bus.subscribe('wsmon_run', (payload) => {
        if (payload === RESYNC) return;
        this.dispatchRun(payload).catch((error: unknown) =>
          this.logger.warn(`cannot dispatch run ${payload}: ${String(error)}`),
        );
      }),
    );
    this.sweepTimer = setInterval(() => void this.sweep(), this.heartbeatMs);
    this.sweepTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    this.unsubscribe.forEach((fn) => fn());
    clearInterval(this.sweepTimer);
    for (const timer of this.graceTimers.values()) clearTimeout(timer);
    for (const stream of [...this.streams.values()]) {
      stream.end(status.UNAVAILABLE, 'the control plane is shutting down: reconnect');
    }
    await this.reconciling?.catch(() => undefined);
  }

  /** A new call: the token decides the location before any message goes out. */
  connect(call: AgentCall): void {
    if (this.shuttingDown) {
      call.emit('error', { code: status.UNAVAILABLE, details: 'the control plane is shutting down' });
      return;
    }
    // Messages arriving while the token is checked wait in the stream's buffer.
    call.pause();
    this.authenticate(call.metadata).then(
      (identity) => {
        if (!identity) {
          this.countStreamError(status.UNAUTHENTICATED);
          call.emit('error', {
            code: status.UNAUTHENTICATED,
            details: 'authorization: missing, malformed, unknown, revoked or expired agent token',
          });
          return;
        }
        this.counters.streamsOpened++;
        new AgentStream(call, identity, this);
        call.resume();
      },
      (error: unknown) => {
        call.emit('error', { code: status.UNAVAILABLE, details: `cannot check the token: ${String(error)}` });
      },
    );
  }

  /** Where each location's agents run a test now (for the tests API and on-demand runs). */
  async placements(testId: string, locationIds: readonly string[]): Promise<TestPlacement[]> {
    return (await this.placementsOf([{ id: testId, locationIds }])).get(testId)!;
  }

  /** Asks an agent to give its tests up, on whichever replica holds its stream. */
  async requestDrain(agentId: string, locationId: string): Promise<void> {
    await this.bus.publish('wsmon_agents', `${DRAIN_PREFIX}${agentId}`);
    await this.bus.publish('wsmon_agents', locationId);
  }

  /** The tests an agent runs now, by the same assignment every replica computes. */
  async assignedTests(agentId: string, locationId: string): Promise<string[]> {
    const owners = this.owners(locationId, await this.members([locationId]));
    return [...owners].filter(([, owner]) => owner === agentId).map(([testId]) => testId);
  }

  /** {@link placements} of many tests at once, with one query (status and alert evaluation), by test id. */
  async placementsOf(
    tests: readonly { readonly id: string; readonly locationIds: readonly string[] }[],
  ): Promise<Map<string, TestPlacement[]>> {
    const members = await this.members([...new Set(tests.flatMap((t) => t.locationIds))]);
    return new Map(
      tests.map((test) => [
        test.id,
        test.locationIds.map((locationId) => ({
          locationId,
          agentId: rendezvousOwner(test.id, idsOf(members, locationId)),
        })),
      ]),
    );
  }

  /** Sessions of this replica, for the agents API and metrics. */
  localStreams(): readonly AgentStream[] {
    return [...this.streams.values()];
  }

  // ---------- AgentStreamHost ----------

  log(line: string): void {
    this.logger.log(line);
  }

  async opened(stream: AgentStream): Promise<void> {
    const hello = stream.hello!;
    const previous = this.streams.get(hello.agent_id);
    this.streams.set(hello.agent_id, stream);
    // A reconnecting agent is never locked out by its own stale stream.
    previous?.end(status.ABORTED, 'replaced by a newer stream of the same agent');
    await this.agents.startSession({
      agentId: hello.agent_id,
      locationId: stream.identity.locationId,
      tokenId: stream.identity.tokenId,
      sessionId: stream.sessionId,
      replicaId: this.replicaId,
      hostname: hello.hostname.slice(0, 255),
      version: hello.version.slice(0, 64),
      capabilities: stream.capabilities,
      configRevision: hello.config_revision,
    });
    // The stream may have ended while its row was written: its disconnect found no row to end then.
    if (stream.closed) {
      await this.agents.endSession(hello.agent_id, stream.sessionId, false);
      return;
    }
    stream.registered = true;
    await this.locations.touchToken(stream.identity.tokenId);
    stream.welcome();
    const locationId = stream.identity.locationId;
    await stream.synchronise(await this.desiredFor(stream), () => this.catalog.currentRevision());
    await this.bus.publish('wsmon_agents', locationId);
  }

  async ingest(stream: AgentStream, results: readonly AgentResult[]): Promise<void> {
    try {
      await this.results.ingest(stream.identity.locationId, stream.agentId, results);
      this.counters.resultsIngested += results.length;
      const committedAt = Date.now();
      for (const result of results) {
        this.counters.ingestLagSeconds.observe((committedAt - result.slot_time!.getTime()) / 1000);
      }
    } catch (error) {
      if (error instanceof InvalidResultError) {
        throw new StreamError(status.INVALID_ARGUMENT, `ResultBatch.${error.message}`);
      }
      throw error;
    }
  }

  async drained(stream: AgentStream): Promise<void> {
    await this.agents.endSession(stream.agentId, stream.sessionId, true);
    await this.bus.publish('wsmon_agents', stream.identity.locationId);
  }

  closed(stream: AgentStream, reason: string): void {
    if (reason !== 'the agent closed the stream') this.countStreamError(stream.endStatus ?? status.CANCELLED);
    if (!stream.hello) return;
    if (this.streams.get(stream.agentId) === stream) this.streams.delete(stream.agentId);
    this.logger.log(`agent ${stream.agentId} (${stream.identity.locationName}) disconnected: ${reason}`);
    if (this.shuttingDown) return;
    const locationId = stream.identity.locationId;
    void this.agents
      .endSession(stream.agentId, stream.sessionId, stream.drainDone)
      .then(() => this.bus.publish('wsmon_agents', locationId))
      .catch((error: unknown) => this.logger.warn(`cannot record the disconnect: ${String(error)}`));
  }

  private countStreamError(code: status): void {
    const name = status[code];
    this.counters.streamErrors.set(name, (this.counters.streamErrors.get(name) ?? 0) + 1);
  }

  /**
   * An agent with `drain` gets a Drain and hands its tests over itself (DrainDone); without it, its
   * tests are taken away by ConfigUpdates. Either way it has already left the assignment (its row is
   * marked drained), so the location's other agents take its tests.
   */
  private drainLocal(agentId: string): void {
    const stream = this.streams.get(agentId);
    if (!stream?.open || stream.draining) return;
    stream.draining = true;
    this.logger.log(`draining agent ${agentId} (${stream.identity.locationName})`);
    if (stream.has('drain')) {
      stream.send({ drain: { grace_period_ms: DRAIN_GRACE_MS, reason: 'agent drained by an operator' } });
    } else {
      this.reconcile([stream.identity.locationId]);
    }
  }

  // ---------- on-demand runs ----------

  /**
   * Every replica hears of a new run; each location's run goes to the agent that runs the test there
   * (rendezvous over the connected agents with `run.now`), sent by the replica holding its stream.
   * A location without such an agent is marked `no_agent` at once rather than left waiting.
   */
  private async dispatchRun(runId: string): Promise<void> {
    const found = await this.runs.findRun(runId);
    const pending = found?.locations.filter((l) => l.status === 'pending') ?? [];
    if (!found || !pending.length) return;
    const test = await this.tests.find(found.run.testId);
    if (!test) return;
    const members = await this.members(pending.map((l) => l.locationId));
    let assignment: Awaited<ReturnType<TestCatalog['assignmentFor']>> | undefined;
    for (const row of pending) {
      const capable = members
        .filter((m) => m.locationId === row.locationId && m.connected && m.capabilities.includes('run.now'))
        .map((m) => m.agentId);
      const agentId = rendezvousOwner(test.id, capable);
      if (!agentId) {
        await this.runs.markRunLocation(runId, row.locationId, 'no_agent');
        continue;
      }
      const stream = this.streams.get(agentId);
      if (!stream?.open || !stream.has('run.now')) continue;
      if (!(await this.runs.markRunLocation(runId, row.locationId, 'dispatched', agentId))) continue;
      assignment ??= await this.catalog.assignmentFor(test);
      stream.send({ run_now: { run_id: runId, test: assignment } });
    }
  }

  // ---------- assignment ----------

  private async authenticate(metadata: Metadata): Promise<StreamIdentity | undefined> {
    const [header] = metadata.get('authorization');
    if (typeof header !== 'string') return undefined;
    const match = /^Bearer (\S+)$/.exec(header);
    const parsed = match ? parseCredential(match[1]!, 'wsa') : undefined;
    if (!parsed) return undefined;
    const token = await this.locations.findTokenByPrefix(parsed.prefix);
    if (!token || token.revokedAt || !secretMatches(parsed.secret, token.secretHash)) return undefined;
    if (token.expiresAt && token.expiresAt.getTime() <= Date.now()) return undefined;
    const [location] = await this.locations.findByIds([token.locationId]);
    if (!location) return undefined;
    return { tokenId: token.id, locationId: location.id, locationName: location.name };
  }

  private members(locationIds: readonly string[]): Promise<AgentMember[]> {
    return this.agents.members(locationIds, agentLivenessMs(this.heartbeatMs), this.graceMs);
  }

  private async desiredFor(stream: AgentStream): Promise<CatalogTest[]> {
    return this.desired(stream, await this.members([stream.identity.locationId]));
  }

  /**
   * The tests this stream's agent must hold: those it wins among its location's members, plus, for a
   * hand-off period, those it held and another agent has just won. The new owner starts them at its
   * next slot; the old one keeps running them meanwhile, so that no slot falls between the two (a
   * slot both run is stored once).
   */
  private desired(
    stream: AgentStream,
    members: readonly AgentMember[],
    owners = this.owners(stream.identity.locationId, members, stream.agentId),
  ): CatalogTest[] {
    // A draining agent without `drain` is emptied by updates (one with it is skipped: it stops itself).
    if (stream.draining) return [];
    const now = Date.now();
    const desired: CatalogTest[] = [];
    for (const test of this.catalog.forLocation(stream.identity.locationId)) {
      if (owners.get(test.id) === stream.agentId) {
        stream.releasing.delete(test.id);
        desired.push(test);
      } else if (stream.held.has(test.id)) {
        let releaseAt = stream.releasing.get(test.id);
        if (releaseAt === undefined) {
          stream.releasing.set(test.id, (releaseAt = now + HANDOFF_MS));
          this.reconcileLater(stream.identity.locationId, HANDOFF_MS);
        }
        if (releaseAt > now) desired.push(test);
        else stream.releasing.delete(test.id);
      }
    }
    return desired;
  }

  /** The owner of each test of a location: computed once per pass, shared by the location's streams. */
  private owners(
    locationId: string,
    members: readonly AgentMember[],
    ...present: string[]
  ): Map<string, string> {
    const ids = idsOf(members, locationId);
    // A stream asking is a member even before its row is visible to the query.
    for (const id of present) if (!ids.includes(id)) ids.push(id);
    const owners = new Map<string, string>();
    for (const test of this.catalog.forLocation(locationId))
      owners.set(test.id, rendezvousOwner(test.id, ids)!);
    return owners;
  }

  private reconcileLater(locationId: string, delayMs: number): void {
    const timer = setTimeout(() => this.reconcile([locationId]), delayMs + 50);
    timer.unref();
  }

  private async configChanged(): Promise<void> {
    try {
      await this.catalog.refresh();
    } catch (error) {
      this.logger.warn(`cannot refresh the tests: ${String(error)}`);
      return;
    }
    // Only the locations whose tests changed: a change to one test costs one location's streams.
    const changed = this.catalog.takeChangedLocations();
    this.reconcile(this.localLocations().filter((id) => changed.has(id)));
  }

  private membershipChanged(payload: string): void {
    if (payload.startsWith(DRAIN_PREFIX)) {
      this.drainLocal(payload.slice(DRAIN_PREFIX.length));
      return;
    }
    const locations = payload === RESYNC ? this.localLocations() : [payload];
    this.reconcile(locations);
    // A disconnect moves tests only once the grace period is over: look again then.
    for (const locationId of locations) {
      clearTimeout(this.graceTimers.get(locationId));
      const timer = setTimeout(() => {
        this.graceTimers.delete(locationId);
        this.reconcile([locationId]);
      }, this.graceMs + 250);
      timer.unref();
      this.graceTimers.set(locationId, timer);
    }
  }

  private localLocations(): string[] {
    return [...new Set([...this.streams.values()].map((s) => s.identity.locationId))];
  }

  /** Re-synchronises this replica's streams of these locations; passes run one at a time, coalesced. */
  private reconcile(locationIds: readonly string[]): void {
    for (const id of locationIds) this.reconcileQueue.add(id);
    if (this.reconciling) return;
    this.reconciling = (async () => {
      while (this.reconcileQueue.size && !this.shuttingDown) {
        const batch = [...this.reconcileQueue];
        this.reconcileQueue = new Set();
        try {
          await this.reconcileNow(batch);
        } catch (error) {
          this.logger.warn(`cannot reconcile assignments: ${String(error)}`);
        }
      }
    })().finally(() => (this.reconciling = undefined));
  }

  private async reconcileNow(locationIds: readonly string[]): Promise<void> {
    const local = [...this.streams.values()].filter(
      (s) => s.open && locationIds.includes(s.identity.locationId) && !(s.draining && s.has('drain')),
    );
    if (!local.length) return;
    const members = await this.members(locationIds);
    let revision: number | undefined;
    const revisionOnce = async () => (revision ??= await this.catalog.currentRevision());
    const owners = new Map<string, Map<string, string>>();
    for (const locationId of new Set(local.map((s) => s.identity.locationId))) {
      const present = local.filter((s) => s.identity.locationId === locationId).map((s) => s.agentId);
      owners.set(locationId, this.owners(locationId, members, ...present));
    }
    await Promise.all(
      local.map((stream) =>
        stream.synchronise(
          this.desired(stream, members, owners.get(stream.identity.locationId)),
          revisionOnce,
        ),
      ),
    );
  }

  /**
   * Every heartbeat interval: flush liveness and capacity of local sessions (streams taken over by
   * another replica end with ABORTED), end sessions whose token was revoked or expired, and
   * reconcile local locations (catches a crashed replica's agents leaving and missed notifications).
   */
  private async sweep(): Promise<void> {
    const streams = [...this.streams.values()].filter((s) => s.open && s.registered);
    if (!streams.length) return;
    try {
      const owned = await this.agents.beat(
        streams.map((s) => ({
          agentId: s.agentId,
          sessionId: s.sessionId,
          configRevision: s.configRevision,
          heldTests: s.held.size,
          freeSlots: s.lastHeartbeat?.free_slots ?? null,
          inFlight: s.lastHeartbeat?.in_flight ?? null,
          spoolDepth: s.lastHeartbeat?.spool_depth ?? null,
          spoolDroppedTotal: s.lastHeartbeat?.spool_dropped_total ?? null,
        })),
      );
      for (const stream of streams) {
        if (!owned.has(stream.agentId))
          stream.end(status.ABORTED, 'replaced by a newer stream of the same agent');
      }
      const invalid = new Set(
        await this.locations.invalidTokenIds([...new Set(streams.map((s) => s.identity.tokenId))]),
      );
      for (const stream of streams) {
        if (invalid.has(stream.identity.tokenId)) {
          stream.end(status.UNAUTHENTICATED, 'the agent token was revoked, expired or deleted');
        }
      }
      this.reconcile(this.localLocations());
    } catch (error) {
      this.logger.warn(`agent sweep failed: ${String(error)}`);
    }
  }
}

const DRAIN_PREFIX = 'drain:';
/** Bounds of the ingest lag histogram: a result normally lands within its probe's timeout and a batch. */
const INGEST_LAG_BUCKETS_S = [0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 900, 3600];
/** Probes in flight get this long to finish when an operator drains an agent. */
const DRAIN_GRACE_MS = 10_000;

/** How long an agent keeps a test another agent has just won: covers the new owner's first slot of a short interval. */
const HANDOFF_MS = 3000;

function idsOf(members: readonly AgentMember[], locationId: string): string[] {
  return members.filter((m) => m.locationId === locationId).map((m) => m.agentId);
}
