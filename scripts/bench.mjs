// Runs a benchmark as production runs code: bundled by esbuild and executed by plain node, not
// through a TypeScript loader (whose per-module hooks would be charged to the code under test).
// Usage: node scripts/bench.mjs <bench entry .ts> [args passed to the benchmark]
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/bench.mjs <bench entry .ts> [args]');
  process.exit(2);
}
const benchDir = dirname(join(root, entry));
// Child processes the benchmark forks (echo servers) are bundled beside it.
const children = readdirSync(benchDir).filter((f) => f.endsWith('-child.ts'));
const outdir = join(root, 'node_modules', '.cache', 'wsmon-bench', basename(entry, '.ts'));
await build({
  absWorkingDir: root,
  entryPoints: [join(root, entry), ...children.map((f) => join(benchDir, f))],
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Nest's optional peers (never loaded here) stay out, as they are not installed.
  external: ['ws', 'class-validator', 'class-transformer', '@nestjs/websockets', '@nestjs/microservices'],
  // Bundled CommonJS packages (TypeORM, pg) use what an ES module lacks: require, __filename, __dirname.
  banner: {
    js: [
      "import { createRequire as __benchRequire } from 'node:module';",
      "import { fileURLToPath as __benchPath } from 'node:url';",
      'const require = __benchRequire(import.meta.url);',
      'const __filename = __benchPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
  tsconfig: 'tsconfig.base.json',
  logLevel: 'warning',
});
// --expose-gc: a benchmark collects its own garbage between timed phases, so that none pays for another's.
const run = spawnSync(
  process.execPath,
  ['--expose-gc', join(outdir, `${basename(entry, '.ts')}.mjs`), ...args],
  {
    stdio: 'inherit',
    cwd: root,
  },
);
process.exit(run.status ?? 1);
