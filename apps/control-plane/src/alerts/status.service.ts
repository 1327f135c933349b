import { Inject, Injectable } from '@nestjs/common';
import type {
  AlertResponse,
  LocationStatusResponse,
  StatusListResponse,
  TestStatusResponse,
} from '@wsmon/contracts';
import type { EntityManager } from 'typeorm';
import { AgentSessionsService, type TestPlacement } from '../agents/agent-sessions.service';
import { NotFoundError } from '../common/errors';
import type { AlertEntity, AlertLocation } from './alert.entity';
import {
  AlertsRepository,
  locationKey,
  type ResultCursor,
  type StatusTest,
  type StoredLocationState,
} from './alerts.repository';
import {
  advanceLocation,
  isFailing,
  noDataAfterMs,
  shownReason,
  testState,
  type LocationState,
} from './location-status';

/** Results read per location and evaluation: more than a pass ever sees, unless evaluation stopped long. */
const RESULTS_PER_LOCATION = 200;

/** Which agent runs each test in each location: AgentSessionsService answers. */
export type Placements = Pick<AgentSessionsService, 'placementsOf'>;

/** What an evaluation starts from, read outside its transaction (the embedded database has one connection). */
export interface StatusInputs {
  /** One test's, or (undefined) every test's. */
  readonly testId: string | undefined;
  readonly tests: readonly StatusTest[];
  readonly placements: ReadonlyMap<string, readonly TestPlacement[]>;
}

export interface EvaluatedLocation {
  readonly id: string;
  readonly name: string;
  readonly state: LocationState;
  readonly previous: StoredLocationState | undefined;
}

export interface EvaluatedTest {
  readonly test: StatusTest;
  /** Empty for a paused test: it is not evaluated. */
  readonly locations: readonly EvaluatedLocation[];
  readonly openAlert: AlertEntity | undefined;
}

export interface Evaluation {
  /** The database's clock. */
  readonly now: Date;
  readonly tests: readonly EvaluatedTest[];
  /** Open alerts of tests that no longer exist. */
  readonly orphanAlerts: readonly AlertEntity[];
}

const iso = (date: Date | null): string | null => date?.toISOString() ?? null;

export function locationResponse(name: string, state: LocationState): LocationStatusResponse {
  return {
    location: name,
    status: state.status,
    since: state.since.toISOString(),
    last_result_at: iso(state.lastResultAt),
    ...shownReason(state),
  };
}

/** A failing location as an alert records it. */
export function alertLocation(location: EvaluatedLocation): AlertLocation {
  return {
    location_id: location.id,
    location: location.name,
    status: location.state.status,
    failing_since: location.state.failingSince!.toISOString(),
    ...shownReason(location.state),
  };
}

export function alertResponse(a: AlertEntity): AlertResponse {
  return {
    id: a.id,
    test_id: a.testId,
    test_name: a.testName,
    state: a.state,
    min_failing_locations: a.minFailingLocations,
    for_minutes: a.forMinutes,
    locations: a.locations.map(({ location, status, failing_since, reason, cause }) => ({
      location,
      status,
      failing_since,
      reason,
      cause,
    })),
    started_at: a.startedAt.toISOString(),
    resolved_at: iso(a.resolvedAt),
    resolution: a.resolution,
  };
}

/** Each test's status in each of its locations (docs/alerting.md); REST, gRPC and the alert evaluation use it. */
@Injectable()
export class StatusService {
  constructor(
    private readonly repository: AlertsRepository,
    @Inject(AgentSessionsService) private readonly agents: Placements,
  ) {}

  /** Every test (or one) and where its agents are. */
  async inputs(testId?: string): Promise<StatusInputs> {
    const tests = await this.repository.tests(testId);
    const enabled = tests.filter((t) => t.enabled);
    const placements = await this.agents.placementsOf(
      enabled.map((t) => ({ id: t.id, locationIds: t.locations.map((l) => l.id) })),
    );
    return { testId, tests, placements };
  }

  /**
   * Advances every enabled test's location states from the stored ones with the results that came
   * since. Writes nothing: the alert evaluation stores what it evaluated, a status request does not.
   */
  async evaluate(inputs: StatusInputs, manager?: EntityManager): Promise<Evaluation> {
    const now = await this.repository.now(manager);
    const enabled = inputs.tests.filter((t) => t.enabled);
    const stored = await this.repository.states(
      enabled.map((t) => t.id),
      manager,
    );
    const cursors: ResultCursor[] = enabled.flatMap((t) =>
      t.locations.map((l) => ({
        testId: t.id,
        locationId: l.id,
        after: stored.get(locationKey(t.id, l.id))?.lastResultAt ?? null,
      })),
    );
    const results = await this.repository.newResults(cursors, RESULTS_PER_LOCATION, manager);
    const { testId } = inputs;
    const openAlerts = await this.repository.openAlerts(testId, manager);

    const tests = inputs.tests.map((test): EvaluatedTest => {
      const openAlert = openAlerts.get(test.id);
      openAlerts.delete(test.id);
      if (!test.enabled) return { test, locations: [], openAlert };
      const placements = new Map(inputs.placements.get(test.id)?.map((p) => [p.locationId, p.agentId]));
      const windowMs = noDataAfterMs(test, now.getTime());
      const locations = test.locations.map((location): EvaluatedLocation => {
        const k = locationKey(test.id, location.id);
        const previous = stored.get(k);
        const state = advanceLocation(previous, {
          now,
          hasAgent: placements.get(location.id) !== undefined,
          results: results.get(k) ?? [],
          interpretation: test.probe.interpretation,
          noDataAfterMs: windowMs,
        });
        return { id: location.id, name: location.name, state, previous };
      });
      return { test, locations, openAlert };
    });
    return { now, tests, orphanAlerts: testId === undefined ? [...openAlerts.values()] : [] };
  }

  async list(): Promise<StatusListResponse> {
    const evaluation = await this.evaluate(await this.inputs());
    return {
      items: evaluation.tests.map((t) => testStatusResponse(t)),
      evaluated_at: evaluation.now.toISOString(),
    };
  }

  async get(testId: string): Promise<TestStatusResponse> {
    const inputs = await this.inputs(testId);
    if (!inputs.tests.length) throw new NotFoundError('test', testId);
    const [test] = (await this.evaluate(inputs)).tests;
    return testStatusResponse(test!);
  }
}

/** A paused test: every location without data, for that reason, since the test last changed. */
function pausedLocation(name: string, since: Date): LocationStatusResponse {
  return {
    location: name,
    status: 'no_data',
    since: since.toISOString(),
    last_result_at: null,
    reason: 'test_paused',
    cause: null,
  };
}

export function testStatusResponse({ test, locations, openAlert }: EvaluatedTest): TestStatusResponse {
  return {
    test_id: test.id,
    test_name: test.name,
    enabled: test.enabled,
    state: test.enabled
      ? testState(
          openAlert !== undefined,
          locations.map((l) => l.state),
        )
      : openAlert
        ? 'alerting'
        : 'no_data',
    alert_id: openAlert?.id ?? null,
    locations: test.enabled
      ? locations.map((l) => locationResponse(l.name, l.state))
      : test.locations.map((l) => pausedLocation(l.name, test.updatedAt)),
  };
}

/** The failing locations of an evaluated test, as an alert records them. */
export const failingLocations = (test: EvaluatedTest): AlertLocation[] =>
  test.locations.filter((l) => isFailing(l.state)).map(alertLocation);
