import type {
  ConfigAck,
  ConfigUpdate,
  EndOfSnapshot,
  TestAssignment,
  TestRejection,
} from '@wsmon/proto/agent';
import type { KeptConfig } from '../config/config-store';
import { checkAssignment, type AssignmentCheck, type HeldTest } from '../config/test-assignment';

/** The configuration the agent holds: what it runs (unless drained) and keeps on disk. */
export interface HeldConfig {
  /** The revision of the last ConfigAck (0: none). */
  revision: number;
  /** Drained: runs nothing until a later session ends a synchronisation with an EndOfSnapshot. */
  drained: boolean;
  readonly tests: Map<string, HeldTest>;
}

/** The control plane broke a rule of the stream: the agent cancels the call and says why. */
export class ProtocolViolation extends Error {
  override readonly name = 'ProtocolViolation';
}

/** What a configuration message led to. */
export type SyncStep =
  /** A part of a snapshot, kept until its EndOfSnapshot. */
  | { readonly kind: 'buffered' }
  /** A delta of the initial synchronisation: applied, acknowledged at its EndOfSnapshot. */
  | { readonly kind: 'changed' }
  /** Applied and to be acknowledged; `synchronised` when it ended a synchronisation. */
  | { readonly kind: 'applied'; readonly ack: ConfigAck; readonly synchronised: boolean };

/** The kept (on-disk) form of a held configuration. */
export function keptConfig(held: HeldConfig): KeptConfig {
  return {
    revision: held.revision,
    drained: held.drained,
    tests: [...held.tests.values()].map((test) => test.assignment),
  };
}

/**
 * The configuration side of one stream, as `agent.proto` orders it: after the Welcome, an initial
 * synchronisation (a snapshot, or with `config.delta` in force a delta against the Hello's tests)
 * closed by an EndOfSnapshot; then deltas, applied as they arrive, and snapshots at any time, applied
 * as one at their EndOfSnapshot. Every assignment is checked by the shared schema; one that fails is
 * rejected (not run, nor any earlier revision of it) and listed in every later ConfigAck of the
 * stream until it is replaced or removed. Revisions must increase from one message to the next
 * (except within a snapshot): anything else is a {@link ProtocolViolation}.
 */
export class ConfigSync {
  private initial = true;
  private snapshot: { readonly revision: number; readonly upserts: Map<string, TestAssignment> } | undefined;
  private lastRevision: number | undefined;
  /** Rejected tests of this stream; the Hello of the next one leaves them out, so they come again. */
  private readonly rejected = new Map<string, TestRejection>();

  constructor(
    private readonly held: HeldConfig,
    private readonly check: (assignment: TestAssignment) => AssignmentCheck = checkAssignment,
  ) {}

  /** True until the initial synchronisation has ended. */
  get synchronising(): boolean {
    return this.initial;
  }

  rejectedTests(): TestRejection[] {
    return [...this.rejected.values()];
  }

  onUpdate(update: ConfigUpdate, deltaInForce: boolean): SyncStep {
    checkIds(update);
    if (update.snapshot) {
      if (update.removed_test_ids.length > 0) {
        throw new ProtocolViolation(`snapshot ConfigUpdate ${update.revision} removes tests`);
      }
      if (this.snapshot === undefined) {
        this.checkIncreases(update.revision, 'snapshot ConfigUpdate');
        this.snapshot = { revision: update.revision, upserts: new Map() };
      } else if (update.revision !== this.snapshot.revision) {
        throw new ProtocolViolation(
          `snapshot ConfigUpdate ${update.revision} inside the snapshot of revision ${this.snapshot.revision}`,
        );
      }
      for (const assignment of update.upserts) {
        if (this.snapshot.upserts.has(assignment.test_id)) {
          throw new ProtocolViolation(
            `test ${assignment.test_id} is twice in the snapshot ${update.revision}`,
          );
        }
        this.snapshot.upserts.set(assignment.test_id, assignment);
      }
      return { kind: 'buffered' };
    }
    if (this.snapshot !== undefined) {
      throw new ProtocolViolation(
        `delta ConfigUpdate ${update.revision} inside the snapshot of revision ${this.snapshot.revision}`,
      );
    }
    if (this.initial && !deltaInForce) {
      throw new ProtocolViolation(
        'a delta ConfigUpdate for the initial synchronisation without config.delta',
      );
    }
    this.checkIncreases(update.revision, 'ConfigUpdate');
    this.lastRevision = update.revision;
    for (const testId of update.removed_test_ids) {
      this.held.tests.delete(testId);
      this.rejected.delete(testId);
    }
    for (const assignment of update.upserts) this.upsert(assignment);
    if (this.initial) return { kind: 'changed' };
    this.held.revision = update.revision;
    return { kind: 'applied', ack: this.ack(), synchronised: false };
  }

  onEndOfSnapshot(end: EndOfSnapshot, deltaInForce: boolean): SyncStep {
    if (this.snapshot !== undefined) {
      if (end.revision !== this.snapshot.revision) {
        throw new ProtocolViolation(
          `EndOfSnapshot ${end.revision} closes the snapshot of revision ${this.snapshot.revision}`,
        );
      }
      this.held.tests.clear();
      this.rejected.clear();
      for (const assignment of this.snapshot.upserts.values()) this.upsert(assignment);
      this.snapshot = undefined;
    } else if (this.initial) {
      // No snapshot: a delta synchronisation (possibly of no message at all, when up to date).
      if (!deltaInForce) {
        throw new ProtocolViolation(
          `EndOfSnapshot ${end.revision} without a snapshot, and config.delta is not in force`,
        );
      }
      if (this.lastRevision !== undefined && end.revision < this.lastRevision) {
        throw new ProtocolViolation(`EndOfSnapshot ${end.revision} after ConfigUpdate ${this.lastRevision}`);
      }
    } else {
      throw new ProtocolViolation(`EndOfSnapshot ${end.revision} without a snapshot`);
    }
    this.initial = false;
    this.lastRevision = end.revision;
    this.held.revision = end.revision;
    return { kind: 'applied', ack: this.ack(), synchronised: true };
  }

  private upsert(assignment: TestAssignment): void {
    const checked = this.check(assignment);
    if (checked.ok) {
      this.held.tests.set(assignment.test_id, checked.test);
      this.rejected.delete(assignment.test_id);
    } else {
      this.held.tests.delete(assignment.test_id);
      this.rejected.set(assignment.test_id, checked.rejection);
    }
  }

  private checkIncreases(revision: number, what: string): void {
    if (this.lastRevision !== undefined && revision <= this.lastRevision) {
      throw new ProtocolViolation(
        `${what} ${revision} after revision ${this.lastRevision}: revisions must increase`,
      );
    }
  }

  private ack(): ConfigAck {
    return { revision: this.held.revision, rejected_tests: this.rejectedTests() };
  }
}

function checkIds(update: ConfigUpdate): void {
  const upserted = new Set<string>();
  for (const assignment of update.upserts) {
    if (assignment.test_id === '')
      throw new ProtocolViolation(`ConfigUpdate ${update.revision}: a test without test_id`);
    if (upserted.has(assignment.test_id)) {
      throw new ProtocolViolation(
        `ConfigUpdate ${update.revision}: test ${assignment.test_id} is upserted twice`,
      );
    }
    upserted.add(assignment.test_id);
  }
  for (const testId of update.removed_test_ids) {
    if (upserted.has(testId)) {
      throw new ProtocolViolation(
        `ConfigUpdate ${update.revision}: test ${testId} is both upserted and removed`,
      );
    }
  }
}
