// Fails when the TypeScript committed in libs/proto/src/generated/ is not exactly what proto/
// generates: regenerates with the same template (proto/buf.gen.yaml) into a temporary directory and
// compares file by file. `npm run proto:generate` regenerates in place.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const GENERATED = 'libs/proto/src/generated';
const buf = createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');

/** Relative paths (with /) of every file under `dir`, sorted; none when `dir` does not exist. */
function listFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort();
}

/** Where two texts first differ, with a little context, and how many lines each has. */
function describeChange(committed, regenerated) {
  const a = committed.split('\n');
  const b = regenerated.split('\n');
  let line = 0;
  while (line < a.length && line < b.length && a[line] === b[line]) line += 1;
  const show = (lines, mark) =>
    lines
      .slice(line, line + 3)
      .map((text) => `      ${mark} ${text}`)
      .join('\n');
  return [
    `    first difference at line ${line + 1} (committed ${a.length} lines, regenerated ${b.length}):`,
    show(a, '-'),
    show(b, '+'),
  ].join('\n');
}

/** Regenerates into `out` and compares; returns the exit code. */
function check(out) {
  const started = performance.now();
  const generate = spawnSync(
    process.execPath,
    [buf, 'generate', '--template', 'proto/buf.gen.yaml', '--output', out],
    { cwd: root, encoding: 'utf8' },
  );
  if (generate.status !== 0) {
    process.stderr.write(generate.stdout + generate.stderr);
    console.error(`proto:check: buf generate failed (exit ${generate.status ?? generate.signal})`);
    return 1;
  }

  const committedDir = join(root, GENERATED);
  const regeneratedDir = join(out, GENERATED);
  const committed = listFiles(committedDir);
  const regenerated = listFiles(regeneratedDir);
  const problems = [];
  for (const file of regenerated.filter((f) => !committed.includes(f))) {
    problems.push(`  missing: ${GENERATED}/${file} (generated, not committed)`);
  }
  for (const file of committed.filter((f) => !regenerated.includes(f))) {
    problems.push(`  extra:   ${GENERATED}/${file} (committed, no longer generated)`);
  }
  for (const file of committed.filter((f) => regenerated.includes(f))) {
    const a = readFileSync(join(committedDir, file), 'utf8');
    const b = readFileSync(join(regeneratedDir, file), 'utf8');
    if (a !== b) problems.push(`  changed: ${GENERATED}/${file}\n${describeChange(a, b)}`);
  }

  if (problems.length > 0) {
    console.error(
      [
        `proto:check: ${GENERATED} differs from what proto/ generates (${problems.length} file(s)):`,
        ...problems,
        'Generated code is never edited by hand: run `npm run proto:generate` and commit the result.',
      ].join('\n'),
    );
    return 1;
  }
  const ms = Math.round(performance.now() - started);
  console.log(`proto:check: ${committed.length} generated files match proto/ (${ms} ms)`);
  return 0;
}

const out = mkdtempSync(join(tmpdir(), 'wsmon-proto-'));
try {
  process.exitCode = check(out);
} finally {
  rmSync(out, { recursive: true, force: true });
}
