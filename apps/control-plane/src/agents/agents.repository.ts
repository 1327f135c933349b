import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { AgentEntity } from './agent.entity';

/** What a replica writes when an agent's stream opens. */
export interface AgentSessionStart {
  readonly agentId: string;
  readonly locationId: string;
  readonly tokenId: string;
  readonly sessionId: string;
  readonly replicaId: string;
  readonly hostname: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly configRevision: number;
}

/** A session's latest heartbeat, flushed in batches. */
export interface AgentSessionBeat {
  readonly agentId: string;
  readonly sessionId: string;
  readonly configRevision: number;
  readonly heldTests: number;
  readonly freeSlots: number | null;
  readonly inFlight: number | null;
  readonly spoolDepth: number | null;
  readonly spoolDroppedTotal: number | null;
}

/** An agent that takes part in its location's assignment. */
export interface AgentMember {
  readonly agentId: string;
  readonly locationId: string;
  readonly capabilities: readonly string[];
  /** False while it is in its grace period after a disconnect. */
  readonly connected: boolean;
}

/**
 * How long after its last flushed heartbeat an agent still counts as live: three flushes missed, plus
 * slack for a replica whose event loop is slow under load.
 */
export function agentLivenessMs(heartbeatMs: number): number {
  return 3 * heartbeatMs + 2000;
}

/**
 * SQL: the `agents` row (under `alias`) has a live session: open, not drained, its heartbeat flushed
 * within the milliseconds of parameter `livenessParam`. Judged by the database's clock, so every
 * replica (and the assignment, the capacity and the metrics) agrees on who is live.
 */
export function liveSessionSql(alias: string, livenessParam: string): string {
  return `(${alias}.session_id IS NOT NULL AND ${alias}.disconnected_at IS NULL AND NOT ${alias}.drained
          AND ${alias}.last_heartbeat_at > now() - make_interval(secs => ${livenessParam} / 1000.0))`;
}

@Injectable()
export class AgentsRepository {
  constructor(@InjectRepository(AgentEntity) private readonly agents: Repository<AgentEntity>) {}

  list(locationId: string | undefined): Promise<AgentEntity[]> {
    return this.agents.find({
      where: locationId ? { locationId } : {},
      order: { firstSeenAt: 'ASC', id: 'ASC' },
    });
  }

  find(id: string): Promise<AgentEntity | null> {
    return this.agents.findOneBy({ id });
  }

  /** Registers the agent on its first connection and takes its row over on every later one. */
  async startSession(s: AgentSessionStart): Promise<void> {
    await this.agents.query(
      `INSERT INTO agents (id, location_id, token_id, session_id, replica_id, hostname, version, capabilities,
                           config_revision, first_seen_at, last_seen_at, connected_at, last_heartbeat_at,
                           disconnected_at, drained, held_tests, free_slots, in_flight, spool_depth)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now(), now(), now(), NULL, false, 0, NULL, NULL, NULL)
       ON CONFLICT (id) DO UPDATE SET
         location_id = excluded.location_id, token_id = excluded.token_id, session_id = excluded.session_id,
         replica_id = excluded.replica_id, hostname = excluded.hostname, version = excluded.version,
         capabilities = excluded.capabilities, config_revision = excluded.config_revision,
         last_seen_at = now(), connected_at = now(), last_heartbeat_at = now(), disconnected_at = NULL,
         drained = false, held_tests = 0, free_slots = NULL, in_flight = NULL, spool_depth = NULL`,
      [
        s.agentId,
        s.locationId,
        s.tokenId,
        s.sessionId,
        s.replicaId,
        s.hostname,
        s.version,
        s.capabilities,
        s.configRevision,
      ],
    );
  }

  /**
   * Writes the sessions' latest state and liveness in one statement. Returns the agent ids whose row
   * still belongs to the given session: the others were taken over by a newer session, maybe on
   * another replica.
   */
  async beat(beats: readonly AgentSessionBeat[]): Promise<Set<string>> {
    if (!beats.length) return new Set();
    const column = <K extends keyof AgentSessionBeat>(key: K) => beats.map((b) => b[key]);
    // TypeORM answers an UPDATE with [rows, row count].
    const [rows] = await this.agents.query<[{ id: string }[], number]>(
      `UPDATE agents a SET last_heartbeat_at = now(), last_seen_at = now(),
              config_revision = b.config_revision, held_tests = b.held_tests, free_slots = b.free_slots,
              in_flight = b.in_flight, spool_depth = b.spool_depth,
              spool_dropped_total = coalesce(b.spool_dropped_total, a.spool_dropped_total)
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::int[], $7::int[], $8::bigint[])
              AS b (id, session_id, config_revision, held_tests, free_slots, in_flight, spool_depth, spool_dropped_total)
        WHERE a.id = b.id AND a.session_id = b.session_id AND a.disconnected_at IS NULL
       RETURNING a.id`,
      [
        column('agentId'),
        column('sessionId'),
        column('configRevision'),
        column('heldTests'),
        column('freeSlots'),
        column('inFlight'),
        column('spoolDepth'),
        column('spoolDroppedTotal'),
      ],
    );
    return new Set(rows.map((r) => r.id));
  }

  /** The stream ended; `drained` gives its tests away at once instead of after the grace period. */
  async endSession(agentId: string, sessionId: string, drained: boolean): Promise<void> {
    await this.agents.query(
      `UPDATE agents SET disconnected_at = now(), last_seen_at = now(), drained = $3
        WHERE id = $1 AND session_id = $2 AND disconnected_at IS NULL`,
      [agentId, sessionId, drained],
    );
  }

  /**
   * An operator asked the agent to give its tests up: it leaves its location's assignment at once,
   * while its stream stays open until it has drained. False when it has no open session.
   */
  async markDraining(agentId: string): Promise<AgentEntity | null> {
    const [rows] = await this.agents.query<[{ location_id: string }[], number]>(
      `UPDATE agents SET drained = true WHERE id = $1 AND session_id IS NOT NULL AND disconnected_at IS NULL
       RETURNING location_id`,
      [agentId],
    );
    return rows.length ? this.find(agentId) : null;
  }

  /**
   * The agents that take part in the assignment of these locations, judged by the database's clock
   * so that every replica agrees: connected with a heartbeat flushed within `livenessMs`, or
   * disconnected less than `graceMs` ago without having drained.
   */
  async members(locationIds: readonly string[], livenessMs: number, graceMs: number): Promise<AgentMember[]> {
    if (!locationIds.length) return [];
    const rows = await this.agents.query<
      { id: string; location_id: string; capabilities: string[]; connected: boolean }[]
    >(
      `SELECT id, location_id, capabilities, disconnected_at IS NULL AS connected FROM agents a
        WHERE location_id = ANY($1::uuid[]) AND session_id IS NOT NULL
          AND (${liveSessionSql('a', '$2')}
               OR (disconnected_at > now() - make_interval(secs => $3 / 1000.0) AND NOT drained))`,
      [locationIds, livenessMs, graceMs],
    );
    return rows.map((r) => ({
      agentId: r.id,
      locationId: r.location_id,
      capabilities: r.capabilities,
      connected: r.connected,
    }));
  }
}
