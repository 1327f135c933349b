import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Histogram } from '@wsmon/metrics';
import { describe, expect, it } from 'vitest';
import { controlPlaneFamilies, latestResultFamilies } from './metrics.service';

const DOCS = fileURLToPath(new URL('../../../../docs/', import.meta.url));
const RULES = `${DOCS}prometheus-alerts.yml`;

/** Every metric name `/metrics` can expose, histogram samples by their suffixed names. */
function exposedNames(): Set<string> {
  const families = [
    ...latestResultFamilies([]),
    ...controlPlaneFamilies({
      replicaId: 'r',
      version: '0',
      latest: [],
      locations: [],
      localStreams: 0,
      counters: {
        streamsOpened: 0,
        streamErrors: new Map(),
        resultsIngested: 0,
        ingestLagSeconds: new Histogram([1]),
      },
    }),
  ];
  return new Set(
    families.flatMap((f) =>
      f.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => f.name + s) : [f.name],
    ),
  );
}

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

/** docs/prometheus-alerts.yml must stay true to the metrics it is built on (docs/prometheus.md). */
describe('the example alert rules', () => {
  it('use only metrics the control plane exposes', () => {
    const text = readFileSync(RULES, 'utf8');
    const used = new Set(text.match(/\b(?:probe|wsmon)_[a-z0-9_]+\b/g));
    expect(used.size).toBeGreaterThan(5);
    const exposed = exposedNames();
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
  });

  it.runIf(promtool)('pass promtool check rules and their unit tests', () => {
    execFileSync('promtool', ['check', 'rules', RULES], { stdio: 'pipe' });
    execFileSync('promtool', ['test', 'rules', 'prometheus-alerts.test.yml'], { cwd: DOCS, stdio: 'pipe' });
  });
});
