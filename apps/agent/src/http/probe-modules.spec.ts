import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MODULE,
  effectiveTimeoutMs,
  loadProbeModules,
  parseProbeModules,
  ProbeModulesError,
  resolveProbeRequest,
  type ProbeRequest,
} from './probe-modules';

function modulesDocument(modules: Record<string, unknown>) {
  return { modules };
}

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ProbeModulesError) return error.problems;
    throw error;
  }
  throw new Error('expected a ProbeModulesError');
}

const request = (overrides: Partial<ProbeRequest> = {}): ProbeRequest => ({
  module: null,
  target: 'ws://127.0.0.1:9/echo',
  scrapeTimeout: undefined,
  ...overrides,
});

describe(parseProbeModules.name, () => {
  it('keeps every valid module, with or without a url, and adds the default handshake module', () => {
    const modules = parseProbeModules(
      modulesDocument({
        ws_echo: { ping_mode: 'message', send_message: 'ping', expect_message: 'ping' },
        internal: { url: 'wss://internal.test/ws', tls: { skip_verify: true } },
      }),
      'modules.json',
    );
    expect([...modules.keys()].sort()).toEqual(['internal', DEFAULT_MODULE, 'ws_echo'].sort());
    expect(modules.get(DEFAULT_MODULE)?.input).toEqual({});
  });

  it('lets the file define its own default module', () => {
    const modules = parseProbeModules(modulesDocument({ [DEFAULT_MODULE]: { timeout_ms: 2000 } }), 'f');
    expect(modules.get(DEFAULT_MODULE)?.input).toEqual({ timeout_ms: 2000 });
  });

  it('lists every problem with the module and the field, and never echoes a secret', () => {
    const problems = problemsOf(() =>
      parseProbeModules(
        {
          modules: {
            slow: { timeout_ms: 99_999 },
            leaky: { headers: { 'Bad Header': 'Bearer s3cret-token' } },
            'bad name!': {},
            list: [],
          },
          extra: true,
        },
        'modules.json',
      ),
    );
    expect(problems).toEqual([
      'extra: is not a known field',
      'modules.slow.timeout_ms: must be at most 30000',
      expect.stringMatching(/^modules\.leaky\.headers\["Bad Header"\]: /),
      expect.stringContaining('"bad name!" is not a module name'),
      'modules.list: must be an object holding a probe configuration',
    ]);
    expect(problems.join('\n')).not.toContain('s3cret');
  });

  it('refuses a document without a modules object', () => {
    expect(problemsOf(() => parseProbeModules([], 'f'))).toHaveLength(1);
    expect(problemsOf(() => parseProbeModules({ modules: 'x' }, 'f'))).toHaveLength(1);
  });
});

describe(loadProbeModules.name, () => {
  it('reads JSON through the given reader', () => {
    const modules = loadProbeModules('/etc/wsmon/modules.json', () => '{"modules":{"a":{"timeout_ms":500}}}');
    expect(modules.get('a')?.input).toEqual({ timeout_ms: 500 });
  });

  it('says why a file cannot be used', () => {
    const missing = () => {
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    };
    expect(problemsOf(() => loadProbeModules('/x.json', missing))).toEqual(['cannot read the file (ENOENT)']);
    expect(problemsOf(() => loadProbeModules('/x.json', () => 'modules: {}'))[0]).toMatch(
      /^is not valid JSON/,
    );
  });
});

describe(effectiveTimeoutMs.name, () => {
  it("keeps the module's timeout when Prometheus announces none or a longer one", () => {
    expect(effectiveTimeoutMs(10_000, undefined, 0.5)).toBe(10_000);
    expect(effectiveTimeoutMs(10_000, 30, 0.5)).toBe(10_000);
  });

  it('shortens it to the scrape timeout minus the offset', () => {
    expect(effectiveTimeoutMs(10_000, 5, 0.5)).toBe(4500);
    expect(effectiveTimeoutMs(10_000, 1.5, 0.5)).toBe(1000);
  });

  it("never goes under the schema's minimum", () => {
    expect(effectiveTimeoutMs(10_000, 0.4, 0.5)).toBe(100);
  });
});

describe(resolveProbeRequest.name, () => {
  const modules = parseProbeModules(
    modulesDocument({
      ws_echo: { ping_mode: 'message', send_message: 'ping', timeout_ms: 3000 },
      pinned: { url: 'ws://127.0.0.1:9/pinned' },
      tls_only: { tls: { skip_verify: true } },
    }),
    'f',
  );

  it('uses the default handshake module and the target', () => {
    const resolved = resolveProbeRequest(modules, request());
    expect(resolved).toMatchObject({
      ok: true,
      module: { name: DEFAULT_MODULE },
      config: { url: 'ws://127.0.0.1:9/echo', timeout_ms: 10_000, ping_mode: 'none' },
    });
  });

  it("lets the target override the module's url, and uses the module's url without one", () => {
    expect(resolveProbeRequest(modules, request({ module: 'pinned' }))).toMatchObject({
      config: { url: 'ws://127.0.0.1:9/echo' },
    });
    expect(resolveProbeRequest(modules, request({ module: 'pinned', target: null }))).toMatchObject({
      config: { url: 'ws://127.0.0.1:9/pinned' },
    });
  });

  it('reads a scrape timeout of 0 as none announced, as blackbox does', () => {
    const resolved = resolveProbeRequest(modules, request({ module: 'ws_echo', scrapeTimeout: '0' }));
    expect(resolved).toMatchObject({ ok: true, config: { timeout_ms: 3000 } });
  });

  it('shortens the timeout to the scrape timeout', () => {
    const resolved = resolveProbeRequest(modules, request({ module: 'ws_echo', scrapeTimeout: '2' }));
    expect(resolved).toMatchObject({ ok: true, moduleTimeoutMs: 3000, config: { timeout_ms: 1500 } });
  });

  it.each([
    [{ module: 'nope' }, 'Unknown module "nope"'],
    [{ target: null }, 'Target parameter is missing'],
    [{ target: 'http://127.0.0.1:9/' }, 'target: must start with ws:// or wss://'],
    [{ target: 'not a url' }, 'target: must be an absolute URL'],
    [{ target: 'ws://127.0.0.1:9/#frag' }, 'target: must not contain a #fragment'],
    [{ module: 'tls_only' }, 'tls: only applies to wss:// URLs'],
    [{ scrapeTimeout: 'soon' }, 'Failed to parse timeout from Prometheus header'],
    [{ scrapeTimeout: '-1' }, 'Failed to parse timeout from Prometheus header'],
  ])('refuses %j: %s', (overrides, reason) => {
    const resolved = resolveProbeRequest(modules, request(overrides));
    expect(resolved.ok).toBe(false);
    expect(resolved.ok ? '' : resolved.reason).toContain(reason);
  });

  it('never echoes credentials of the target', () => {
    const resolved = resolveProbeRequest(modules, request({ target: 'http://user:hunter22@127.0.0.1:9/' }));
    expect(resolved.ok ? '' : resolved.reason).not.toContain('hunter22');
  });
});
