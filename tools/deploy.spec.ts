import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locationInputSchema, testInputSchema } from '@wsmon/contracts';
import { runProbe } from '@wsmon/probe';
import { AGENT_NODE_FLAGS } from '@wsmon/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';

/**
 * What can be checked of docker/ and helm/ without a Docker engine or a helm binary: every YAML file parses,
 * the Dockerfiles copy and run files the build makes, the compose file and the charts set only variables the
 * apps read, every `.Values` path a template uses is defined, and the demo's tests are valid and pass against
 * its echo server. tools/deploy-runtime.spec.ts runs the images' production installs.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function parseYaml(path: string): unknown {
  const document = parseDocument(read(path), { merge: true, uniqueKeys: true, prettyErrors: false });
  const problems = [...document.errors, ...document.warnings].map((e) => `${path}: ${e.message}`);
  expect(problems).toEqual([]);
  return document.toJS() as unknown;
}

function filesUnder(dir: string, keep: (path: string) => boolean): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)))
    .filter(keep)
    .sort();
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The environment variables an app's configuration reads, from its sources. */
function variablesRead(paths: readonly string[]): Set<string> {
  const names = new Set<string>(['NODE_ENV', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS']);
  for (const path of paths) {
    for (const [name] of read(path).matchAll(/\b(?:WSMON_[A-Z0-9_]+|DATABASE_URL|HTTPS_PROXY|NO_PROXY)\b/g)) {
      names.add(name);
    }
  }
  return names;
}
const CONTROL_PLANE_VARIABLES = variablesRead(['apps/control-plane/src/config/app-config.ts']);
const AGENT_VARIABLES = variablesRead([
  'apps/agent/src/config/agent-config.ts',
  'apps/agent/src/session/control-plane-channel.ts',
]);

/** The agent cuts its own shutdown at this many milliseconds (apps/agent/src/main.ts). */
const AGENT_SHUTDOWN_LIMIT_MS = Number(
  /SHUTDOWN_LIMIT_MS = ([\d_]+)/.exec(read('apps/agent/src/main.ts'))![1]!.replaceAll('_', ''),
);

describe('YAML files of docker/ and helm/', () => {
  const files = [
    ...filesUnder('docker', (p) => /\.ya?ml$/.test(p)),
    ...filesUnder('helm', (p) => /\.ya?ml$/.test(p) && !p.includes('/templates/')),
  ];

  it('are the compose file, the charts and their values files', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'docker/compose.yaml',
        'helm/wsmon-agent/Chart.yaml',
        'helm/wsmon-agent/values.yaml',
        'helm/wsmon-agent/values-managed-regions.yaml',
        'helm/wsmon-agent/values-private-network.yaml',
        'helm/wsmon-control-plane/Chart.yaml',
        'helm/wsmon-control-plane/values.yaml',
      ]),
    );
  });

  it.each(files)('%s parses, without duplicate keys', (path) => {
    expect(parseYaml(path)).toBeTypeOf('object');
  });
});

// ---------- Dockerfiles ----------

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Stages and their instructions: comment lines dropped, continuation lines joined. */
function parseDockerfile(path: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = read(path)
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const [, keyword, rest] = match as unknown as [string, string, string];
    if (keyword === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest)!;
      stages.push({ from: from!, name, instructions: [] });
    } else if (stages.length === 0 && keyword === 'ARG') {
      const [name, value = ''] = rest.split('=', 2) as [string, string?];
      args.set(name.trim(), value.trim());
    } else {
      stages.at(-1)?.instructions.push({ keyword, args: rest.trim() });
    }
  }
  return { args, stages };
}

/** `ENV a=1 b=2` as a map. */
const envOf = (stage: Stage): Map<string, string> =>
  new Map(
    stage.instructions
      .filter((i) => i.keyword === 'ENV')
      .flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)].map((m) => [m[1]!, m[2]!] as const)),
  );

const DOCKERFILES = [
  {
    app: 'control-plane',
    path: 'docker/Dockerfile.control-plane',
    variables: CONTROL_PLANE_VARIABLES,
    portVariable: 'WSMON_HTTP_PORT',
  },
  {
    app: 'agent',
    path: 'docker/Dockerfile.agent',
    variables: AGENT_VARIABLES,
    portVariable: 'WSMON_AGENT_HTTP_PORT',
  },
] as const;

describe.each(DOCKERFILES)('$path', ({ app, path, variables, portVariable }) => {
  const { args, stages } = parseDockerfile(path);
  const runtime = stages.at(-1)!;
  const workdir = runtime.instructions.findLast((i) => i.keyword === 'WORKDIR')?.args ?? '/';

  it('builds on one Node LTS slim image in every stage, the bundles by scripts/build.mjs', () => {
    expect(args.get('NODE_IMAGE')).toMatch(/^node:(20|22|24)-[a-z]+-slim$/);
    expect(stages.map((s) => s.from)).toEqual(stages.map(() => '${NODE_IMAGE}'));
    const build = stages.find((s) => s.name === 'build')!;
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.join('\n')).toMatch(/npm ci .*&& node scripts\/build\.mjs/);
  });

  it(`installs the production dependencies of apps/${app} alone`, () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    const install = deps.instructions.find((i) => i.keyword === 'RUN' && i.args.includes('npm ci'))!;
    expect(install.args).toMatch(new RegExp(`npm ci --omit=dev --workspace apps/${app} --ignore-scripts`));
  });

  it('copies from the build only files that exist once the repository is built (npm run build)', () => {
    const copies = runtime.instructions.filter((i) => i.keyword === 'COPY');
    const sources = copies.flatMap((c) =>
      [...c.args.matchAll(/--from=build \/src\/(\S+)/g)].map((m) => m[1]!),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
  });

  it('runs an entry point the runtime stage copies, with node as PID 1 (exec form)', () => {
    const entrypoint = JSON.parse(
      runtime.instructions.find((i) => i.keyword === 'ENTRYPOINT')!.args,
    ) as string[];
    expect(entrypoint[0]).toBe('node');
    // The agent runs with the flags it runs with everywhere else (the local agent, bench:agent).
    if (app === 'agent') expect(entrypoint.slice(1, -1)).toEqual(AGENT_NODE_FLAGS);
    const entry = entrypoint.at(-1)!;
    expect(entry).toBe(`/app/apps/${app}/dist/main.js`);
    // The COPY whose destination holds the entry point, and the built file it copies.
    const copied = runtime.instructions
      .filter((i) => i.keyword === 'COPY')
      .map((i) => /--from=build \/src\/(\S+)\s+(\S+)$/.exec(i.args))
      .filter((m) => m !== null)
      .map(([, source, destination]) => ({ source: source!, destination: join(workdir, destination!) }))
      .find((c) => entry.startsWith(`${c.destination}/`));
    expect(copied, `a COPY into ${entry}`).toBeDefined();
    const built = join(ROOT, copied!.source, relative(copied!.destination, entry));
    expect(existsSync(built), `${relative(ROOT, built)} (npm run build)`).toBe(true);
  });

  it('runs as a non-root uid, stops on SIGTERM, checks /healthz on the configured port', () => {
    const user = runtime.instructions.findLast((i) => i.keyword === 'USER')!.args;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(runtime.instructions.find((i) => i.keyword === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    const healthcheck = runtime.instructions.find((i) => i.keyword === 'HEALTHCHECK')!.args;
    expect(healthcheck).toContain('/healthz');
    expect(healthcheck).toContain(`process.env.${portVariable}`);
  });

  it('sets only variables the app reads', () => {
    const env = envOf(runtime);
    expect(env.size).toBeGreaterThan(0);
    for (const name of env.keys()) expect(variables.has(name), name).toBe(true);
  });

  it('has a build context ignore file beside it that leaves out node_modules and dist', () => {
    const ignore = read(`${path}.dockerignore`).split('\n');
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist']));
  });
});

describe('the bundles the images run', () => {
  const BUILTIN = /^node:|^(fs|path|os|net|tls|http|https|crypto|events|stream|util|zlib|dns|child_process)$/;

  it.each(['agent', 'control-plane'])(
    'apps/%s/dist/main.js requires only packages its package.json declares',
    (app) => {
      const bundle = read(`apps/${app}/dist/main.js`);
      const declared = Object.keys(
        (JSON.parse(read(`apps/${app}/package.json`)) as { dependencies: Record<string, string> })
          .dependencies,
      );
      const required = new Set(
        [...bundle.matchAll(/require\("([^"]+)"\)/g)]
          .map((m) => m[1]!)
          .filter((name) => !BUILTIN.test(name))
          .map((name) =>
            name
              .split('/')
              .slice(0, name.startsWith('@') ? 2 : 1)
              .join('/'),
          ),
      );
      expect([...required].filter((name) => !declared.includes(name))).toEqual([]);
    },
  );

  it("gives the agent bundle in the control-plane image (the embedded setup's local agent) its packages", () => {
    const deps = (app: string) =>
      (JSON.parse(read(`apps/${app}/package.json`)) as { dependencies: Record<string, string> }).dependencies;
    const controlPlane = deps('control-plane');
    const missing = Object.entries(deps('agent')).filter(
      ([name, version]) => !name.startsWith('@wsmon/') && controlPlane[name] !== version,
    );
    expect(missing).toEqual([]);
  });
});

// ---------- compose ----------

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  entrypoint?: string[];
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  stop_grace_period?: string;
}

describe('docker/compose.yaml', () => {
  const compose = parseYaml('docker/compose.yaml') as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
  };
  const services = compose.services;
  const agents = Object.entries(services).filter(([name]) => name.startsWith('agent-'));
  const demo = JSON.parse(read('docker/demo/tests.json')) as { locations: { name: string }[] };
  const agentDataDir = envOf(parseDockerfile('docker/Dockerfile.agent').stages.at(-1)!).get(
    'WSMON_AGENT_DATA_DIR',
  );
  const seconds = (duration: string | undefined) => Number(/^(\d+)s$/.exec(duration ?? '')?.[1] ?? 0);

  it('runs PostgreSQL, two control-plane replicas, the echo target, the init service and agents', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['postgres', 'control-plane-1', 'control-plane-2', 'echo', 'init']),
    );
    expect(agents.length).toBeGreaterThanOrEqual(2);
  });

  it('builds from Dockerfiles that exist, with the repository as the context', () => {
    for (const [name, service] of Object.entries(services)) {
      if (!service.build) continue;
      expect(join(ROOT, 'docker', service.build.context), name).toBe(ROOT);
      expect(existsSync(join(ROOT, service.build.dockerfile)), name).toBe(true);
    }
  });

  it('gives both replicas the same database, secret key and admin key; the second starts after the first', () => {
    const [one, two] = [services['control-plane-1']!, services['control-plane-2']!];
    for (const name of ['DATABASE_URL', 'WSMON_SECRET_KEY', 'WSMON_ADMIN_KEY']) {
      expect(one.environment?.[name], name).toBeDefined();
      expect(two.environment?.[name], name).toBe(one.environment?.[name]);
    }
    expect(two.depends_on?.['control-plane-1']?.condition).toBe('service_healthy');
  });

  it('sets only variables the apps, the entry point and the demo scripts read', () => {
    const scriptOf: Record<string, string> = {
      init: read('docker/demo/bootstrap.mjs'),
      echo: read('docker/demo/echo-server.mjs'),
    };
    for (const [name, service] of Object.entries(services)) {
      for (const variable of Object.keys(service.environment ?? {})) {
        if (name.startsWith('control-plane-'))
          expect(CONTROL_PLANE_VARIABLES.has(variable), variable).toBe(true);
        else if (name.startsWith('agent-')) {
          const known =
            AGENT_VARIABLES.has(variable) || (service.entrypoint ?? []).join(' ').includes(variable);
          expect(known, `${name}: ${variable}`).toBe(true);
        } else if (scriptOf[name]) expect(scriptOf[name], `${name}: ${variable}`).toContain(variable);
      }
    }
  });

  it('starts the agents after the init service, each with a data volume of its own and a demo location', () => {
    const dataVolumes = agents.map(([name, agent]) => {
      expect(agent.depends_on?.init?.condition, name).toBe('service_completed_successfully');
      expect(
        demo.locations.map((l) => l.name),
        name,
      ).toContain(agent.environment?.WSMON_DEMO_LOCATION);
      expect(agent.volumes, name).toContain('agent-tokens:/run/wsmon/tokens:ro');
      const data = agent.volumes?.find((v) => v.endsWith(`:${agentDataDir}`));
      expect(data, `${name}: a volume at ${agentDataDir}`).toBeDefined();
      return data!.split(':')[0]!;
    });
    expect(new Set(dataVolumes).size).toBe(agents.length);
    for (const volume of dataVolumes) expect(compose.volumes).toHaveProperty(volume);
  });

  it('gives agents longer than their own shutdown limit to stop', () => {
    for (const [name, agent] of agents) {
      expect(seconds(agent.stop_grace_period) * 1000, name).toBeGreaterThan(AGENT_SHUTDOWN_LIMIT_MS);
    }
  });

  it('mounts demo files that exist', () => {
    const mounts = Object.values(services).flatMap((s) => s.volumes ?? []);
    const files = mounts.filter((m) => m.startsWith('./')).map((m) => m.split(':')[0]!);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(existsSync(join(ROOT, 'docker', file)), file).toBe(true);
  });
});

// ---------- the demo ----------

describe('the demo of docker/compose.yaml', () => {
  const demo = JSON.parse(read('docker/demo/tests.json')) as {
    locations: unknown[];
    tests: { name: string; probe: { url: string }; locations: string[] }[];
  };
  let echo: ChildProcess;
  let echoPort: number;

  beforeAll(async () => {
    echo = spawn(process.execPath, [join(ROOT, 'docker/demo/echo-server.mjs')], {
      env: { PATH: process.env.PATH, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    echoPort = await new Promise<number>((resolve, reject) => {
      echo.stdout!.on('data', (chunk: Buffer) => {
        const port = /listening on port (\d+)/.exec(chunk.toString())?.[1];
        if (port) resolve(Number(port));
      });
      echo.once('exit', (code) => reject(new Error(`the echo server exited (${code})`)));
    });
  });
  afterAll(() => {
    echo?.kill('SIGTERM');
  });

  it('has valid locations and tests, named so that the init service finds them again (?q=demo)', () => {
    const names = demo.locations.map((location) => {
      const parsed = locationInputSchema.safeParse(location);
      expect(parsed.error).toBeUndefined();
      return parsed.data!.name;
    });
    for (const test of demo.tests) {
      const parsed = testInputSchema.safeParse(test);
      expect(parsed.error, test.name).toBeUndefined();
      expect(test.name).toContain('demo');
      for (const location of test.locations) expect(names).toContain(location);
    }
    expect(new Set(demo.tests.map((t) => t.name)).size).toBe(demo.tests.length);
  });

  it('passes against the echo server, except the test that fails on purpose', async () => {
    for (const test of demo.tests) {
      const url = new URL(test.probe.url);
      expect(url.hostname).toBe('echo');
      const failsOnPurpose = url.port !== '8765';
      url.hostname = '127.0.0.1';
      if (!failsOnPurpose) url.port = String(echoPort);
      const result = await runProbe({ ...test.probe, url: url.toString() });
      expect(result.success, `${test.name}: ${JSON.stringify(result.failure)}`).toBe(!failsOnPurpose);
    }
  });
});

// ---------- Helm charts ----------

/** `.Values.a.b` paths of a template, and whether each is defined in values.yaml. */
function valuesPaths(template: string): string[] {
  return [...template.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1]!.slice(1));
}

function lookup(values: unknown, path: string): boolean {
  let node: unknown = values;
  for (const key of path.split('.')) {
    if (!isObject(node) || !(key in node)) return false;
    node = node[key];
  }
  return true;
}

/** Keys of an override file that values.yaml does not define (maps that values.yaml leaves empty are free). */
function unknownKeys(override: unknown, values: unknown, at = ''): string[] {
  if (!isObject(override) || !isObject(values)) return [];
  return Object.entries(override).flatMap(([key, value]) => {
    const path = at ? `${at}.${key}` : key;
    if (!(key in values)) return [path];
    const defined = values[key];
    return isObject(defined) && Object.keys(defined).length > 0 ? unknownKeys(value, defined, path) : [];
  });
}

describe.each([
  { chart: 'wsmon-control-plane', app: 'control-plane', variables: CONTROL_PLANE_VARIABLES },
  { chart: 'wsmon-agent', app: 'agent', variables: AGENT_VARIABLES },
])('helm/$chart', ({ chart, app, variables }) => {
  const dir = `helm/${chart}`;
  const values = parseYaml(`${dir}/values.yaml`);
  const templates = filesUnder(`${dir}/templates`, () => true).map((path) => ({ path, text: read(path) }));
  const manifests = templates.filter((t) => t.path.endsWith('.yaml'));

  it("is a v2 chart named as its directory, its appVersion the app's version", () => {
    const meta = parseYaml(`${dir}/Chart.yaml`) as Record<string, string>;
    expect(meta).toMatchObject({ apiVersion: 'v2', name: chart, type: 'application' });
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+$/);
    const { version } = JSON.parse(read(`apps/${app}/package.json`)) as { version: string };
    expect(meta.appVersion).toBe(version);
  });

  it('defines in values.yaml every .Values path its templates use', () => {
    const missing = templates.flatMap(({ path, text }) =>
      valuesPaths(text)
        .filter((p) => !lookup(values, p))
        .map((p) => `${path}: .Values.${p}`),
    );
    expect(manifests.length).toBeGreaterThan(3);
    expect(missing).toEqual([]);
  });

  it('has values files that set only keys values.yaml defines', () => {
    for (const file of filesUnder(dir, (p) => /\/values-[^/]+\.yaml$/.test(p))) {
      expect(unknownKeys(parseYaml(file), values), file).toEqual([]);
    }
  });

  it('closes every block it opens and includes only templates it defines', () => {
    const defined = new Set(
      templates.flatMap(({ text }) => [...text.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((m) => m[1]!)),
    );
    for (const { path, text } of templates) {
      const actions = text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
      const opened = actions.match(/\{\{-?\s*(if|range|with|define|block)\b/g)?.length ?? 0;
      const closed = actions.match(/\{\{-?\s*end\s*-?\}\}/g)?.length ?? 0;
      expect(closed, path).toBe(opened);
      for (const [, name] of actions.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)) {
        expect(defined.has(name!), `${path}: ${name}`).toBe(true);
      }
    }
  });

  it('sets only environment variables the app reads', () => {
    const names = manifests.flatMap(({ text }) =>
      [...text.matchAll(/^\s*- name: ([A-Z][A-Z0-9_]+)\s*$/gm)].map((m) => m[1]!),
    );
    expect(names.length).toBeGreaterThan(3);
    for (const name of names) expect(variables.has(name), name).toBe(true);
  });
});

describe('helm/wsmon-agent', () => {
  it('gives agents longer than their own shutdown limit to stop', () => {
    const values = parseYaml('helm/wsmon-agent/values.yaml') as { terminationGracePeriodSeconds: number };
    expect(values.terminationGracePeriodSeconds * 1000).toBeGreaterThan(AGENT_SHUTDOWN_LIMIT_MS);
  });
});
