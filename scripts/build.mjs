// Bundles each app's entry point with its workspace libraries inlined; npm dependencies stay external
// so the built output runs with production dependencies only.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const apps = [{ project: 'apps/cli', entry: 'src/main.ts', outfile: 'dist/main.js' }];

const started = performance.now();
for (const app of apps) {
  const pkg = JSON.parse(readFileSync(join(root, app.project, 'package.json'), 'utf8'));
  const external = Object.keys(pkg.dependencies ?? {}).filter((name) => !name.startsWith('@wsmon/'));
  await build({
    absWorkingDir: root,
    entryPoints: [join(app.project, app.entry)],
    outfile: join(app.project, app.outfile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    external,
    tsconfig: 'tsconfig.base.json',
    logLevel: 'warning',
  });
}
console.log(
  `built ${apps.map((a) => a.project).join(', ')} in ${Math.round(performance.now() - started)} ms`,
);
