import { execFileSync } from 'node:child_process';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The Nx boundary rule silently skips itself when no project graph is cached, so this spec
 * proves it really rejects forbidden imports (lint runs `nx show projects` first for the same reason).
 */
describe('project boundaries', () => {
  let eslint: ESLint;

  beforeAll(() => {
    execFileSync('npx', ['nx', 'show', 'projects'], {
      stdio: 'ignore',
      env: { ...process.env, NX_DAEMON: 'false' },
    });
    eslint = new ESLint();
  }, 120_000);

  async function ruleIds(filePath: string, code: string): Promise<(string | null)[]> {
    const [result] = await eslint.lintText(code, { filePath });
    return result?.messages.map((m) => m.ruleId) ?? [];
  }

  it('keeps the probe engine free of anything but contracts', async () => {
    const ids = await ruleIds(
      'libs/probe/src/probe.ts',
      "import { startTargetZoo } from '@wsmon/testing';\nexport const zoo = startTargetZoo;\n",
    );
    expect(ids).toContain('@nx/enforce-module-boundaries');
  });

  it('keeps contracts at the bottom of the graph', async () => {
    const ids = await ruleIds(
      'libs/contracts/src/index.ts',
      "import { runProbe } from '@wsmon/probe';\nexport const run = runProbe;\n",
    );
    expect(ids).toContain('@nx/enforce-module-boundaries');
  });

  it("lets the engine's specs, and only they, use the test harness", async () => {
    const ids = await ruleIds(
      'libs/probe/src/probe.spec.ts',
      "import { startTargetZoo } from '@wsmon/testing';\nexport const zoo = startTargetZoo;\n",
    );
    expect(ids).not.toContain('@nx/enforce-module-boundaries');
  });

  it('allows the engine to use contracts', async () => {
    const ids = await ruleIds(
      'libs/probe/src/probe.ts',
      "import { parseProbeConfig } from '@wsmon/contracts';\nexport const parse = parseProbeConfig;\n",
    );
    expect(ids).not.toContain('@nx/enforce-module-boundaries');
  });

  it('keeps the metrics library free of anything of ours, and lets both apps use it', async () => {
    expect(
      await ruleIds(
        'libs/metrics/src/exposition.ts',
        "import { parseProbeConfig } from '@wsmon/contracts';\nexport const parse = parseProbeConfig;\n",
      ),
    ).toContain('@nx/enforce-module-boundaries');
    for (const app of ['apps/control-plane/src/health/health.controller.ts', 'apps/agent/src/agent.ts']) {
      const ids = await ruleIds(app, "import { gauge } from '@wsmon/metrics';\nexport const g = gauge;\n");
      expect(ids).not.toContain('@nx/enforce-module-boundaries');
      expect(ids).not.toContain(null);
    }
  });

  it('keeps the strict exposition parser out of shipped code', async () => {
    const code =
      "import { parseExposition } from '@wsmon/metrics/parser';\nexport const p = parseExposition;\n";
    expect(await ruleIds('apps/control-plane/src/health/health.controller.ts', code)).toContain(
      'no-restricted-imports',
    );
    const inTests = await ruleIds('apps/control-plane/e2e/startup.e2e.spec.ts', code);
    expect(inTests).not.toContain('no-restricted-imports');
    expect(inTests).not.toContain(null);
  });
});
