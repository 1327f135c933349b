import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The images' production installs, made outside the repository as their `deps` stages make them: the lockfile
 * and every workspace's package.json, then the `npm ci --omit=dev --workspace …` command read from the
 * Dockerfile, from the npm cache (`--prefer-offline`: CI's own `npm ci` filled it), then the built files the
 * runtime stage copies from the build (`COPY --from=build /src/…`). Used by the images' specs beside it.
 */

export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const execFileAsync = promisify(execFile);
export type App = 'agent' | 'control-plane';

const dockerfile = (app: App) =>
  readFileSync(join(ROOT, `docker/Dockerfile.${app}`), 'utf8').replace(/\\\n/g, ' ');

/** The deps stage's install command, as arguments of npm. */
function installArguments(app: App): string[] {
  const command = /\bnpm (ci --omit=dev [^\n&]*)/.exec(dockerfile(app))?.[1];
  if (!command) throw new Error(`no production npm ci in docker/Dockerfile.${app}`);
  return command.trim().split(/\s+/);
}

/** npm's own variables of an enclosing `npm test` (a workspace, an omit) must not reach the install. */
function npmEnvironment(): NodeJS.ProcessEnv {
  const kept = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_') || kept.has(name)),
  );
}

/** What the image holds under /app, made in `dir`. */
export async function productionInstall(app: App, dir: string): Promise<void> {
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(ROOT, file), join(dir, file));
  for (const group of ['apps', 'libs']) {
    for (const name of readdirSync(join(ROOT, group))) {
      const manifest = join(group, name, 'package.json');
      if (existsSync(join(ROOT, manifest))) cpSync(join(ROOT, manifest), join(dir, manifest));
    }
  }
  await execFileAsync('npm', [...installArguments(app), '--prefer-offline'], {
    cwd: dir,
    env: npmEnvironment(),
    timeout: 170_000,
  });
  for (const [, source, destination] of dockerfile(app).matchAll(/COPY --from=build \/src\/(\S+)\s+(\S+)/g)) {
    cpSync(join(ROOT, source!), join(dir, destination!), { recursive: true });
  }
}

export function bytesUnder(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((sum, entry) => sum + lstatSync(join(entry.parentPath, entry.name)).size, 0);
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Running {
  readonly child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Its exit code, once it exits by itself. */
  exited(): Promise<number | null>;
  /** SIGTERM (SIGKILL 45 s later), then its exit code. */
  stop(): Promise<number | null>;
}

/** A process with nothing of this environment but PATH and what is given. */
export function start(entry: string, env: Record<string, string>): Running {
  const child = spawn(process.execPath, [entry], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(output);
          if (match) done(() => resolve(match));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms in:\n${output}`))),
          timeoutMs,
        );
        const onExit = () =>
          done(() => reject(new Error(`exited (${child.exitCode}) before ${pattern}:\n${output}`)));
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
          settle();
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
      });
    },
    exited: () => exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      // Both apps end their own shutdown within 30 s; past that, do not leave the process behind.
      const kill = setTimeout(() => child.kill('SIGKILL'), 45_000);
      const code = await exited;
      clearTimeout(kill);
      return code;
    },
  };
}

/** Whether any directory above `dir` holds a node_modules, which module resolution from `dir` would reach. */
export function nodeModulesAbove(dir: string): string | undefined {
  for (let parent = dirname(dir); ; parent = dirname(parent)) {
    if (existsSync(join(parent, 'node_modules'))) return join(parent, 'node_modules');
    if (parent === dirname(parent)) return undefined;
  }
}
