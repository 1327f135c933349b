import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import type { ConfigFieldError } from './config-errors';
import { assertProbeConfig } from './probe-config.schema';
import {
  INTERVAL_S,
  LOCATION_KINDS,
  ROLES,
  agentTokenInputSchema,
  apiKeyInputSchema,
  listQuerySchema,
  locationInputSchema,
  locationPatchSchema,
  parseInput,
  resultListQuerySchema,
  runGetQuerySchema,
  secretInputSchema,
  testInputSchema,
  testListQuerySchema,
  testPatchSchema,
} from './resources.schema';

// ---------- factories ----------

type Input = Record<string, unknown>;

const WSS_URL = 'wss://stream.example.com/socket';

/** A valid location: a bare name, everything else left to the defaults. */
function locationInput(overrides: Input = {}): Input {
  return { name: 'eu-west-1', ...overrides };
}

/** A valid probe configuration: the minimal handshake probe. */
function probeInput(overrides: Input = {}): Input {
  return { url: WSS_URL, ...overrides };
}

/** A valid test: the required fields only (name, probe, schedule, locations). */
function testInput(overrides: Input = {}): Input {
  return {
    name: 'Market data stream',
    probe: probeInput(),
    schedule: { interval_s: 60 },
    locations: ['eu-west-1'],
    ...overrides,
  };
}

function secretInput(overrides: Input = {}): Input {
  return { name: 'API_TOKEN', value: 's3cr3t', ...overrides };
}

function apiKeyInput(overrides: Input = {}): Input {
  return { name: 'CI pipeline', role: 'editor', ...overrides };
}

/** `count` distinct valid strings: `prefix0`, `prefix1`... */
const distinct = (count: number, prefix: string) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

/** `count` distinct valid labels. */
const manyLabels = (count: number) => Object.fromEntries(distinct(count, 'label').map((k) => [k, 'v']));

// ---------- expectations ----------

interface Expected {
  path: string;
  rule: string;
}

const byPathAndRule = (a: Expected, b: Expected) =>
  a.path.localeCompare(b.path) || a.rule.localeCompare(b.rule);

/** The expectations of the probe configuration spec, bound to one resource schema. */
function against<S extends z.ZodType>(schema: S) {
  /** Parses `input` expecting success; a failure shows the errors. */
  const parsed = (input: unknown): z.output<S> => {
    const outcome = parseInput(schema, input);
    if (!outcome.ok)
      throw new Error(`expected a valid input, got ${JSON.stringify(outcome.errors, null, 2)}`);
    return outcome.value;
  };

  /** Parses `input` expecting failure; every error's message must start with its path. */
  const errorsOf = (input: unknown): readonly ConfigFieldError[] => {
    const outcome = parseInput(schema, input);
    if (outcome.ok) throw new Error(`expected errors, got ${JSON.stringify(outcome.value)}`);
    for (const error of outcome.errors) {
      expect(error.message.startsWith(`${error.path}: `), error.message).toBe(true);
    }
    return outcome.errors;
  };

  /** Exactly these errors (path and rule), in any order. */
  const expectErrors = (input: unknown, ...expected: Expected[]): readonly ConfigFieldError[] => {
    const errors = errorsOf(input);
    const actual = errors.map(({ path, rule }) => ({ path, rule }));
    expect(actual.sort(byPathAndRule)).toEqual([...expected].sort(byPathAndRule));
    return errors;
  };

  /** Exactly one error, with this path and rule; returns it. */
  const expectError = (input: unknown, path: string, rule: string): ConfigFieldError => {
    const [error] = expectErrors(input, { path, rule });
    if (!error) throw new Error('unreachable: expectErrors checked the count');
    return error;
  };

  return { parsed, errorsOf, expectErrors, expectError };
}

const SLUG_MESSAGE = 'must be a location name: lower-case letters, digits and dashes';
const TAG_MESSAGE = 'must be a tag: letters, digits and _.:/=-';
const CRON_MESSAGE = 'is not a valid cron expression (5 or 6 fields, seconds first when 6)';

// ---------- locations ----------

describe('locationInputSchema', () => {
  const { parsed, expectError, expectErrors } = against(locationInputSchema);

  describe('defaults', () => {
    it('applies kind private and empty labels to a bare name, leaving region out', () => {
      expect(parsed(locationInput())).toStrictEqual({ name: 'eu-west-1', kind: 'private', labels: {} });
    });

    it('keeps every given value', () => {
      const input = locationInput({ kind: 'managed', region: 'eu-west', labels: { team: 'sre' } });
      expect(parsed(input)).toStrictEqual(input);
    });

    it('does not share the default labels between results', () => {
      parsed(locationInput()).labels.mutated = 'yes';
      expect(parsed(locationInput()).labels).toStrictEqual({});
    });

    it('rejects an unknown field with unknown_field', () => {
      expectError(locationInput({ id: 'loc_1' }), 'id', 'unknown_field');
    });
  });

  describe('name', () => {
    it.each(['a', '0', 'eu-west-1', 'a1-b2-c3', 'a'.repeat(63)])('accepts the slug %j', (name) => {
      expect(parsed(locationInput({ name })).name).toBe(name);
    });

    it.each([
      ['upper case', 'EU-West'],
      ['a leading dash', '-eu'],
      ['a trailing dash', 'eu-'],
      ['an underscore', 'eu_west'],
      ['a dot', 'eu.west'],
      ['a space', 'eu west'],
      ['nothing', ''],
      ['64 characters', 'a'.repeat(64)],
    ])('rejects %s with rule format, saying what a slug is', (_, name) => {
      expect(expectError(locationInput({ name }), 'name', 'format')).toMatchObject({
        message: `name: ${SLUG_MESSAGE}`,
        value: name,
      });
    });

    it('is required', () => {
      expect(expectError({}, 'name', 'required').message).toBe('name: is required');
    });

    it('must be a string', () => {
      expectError(locationInput({ name: 42 }), 'name', 'type');
    });
  });

  describe('kind', () => {
    it('is private or managed', () => {
      expect(LOCATION_KINDS).toEqual(['private', 'managed']);
    });

    it.each(LOCATION_KINDS)('accepts %s', (kind) => {
      expect(parsed(locationInput({ kind })).kind).toBe(kind);
    });

    it.each(['public', 'Private', ''])('rejects %j with rule enum, listing the kinds', (kind) => {
      expect(expectError(locationInput({ kind }), 'kind', 'enum')).toMatchObject({
        message: 'kind: must be one of "private", "managed"',
        value: kind,
      });
    });
  });

  describe('region', () => {
    it('accepts 1 to 64 characters', () => {
      expect(parsed(locationInput({ region: 'x' })).region).toBe('x');
      expect(parsed(locationInput({ region: 'r'.repeat(64) })).region).toBe('r'.repeat(64));
    });

    it('rejects an empty region with min_length', () => {
      expectError(locationInput({ region: '' }), 'region', 'min_length');
    });

    it('rejects 65 characters with max_length', () => {
      expectError(locationInput({ region: 'r'.repeat(65) }), 'region', 'max_length');
    });

    it('rejects null: only a patch clears the region', () => {
      expectError(locationInput({ region: null }), 'region', 'type');
    });
  });

  describe('labels', () => {
    it.each(['team', 'Team', 'app.kubernetes.io/name', 'cost_center', 'a-b', 'x', 'k'.repeat(64)])(
      'accepts the key %j',
      (key) => {
        expect(parsed(locationInput({ labels: { [key]: 'v' } })).labels).toStrictEqual({ [key]: 'v' });
      },
    );

    it.each([
      ['a leading dash', '-team', 'labels["-team"]'],
      ['a trailing dot', 'team.', 'labels["team."]'],
      ['a space', 'cost center', 'labels["cost center"]'],
      ['a colon', 'env:prod', 'labels["env:prod"]'],
      ['an empty key', '', 'labels[""]'],
      ['65 characters', 'k'.repeat(65), `labels.${'k'.repeat(65)}`],
    ])('rejects a key with %s with rule key', (_, key, path) => {
      expect(expectError(locationInput({ labels: { [key]: 'v', ok: 'v' } }), path, 'key')).toMatchObject({
        message: `${path}: must be a label key`,
        value: key,
      });
    });

    it('accepts a value of 256 characters and an empty value', () => {
      const labels = { long: 'v'.repeat(256), empty: '' };
      expect(parsed(locationInput({ labels })).labels).toStrictEqual(labels);
    });

    it('rejects a value of 257 characters with max_length', () => {
      expectError(locationInput({ labels: { team: 'v'.repeat(257) } }), 'labels.team', 'max_length');
    });

    it('rejects a value that is not a string', () => {
      expectError(locationInput({ labels: { replicas: 3 } }), 'labels.replicas', 'type');
    });

    it('accepts 64 labels and rejects 65 with max_items', () => {
      expect(Object.keys(parsed(locationInput({ labels: manyLabels(64) })).labels)).toHaveLength(64);
      const error = expectError(locationInput({ labels: manyLabels(65) }), 'labels', 'max_items');
      expect(error.message).toBe('labels: must have at most 64 labels');
    });

    it.each([[['team']], [null], ['team=sre']])('rejects %j with rule type', (labels) => {
      expectError(locationInput({ labels }), 'labels', 'type');
    });
  });

  it('reports every error at once', () => {
    expectErrors(
      { name: 'EU', kind: 'cloud', region: '', labels: { '-x': 'v' } },
      { path: 'name', rule: 'format' },
      { path: 'kind', rule: 'enum' },
      { path: 'region', rule: 'min_length' },
      { path: 'labels["-x"]', rule: 'key' },
    );
  });
});

describe('locationPatchSchema', () => {
  const { parsed, expectError } = against(locationPatchSchema);

  it('applies no defaults: {} parses to {}', () => {
    expect(parsed({})).toStrictEqual({});
  });

  it.each([
    [{ name: 'us-east-1' }],
    [{ kind: 'managed' }],
    [{ region: 'us-east' }],
    [{ labels: {} }],
    [{ labels: { team: 'sre' } }],
  ])('keeps only the given field of %j', (patch) => {
    expect(parsed(patch)).toStrictEqual(patch);
  });

  it('clears the region with region: null', () => {
    expect(parsed({ region: null })).toStrictEqual({ region: null });
  });

  it('rejects an unknown field with unknown_field', () => {
    expect(expectError({ region: 'eu', zone: 'a' }, 'zone', 'unknown_field')).not.toHaveProperty('value');
  });

  it('validates the given fields by the rules of the input', () => {
    expectError({ name: 'EU' }, 'name', 'format');
    expectError({ kind: 'cloud' }, 'kind', 'enum');
    expectError({ region: '' }, 'region', 'min_length');
    expectError({ labels: { '-x': 'v' } }, 'labels["-x"]', 'key');
    expectError({ labels: manyLabels(65) }, 'labels', 'max_items');
  });

  it('rejects a null name: only region can be cleared', () => {
    expectError({ name: null }, 'name', 'type');
  });
});

// ---------- tests ----------

describe('testInputSchema', () => {
  const { parsed, expectError, expectErrors } = against(testInputSchema);

  describe('defaults', () => {
    it('applies every default to the required fields, and the probe defaults to the probe', () => {
      expect(parsed(testInput())).toStrictEqual({
        name: 'Market data stream',
        description: '',
        tags: [],
        enabled: true,
        probe: assertProbeConfig(probeInput()),
        schedule: { interval_s: 60 },
        locations: ['eu-west-1'],
        retry: { attempts: 0, delay_ms: 1000 },
        alert: { min_failing_locations: 1, for_minutes: 5 },
      });
    });

    it('keeps every given value', () => {
      const input = testInput({
        description: 'Order book feed',
        tags: ['env:prod', 'team/payments'],
        enabled: false,
        schedule: { cron: '*/30 * * * * *' },
        locations: ['eu-west-1', 'us-east-1'],
        retry: { attempts: 2, delay_ms: 500 },
        alert: { min_failing_locations: 2, for_minutes: 10 },
      });
      expect(parsed(input)).toStrictEqual({ ...input, probe: assertProbeConfig(probeInput()) });
    });

    it('fills the missing fields of a partial retry or alert', () => {
      const value = parsed(testInput({ retry: { attempts: 3 }, alert: { for_minutes: 15 } }));
      expect(value.retry).toStrictEqual({ attempts: 3, delay_ms: 1000 });
      expect(value.alert).toStrictEqual({ min_failing_locations: 1, for_minutes: 15 });
    });

    it('does not share default objects between results', () => {
      const first = parsed(testInput());
      first.tags.push('mutated');
      first.retry.attempts = 5;
      first.alert.for_minutes = 60;
      const second = parsed(testInput());
      expect(second.tags).toStrictEqual([]);
      expect(second.retry).toStrictEqual({ attempts: 0, delay_ms: 1000 });
      expect(second.alert).toStrictEqual({ min_failing_locations: 1, for_minutes: 5 });
    });

    it('does not modify its input', () => {
      const input = testInput({ name: '  padded  ', retry: { attempts: 1 } });
      const copy = structuredClone(input);
      parsed(input);
      expect(input).toStrictEqual(copy);
    });

    it.each(['name', 'probe', 'schedule', 'locations'])('requires %s', (field) => {
      const input = testInput();
      delete input[field];
      expect(expectError(input, field, 'required').message).toBe(`${field}: is required`);
    });

    it('rejects an unknown field with unknown_field', () => {
      expectError(testInput({ interval_s: 60 }), 'interval_s', 'unknown_field');
    });
  });

  describe('name', () => {
    it('is trimmed', () => {
      expect(parsed(testInput({ name: '  Market data \n' })).name).toBe('Market data');
    });

    it.each(['', '   ', '\t\n'])('rejects %j (blank once trimmed) with min_length', (name) => {
      expectError(testInput({ name }), 'name', 'min_length');
    });

    it('accepts 200 characters, counted after trimming', () => {
      const name = 'n'.repeat(200);
      expect(parsed(testInput({ name })).name).toBe(name);
      expect(parsed(testInput({ name: `  ${name}  ` })).name).toBe(name);
    });

    it('rejects 201 characters with max_length', () => {
      expectError(testInput({ name: 'n'.repeat(201) }), 'name', 'max_length');
    });
  });

  describe('description', () => {
    it('accepts 2000 characters and rejects 2001 with max_length', () => {
      expect(parsed(testInput({ description: 'd'.repeat(2000) })).description).toHaveLength(2000);
      expectError(testInput({ description: 'd'.repeat(2001) }), 'description', 'max_length');
    });
  });

  describe('tags', () => {
    it.each(['prod', 'env:prod', 'team/payments', 'tier=1', 'a.b_c-d', '1st', 't'.repeat(63)])(
      'accepts the tag %j',
      (tag) => {
        expect(parsed(testInput({ tags: [tag] })).tags).toStrictEqual([tag]);
      },
    );

    it.each([
      ['a leading dash', '-prod'],
      ['a leading colon', ':prod'],
      ['a space', 'env prod'],
      ['a comma', 'a,b'],
      ['nothing', ''],
      ['64 characters', 't'.repeat(64)],
    ])('rejects a tag with %s with rule format at its index', (_, tag) => {
      expect(expectError(testInput({ tags: ['ok', tag] }), 'tags[1]', 'format')).toMatchObject({
        message: `tags[1]: ${TAG_MESSAGE}`,
        value: tag,
      });
    });

    it('rejects a repeated tag with rule unique at the repetition', () => {
      const error = expectError(testInput({ tags: ['prod', 'eu', 'prod'] }), 'tags[2]', 'unique');
      expect(error.message).toBe('tags[2]: "prod" is listed twice');
    });

    it('tells tags apart by case', () => {
      expect(parsed(testInput({ tags: ['Prod', 'prod'] })).tags).toStrictEqual(['Prod', 'prod']);
    });

    it('accepts 50 tags and rejects 51 with max_items', () => {
      expect(parsed(testInput({ tags: distinct(50, 'tag') })).tags).toHaveLength(50);
      expectError(testInput({ tags: distinct(51, 'tag') }), 'tags', 'max_items');
    });
  });

  describe('enabled', () => {
    it.each([true, false])('accepts %s', (enabled) => {
      expect(parsed(testInput({ enabled })).enabled).toBe(enabled);
    });

    it.each(['true', 1, null])('rejects %j with rule type', (enabled) => {
      expectError(testInput({ enabled }), 'enabled', 'type');
    });
  });

  describe('probe', () => {
    it('is validated by the shared probe schema, with paths under probe', () => {
      expect(
        expectError(testInput({ probe: probeInput({ timeout_ms: 5 }) }), 'probe.timeout_ms', 'min'),
      ).toMatchObject({
        message: 'probe.timeout_ms: must be at least 100',
        value: 5,
      });
    });

    it('reports the probe schema own rules', () => {
      expectError(testInput({ probe: probeInput({ url: 'https://example.com' }) }), 'probe.url', 'ws_scheme');
      expectError(testInput({ probe: probeInput({ interval_s: 60 }) }), 'probe.interval_s', 'unknown_field');
      expectError(
        testInput({ probe: probeInput({ interpretation: 'round_trip_latency' }) }),
        'probe.ping_mode',
        'required_for_round_trip',
      );
    });

    it('does not echo a rejected header value under probe.headers', () => {
      const probe = probeInput({ headers: { Authorization: 'Bearer abc\r\nX-Injected: 1' } });
      const error = expectError(testInput({ probe }), 'probe.headers.Authorization', 'header_value');
      expect(error).not.toHaveProperty('value');
    });

    it('rejects a probe that is not an object', () => {
      expectError(testInput({ probe: WSS_URL }), 'probe', 'type');
    });
  });

  describe('schedule', () => {
    it('matches the documented interval bounds: one second to one week', () => {
      expect(INTERVAL_S).toEqual({ min: 1, max: 604_800 });
    });

    it.each([
      ['neither', {}],
      ['both', { cron: '* * * * *', interval_s: 60 }],
    ])('rejects %s of cron and interval_s with rule one_of', (_, schedule) => {
      const error = expectError(testInput({ schedule }), 'schedule', 'one_of');
      expect(error.message).toBe('schedule: must have exactly one of cron or interval_s');
    });

    it.each([
      ['5 fields', '*/5 * * * *'],
      ['6 fields, seconds first', '*/30 * * * * *'],
      ['6 fields with a fixed second', '0 */5 * * * *'],
      ['ranges and lists', '0 9-17 * * 1-5'],
      ['names', '0 0 * jan mon'],
      ['a nickname', '@hourly'],
    ])('accepts a cron with %s', (_, cron) => {
      expect(parsed(testInput({ schedule: { cron } })).schedule).toStrictEqual({ cron });
    });

    it.each([
      ['second 61', '61 * * * * *'],
      ['minute 60', '60 * * * *'],
      ['hour 24', '0 24 * * *'],
      ['month 13', '0 0 1 13 *'],
      ['a word', 'bogus'],
      ['7 fields', '* * * * * * *'],
      ['4 fields', '* * * *'],
      ['a step of 0', '*/0 * * * *'],
      ['an impossible date', '0 0 31 2 *'],
    ])('rejects a cron with %s with rule cron at schedule.cron', (_, cron) => {
      expect(expectError(testInput({ schedule: { cron } }), 'schedule.cron', 'cron')).toMatchObject({
        message: `schedule.cron: ${CRON_MESSAGE}`,
        value: cron,
      });
    });

    it('reports an empty cron once, by its length', () => {
      expectError(testInput({ schedule: { cron: '' } }), 'schedule.cron', 'min_length');
    });

    it('reports a cron over 200 characters once, by its length', () => {
      expectError(
        testInput({ schedule: { cron: `* * * * ${'*'.repeat(193)}` } }),
        'schedule.cron',
        'max_length',
      );
    });

    it('rejects a cron that is not a string', () => {
      expectError(testInput({ schedule: { cron: 60 } }), 'schedule.cron', 'type');
    });

    it.each([INTERVAL_S.min, 60, INTERVAL_S.max])('accepts interval_s %d', (interval_s) => {
      expect(parsed(testInput({ schedule: { interval_s } })).schedule).toStrictEqual({ interval_s });
    });

    it.each([
      [0, 'min'],
      [-60, 'min'],
      [604_801, 'max'],
      [1.5, 'integer'],
      ['60', 'type'],
    ])('rejects interval_s %j with rule %s', (interval_s, rule) => {
      expectError(testInput({ schedule: { interval_s } }), 'schedule.interval_s', rule);
    });

    it('reports a bad cron, a bad interval and their conflict together', () => {
      expectErrors(
        testInput({ schedule: { cron: 'bogus', interval_s: 0 } }),
        { path: 'schedule.cron', rule: 'cron' },
        { path: 'schedule.interval_s', rule: 'min' },
        { path: 'schedule', rule: 'one_of' },
      );
    });

    it('rejects an unknown schedule field with unknown_field', () => {
      expectError(
        testInput({ schedule: { interval_s: 60, every: '1m' } }),
        'schedule.every',
        'unknown_field',
      );
    });
  });

  describe('locations', () => {
    it('rejects an empty list with min_items', () => {
      expect(expectError(testInput({ locations: [] }), 'locations', 'min_items').message).toBe(
        'locations: must have at least 1 items',
      );
    });

    it('rejects a repeated location with rule unique at the repetition', () => {
      const error = expectError(testInput({ locations: ['eu', 'us', 'eu'] }), 'locations[2]', 'unique');
      expect(error.message).toBe('locations[2]: "eu" is listed twice');
    });

    it.each(['EU', '-eu', 'eu_west', ''])('rejects the location name %j with rule format', (name) => {
      expect(expectError(testInput({ locations: ['eu', name] }), 'locations[1]', 'format').message).toBe(
        `locations[1]: ${SLUG_MESSAGE}`,
      );
    });

    it('accepts 200 locations and rejects 201 with max_items', () => {
      expect(parsed(testInput({ locations: distinct(200, 'loc-') })).locations).toHaveLength(200);
      expectError(testInput({ locations: distinct(201, 'loc-') }), 'locations', 'max_items');
    });

    it('rejects a single name given as a string', () => {
      expectError(testInput({ locations: 'eu-west-1' }), 'locations', 'type');
    });
  });

  describe('retry', () => {
    it.each([[{ attempts: 0, delay_ms: 0 }], [{ attempts: 5, delay_ms: 60_000 }]])(
      'accepts the bounds %j',
      (retry) => {
        expect(parsed(testInput({ retry })).retry).toStrictEqual(retry);
      },
    );

    it.each([
      ['attempts', -1, 'min'],
      ['attempts', 6, 'max'],
      ['attempts', 1.5, 'integer'],
      ['delay_ms', -1, 'min'],
      ['delay_ms', 60_001, 'max'],
      ['delay_ms', '1000', 'type'],
    ])('rejects %s %j with rule %s', (field, value, rule) => {
      expectError(testInput({ retry: { [field]: value } }), `retry.${field}`, rule);
    });

    it('rejects an unknown retry field with unknown_field', () => {
      expectError(
        testInput({ retry: { attempts: 1, backoff: 'exponential' } }),
        'retry.backoff',
        'unknown_field',
      );
    });
  });

  describe('alert', () => {
    it.each([
      [{ min_failing_locations: 1, for_minutes: 1 }],
      [{ min_failing_locations: 1000, for_minutes: 1440 }],
    ])('accepts the bounds %j', (alert) => {
      expect(parsed(testInput({ alert })).alert).toStrictEqual(alert);
    });

    it.each([
      ['min_failing_locations', 0, 'min'],
      ['min_failing_locations', 1001, 'max'],
      ['min_failing_locations', 1.5, 'integer'],
      ['for_minutes', 0, 'min'],
      ['for_minutes', 1441, 'max'],
    ])('rejects %s %j with rule %s', (field, value, rule) => {
      expectError(testInput({ alert: { [field]: value } }), `alert.${field}`, rule);
    });

    it('rejects an unknown alert field with unknown_field', () => {
      expectError(testInput({ alert: { channel: 'pager' } }), 'alert.channel', 'unknown_field');
    });
  });

  it('reports every error at once', () => {
    expectErrors(
      {
        name: ' ',
        tags: ['a', 'a'],
        probe: probeInput({ timeout_ms: 5 }),
        schedule: {},
        locations: [],
        retry: { attempts: 9 },
      },
      { path: 'name', rule: 'min_length' },
      { path: 'tags[1]', rule: 'unique' },
      { path: 'probe.timeout_ms', rule: 'min' },
      { path: 'schedule', rule: 'one_of' },
      { path: 'locations', rule: 'min_items' },
      { path: 'retry.attempts', rule: 'max' },
    );
  });
});

describe('testPatchSchema', () => {
  const { parsed, expectError } = against(testPatchSchema);

  it('applies no defaults: {} parses to {}', () => {
    expect(parsed({})).toStrictEqual({});
  });

  it('keeps {enabled: false} exactly as it is', () => {
    expect(parsed({ enabled: false })).toStrictEqual({ enabled: false });
  });

  it.each([
    [{ description: '' }],
    [{ tags: [] }],
    [{ tags: ['env:prod'] }],
    [{ schedule: { cron: '0 * * * *' } }],
    [{ locations: ['us-east-1'] }],
    [{ alert: { min_failing_locations: 2, for_minutes: 3 } }],
  ])('keeps only the given field of %j', (patch) => {
    expect(parsed(patch)).toStrictEqual(patch);
  });

  it('trims a given name', () => {
    expect(parsed({ name: ' Renamed ' })).toStrictEqual({ name: 'Renamed' });
  });

  it('replaces probe, retry and alert whole: their own defaults fill a given one', () => {
    expect(parsed({ probe: probeInput() })).toStrictEqual({ probe: assertProbeConfig(probeInput()) });
    expect(parsed({ retry: { attempts: 2 } })).toStrictEqual({ retry: { attempts: 2, delay_ms: 1000 } });
    expect(parsed({ alert: {} })).toStrictEqual({ alert: { min_failing_locations: 1, for_minutes: 5 } });
  });

  it('validates the given fields by the rules of the input', () => {
    expectError({ name: '  ' }, 'name', 'min_length');
    expectError({ tags: ['a', 'a'] }, 'tags[1]', 'unique');
    expectError({ enabled: 'false' }, 'enabled', 'type');
    expectError({ probe: probeInput({ timeout_ms: 5 }) }, 'probe.timeout_ms', 'min');
    expectError({ schedule: {} }, 'schedule', 'one_of');
    expectError({ schedule: { cron: 'bogus' } }, 'schedule.cron', 'cron');
    expectError({ locations: [] }, 'locations', 'min_items');
    expectError({ retry: { delay_ms: 60_001 } }, 'retry.delay_ms', 'max');
    expectError({ alert: { for_minutes: 0 } }, 'alert.for_minutes', 'min');
  });

  it('does not clear fields with null', () => {
    expectError({ description: null }, 'description', 'type');
    expectError({ schedule: null }, 'schedule', 'type');
  });

  it('rejects an unknown field with unknown_field', () => {
    expectError({ enabled: true, id: 'tst_1' }, 'id', 'unknown_field');
  });
});

// ---------- secrets, access ----------

describe('secretInputSchema', () => {
  /** A value over the 65536-character limit, that an echoed error would show. */
  const LEAKED = 's3cr3t'.repeat(10_923);
  const { parsed, expectError, expectErrors } = against(secretInputSchema);

  it('accepts a name and a value', () => {
    expect(parsed(secretInput())).toStrictEqual({ name: 'API_TOKEN', value: 's3cr3t' });
  });

  it.each(['API_TOKEN', 'session', '_private', 'a1', 'S'.repeat(64)])('accepts the name %j', (name) => {
    expect(parsed(secretInput({ name })).name).toBe(name);
  });

  it.each([
    ['a leading digit', '1X'],
    ['a dash', 'API-TOKEN'],
    ['a dot', 'secrets.API'],
    ['a space', 'API TOKEN'],
    ['nothing', ''],
    ['65 characters', 'S'.repeat(65)],
  ])('rejects a name with %s with rule format', (_, name) => {
    expect(expectError(secretInput({ name }), 'name', 'format').message).toBe(
      'name: must be a secret name: letters, digits and _, not starting with a digit',
    );
  });

  it('accepts a value of 1 and of 65536 characters', () => {
    expect(parsed(secretInput({ value: 'x' })).value).toBe('x');
    expect(parsed(secretInput({ value: 'x'.repeat(65_536) })).value).toHaveLength(65_536);
  });

  it.each([
    ['an empty value', '', 'min_length'],
    ['65537 characters', LEAKED, 'max_length'],
    ['a number', 123_456, 'type'],
  ])('rejects %s with rule %s and never echoes the value', (_, value, rule) => {
    expect(expectError(secretInput({ value }), 'value', rule)).not.toHaveProperty('value');
  });

  it('echoes a rejected name, but neither the value nor a bare string body', () => {
    const errors = expectErrors(
      { name: '1X', value: LEAKED },
      { path: 'name', rule: 'format' },
      { path: 'value', rule: 'max_length' },
    );
    expect(errors.find((e) => e.path === 'name')).toHaveProperty('value', '1X');
    expect(errors.find((e) => e.path === 'value')).not.toHaveProperty('value');
    expect(expectError('a secret posted as a bare string', '(root)', 'type')).not.toHaveProperty('value');
  });

  it.each<[string, z.ZodType, unknown, string]>([
    [
      'an update body reusing the value field',
      z.strictObject({ value: secretInputSchema.shape.value }),
      { value: LEAKED },
      'value',
    ],
    ['a partial of the input', secretInputSchema.partial(), { value: LEAKED }, 'value'],
    ['the value field alone', secretInputSchema.shape.value, LEAKED, '(root)'],
  ])('never echoes the value through %s either', (_, schema, body, path) => {
    expect(against(schema).expectError(body, path, 'max_length')).not.toHaveProperty('value');
  });

  it.each(['name', 'value'])('requires %s', (field) => {
    const input = secretInput();
    delete input[field];
    expectError(input, field, 'required');
  });
});

describe('apiKeyInputSchema', () => {
  const { parsed, expectError } = against(apiKeyInputSchema);

  it('has the roles admin, editor and viewer', () => {
    expect(ROLES).toEqual(['admin', 'editor', 'viewer']);
  });

  it.each(ROLES)('accepts the role %s', (role) => {
    expect(parsed(apiKeyInput({ role }))).toStrictEqual({ name: 'CI pipeline', role });
  });

  it.each(['owner', 'Admin', ''])('rejects the role %j with rule enum, listing the roles', (role) => {
    expect(expectError(apiKeyInput({ role }), 'role', 'enum')).toMatchObject({
      message: 'role: must be one of "admin", "editor", "viewer"',
      value: role,
    });
  });

  it('requires a role, listing the roles', () => {
    expect(expectError({ name: 'CI' }, 'role', 'required').message).toBe(
      'role: is required (one of "admin", "editor", "viewer")',
    );
  });

  it('trims the name and bounds it to 1..100 characters', () => {
    expect(parsed(apiKeyInput({ name: '  CI  ' })).name).toBe('CI');
    expect(parsed(apiKeyInput({ name: 'k'.repeat(100) })).name).toHaveLength(100);
    expectError(apiKeyInput({ name: '   ' }), 'name', 'min_length');
    expectError(apiKeyInput({ name: 'k'.repeat(101) }), 'name', 'max_length');
  });

  it('requires a name', () => {
    expectError({ role: 'viewer' }, 'name', 'required');
  });
});

describe('agentTokenInputSchema', () => {
  const { parsed, expectError } = against(agentTokenInputSchema);

  it('names the token "agent token" by default', () => {
    expect(parsed({})).toStrictEqual({ name: 'agent token' });
  });

  it('trims a given name', () => {
    expect(parsed({ name: ' eu-west-1 agents ' })).toStrictEqual({ name: 'eu-west-1 agents' });
  });

  it('bounds the name to 1..100 characters', () => {
    expectError({ name: '' }, 'name', 'min_length');
    expectError({ name: 'k'.repeat(101) }, 'name', 'max_length');
  });

  it('rejects an unknown field with unknown_field', () => {
    expectError({ role: 'admin' }, 'role', 'unknown_field');
  });
});

// ---------- lists ----------

describe('listQuerySchema', () => {
  const { parsed, expectError } = against(listQuerySchema);

  it('defaults page_size to 50', () => {
    expect(parsed({})).toStrictEqual({ page_size: 50 });
  });

  it.each([
    ['1', 1],
    ['20', 20],
    ['200', 200],
    [20, 20],
  ])('reads page_size %j as %d, as REST query parameters come', (page_size, expected) => {
    expect(parsed({ page_size })).toStrictEqual({ page_size: expected });
  });

  it.each([
    ['0', 'min', 0],
    ['-1', 'min', -1],
    ['201', 'max', 201],
    ['1.5', 'integer', 1.5],
  ])('rejects page_size %j with rule %s, echoing the number', (page_size, rule, echoed) => {
    expect(expectError({ page_size }, 'page_size', rule).value).toBe(echoed);
  });

  it.each(['abc', '', ' 5', '0x10', true, null])(
    'rejects page_size %j with rule type, echoing what was sent',
    (page_size) => {
      const error = expectError({ page_size }, 'page_size', 'type');
      expect(error.message).toBe('page_size: must be a number');
      if (page_size !== null) expect(error.value).toBe(page_size);
    },
  );

  it('rejects a repeated page_size parameter', () => {
    expectError({ page_size: ['10', '20'] }, 'page_size', 'type');
  });

  it('accepts a page_token of 512 characters and rejects 513', () => {
    expect(parsed({ page_token: 't'.repeat(512) }).page_token).toHaveLength(512);
    expectError({ page_token: 't'.repeat(513) }, 'page_token', 'max_length');
  });

  it('rejects an unknown parameter with unknown_field', () => {
    expectError({ page: '2' }, 'page', 'unknown_field');
  });
});

describe('testListQuerySchema', () => {
  const { parsed, expectError, expectErrors } = against(testListQuerySchema);

  it('defaults page_size to 50 and leaves the filters out', () => {
    expect(parsed({})).toStrictEqual({ page_size: 50 });
  });

  it('keeps every given filter, reading numbers and booleans from strings', () => {
    const query = { page_size: '10', page_token: 'abc', tag: 'env:prod', location: 'eu-west-1', q: 'market' };
    expect(parsed({ ...query, enabled: 'true' })).toStrictEqual({ ...query, page_size: 10, enabled: true });
  });

  it.each([
    ['true', true],
    ['false', false],
  ])('reads enabled %j as %s', (enabled, expected) => {
    expect(parsed({ enabled })).toStrictEqual({ page_size: 50, enabled: expected });
  });

  it.each(['yes', '1', 'TRUE', ''])('rejects enabled %j with rule enum', (enabled) => {
    expect(expectError({ enabled }, 'enabled', 'enum').message).toBe(
      'enabled: must be one of "true", "false"',
    );
  });

  it('rejects a tag that is not a tag, saying what a tag is', () => {
    expect(expectError({ tag: '-prod' }, 'tag', 'format').message).toBe(`tag: ${TAG_MESSAGE}`);
  });

  it('rejects a location that is not a slug', () => {
    expect(expectError({ location: 'EU' }, 'location', 'format').message).toBe(`location: ${SLUG_MESSAGE}`);
  });

  it('bounds q to 1..200 characters', () => {
    expect(parsed({ q: 'q'.repeat(200) }).q).toHaveLength(200);
    expectError({ q: '' }, 'q', 'min_length');
    expectError({ q: 'q'.repeat(201) }, 'q', 'max_length');
  });

  it('keeps the rules of the plain list query', () => {
    expectErrors(
      { page_size: '0', page_token: 't'.repeat(513), sort: 'name' },
      { path: 'page_size', rule: 'min' },
      { path: 'page_token', rule: 'max_length' },
      { path: 'sort', rule: 'unknown_field' },
    );
  });
});

// ---------- results and runs ----------

describe('resultListQuerySchema', () => {
  const { parsed, expectError, expectErrors } = against(resultListQuerySchema);

  it('defaults page_size to 50 and leaves the range and the filters out', () => {
    expect(parsed({})).toStrictEqual({ page_size: 50 });
  });

  it('keeps every given filter', () => {
    const query = {
      from: '2026-01-01T00:00:00Z',
      to: '2026-01-01T12:00:00.500+02:00',
      location: 'eu-west-1',
      agent: 'agent-7f3a',
      outcome: 'failure',
      page_token: 'abc',
    };
    expect(parsed({ ...query, page_size: '200' })).toStrictEqual({ ...query, page_size: 200 });
  });

  it.each(['yesterday', '2026-01-01', '2026-01-01T00:00:00', '1767225600000'])(
    'rejects from %j, a time without an offset or not a time, with rule format',
    (from) => {
      expect(expectError({ from }, 'from', 'format').message).toBe('from: must be a valid datetime');
    },
  );

  it('rejects a range that ends before it starts, or is empty, on to', () => {
    for (const to of ['2026-01-01T00:00:00Z', '2025-12-31T23:00:00Z']) {
      expect(expectError({ from: '2026-01-01T00:00:00Z', to }, 'to', 'after_from').message).toBe(
        'to: must be later than from',
      );
    }
    // Compared as instants, not as text.
    expect(parsed({ from: '2026-01-01T01:00:00+02:00', to: '2026-01-01T00:00:00Z' }).to).toBeDefined();
  });

  it('rejects an outcome other than success or failure, a location that is not a slug, an empty agent', () => {
    expectErrors(
      { outcome: 'ok', location: 'EU', agent: '' },
      { path: 'outcome', rule: 'enum' },
      { path: 'location', rule: 'format' },
      { path: 'agent', rule: 'min_length' },
    );
  });

  it('keeps the rules of the plain list query', () => {
    expectErrors(
      { page_size: '201', order: 'asc' },
      { path: 'page_size', rule: 'max' },
      { path: 'order', rule: 'unknown_field' },
    );
  });
});

describe('runGetQuerySchema', () => {
  const { parsed, expectError } = against(runGetQuerySchema);

  it('defaults wait_s to 0 and reads it from a string', () => {
    expect(parsed({})).toStrictEqual({ wait_s: 0 });
    expect(parsed({ wait_s: '60' })).toStrictEqual({ wait_s: 60 });
  });

  it.each([
    ['61', 'max'],
    ['-1', 'min'],
    ['1.5', 'integer'],
    ['soon', 'type'],
  ])('rejects wait_s %j with rule %s', (wait_s, rule) => {
    expectError({ wait_s }, 'wait_s', rule);
  });
});

// ---------- parsing ----------

describe(parseInput.name, () => {
  it('returns {ok: true, value} with the defaults applied', () => {
    expect(parseInput(locationInputSchema, locationInput())).toStrictEqual({
      ok: true,
      value: { name: 'eu-west-1', kind: 'private', labels: {} },
    });
  });

  it('returns {ok: false, errors} with one field error per broken rule', () => {
    expect(parseInput(locationInputSchema, { name: 'EU', kind: 'cloud' })).toStrictEqual({
      ok: false,
      errors: [
        { path: 'name', rule: 'format', message: `name: ${SLUG_MESSAGE}`, value: 'EU' },
        { path: 'kind', rule: 'enum', message: 'kind: must be one of "private", "managed"', value: 'cloud' },
      ],
    });
  });

  it.each([[null], ['eu-west-1'], [[]], [42]])('rejects %j at the root with rule type', (input) => {
    const { expectError } = against(locationInputSchema);
    expect(expectError(input, '(root)', 'type').message).toBe('(root): must be an object');
  });

  it('echoes the rejected values of resources that are not secrets', () => {
    const outcome = parseInput(apiKeyInputSchema, apiKeyInput({ role: 'owner' }));
    expect(outcome).toMatchObject({ ok: false, errors: [{ path: 'role', value: 'owner' }] });
  });
});
