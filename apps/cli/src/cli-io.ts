import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Where a command writes: a process stream, or a buffer in tests. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/**
 * Everything a command touches outside itself, so commands run the same in the process and in
 * specs. Commands report their outcome through {@link CliIo.exitCode}.
 */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a UTF-8 file relative to the working directory. */
  readFile(path: string): Promise<string>;
  /** Reads standard input to its end. */
  readStdin(): Promise<string>;
  /** Writes (replaces) a UTF-8 file relative to the working directory, making its directory if need be. */
  writeFile(path: string, text: string): Promise<void>;
  /** HTTP to the control plane; the global `fetch` when absent. */
  readonly fetch?: typeof fetch;
  exitCode: number;
}

/** Exit codes of every wsmon command. */
export const EXIT = {
  /** The probe was healthy; every test run passed; the command did what it was asked. */
  ok: 0,
  /** The probe ran and failed, a test run failed or had no agent, or the control plane refused (or wsmon itself failed). */
  failed: 1,
  /** The command line, the configuration or the tests file was rejected; nothing was probed or sent. */
  usage: 2,
} as const;

/** A command line that cannot run: printed to stderr, with its details indented below; exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly details: readonly string[] = [],
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A command that ran and could not do what it was asked: printed like a usage error; exit code 1. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly details: readonly string[] = [],
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/** The real process: its streams, environment and files. */
export function nodeIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    readFile: (path) => readFile(path, 'utf8'),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    writeFile: async (path, text) => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, text, 'utf8');
    },
    exitCode: EXIT.ok,
  };
}

/** ANSI colour only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(io: Pick<CliIo, 'stdout' | 'env'>): boolean {
  return io.stdout.isTTY === true && io.env.NO_COLOR === undefined;
}
