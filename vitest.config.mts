import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const lib = (name: string) => fileURLToPath(new URL(`./libs/${name}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@wsmon/contracts': lib('contracts'),
      '@wsmon/probe': lib('probe'),
      // Before '@wsmon/proto', which would otherwise match as a prefix.
      '@wsmon/proto/agent': fileURLToPath(new URL('./libs/proto/src/agent.ts', import.meta.url)),
      '@wsmon/proto': lib('proto'),
      '@wsmon/testing': lib('testing'),
      '@wsmon/runtime': lib('runtime'),
      // Before '@wsmon/metrics', which would otherwise match as a prefix.
      '@wsmon/metrics/parser': fileURLToPath(
        new URL('./libs/metrics/src/exposition-parser.ts', import.meta.url),
      ),
      '@wsmon/metrics': lib('metrics'),
    },
  },
  test: {
    include: [
      'apps/*/src/**/*.spec.ts',
      'apps/*/e2e/**/*.spec.ts',
      'libs/*/src/**/*.spec.ts',
      'libs/*/e2e/**/*.spec.ts',
      'tools/**/*.spec.ts',
    ],
    environment: 'node',
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', './tools/summary-reporter.ts'],
  },
});
