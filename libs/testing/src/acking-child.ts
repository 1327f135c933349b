import { type ChildProcess, spawn } from 'node:child_process';

/** A child process that reports progress as `WORD <number>` lines on stdout (`READY <pid>`, `ACK <n>`). */
export interface AckingChild {
  readonly child: ChildProcess;
  /** The values of its `ACK <n>` lines, in order: what it acknowledged as durable. */
  readonly acks: number[];
  /** The last value of any other `WORD <n>` line, such as `ACKED`. */
  last(word: string): number | undefined;
  /** Resolves with the value of its `READY <pid>` line. */
  readonly ready: Promise<number>;
  /** Resolves once `count` ACK lines arrived; rejects if the child exits first. */
  waitForAcks(count: number): Promise<void>;
  /** Resolves once the child has exited and its output is read to the end. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/**
 * Runs `node --import tsx <script> <input as JSON>` for crash tests: the test kills it (SIGKILL) after
 * some ACKs and checks that everything acknowledged survived. `live` tracks children still running
 * so an afterAll can kill them.
 */
export function spawnAckingChild(script: string, input: unknown, live?: Set<ChildProcess>): AckingChild {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live?.add(child);
  const acks: number[] = [];
  const lastValues = new Map<string, number>();
  const waiters: { count: number; done: () => void }[] = [];
  let stderr = '';
  let pending = '';
  let markReady: (pid: number) => void = () => undefined;
  const ready = new Promise<number>((done) => (markReady = done));
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const [word, value] = line.split(' ');
      if (word === undefined || value === undefined) continue;
      if (word === 'READY') markReady(Number(value));
      if (word === 'ACK') acks.push(Number(value));
      else lastValues.set(word, Math.max(lastValues.get(word) ?? -Infinity, Number(value)));
    }
    for (const waiter of waiters.filter((w) => acks.length >= w.count)) waiter.done();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) =>
    child.once('close', (code, signal) => {
      live?.delete(child);
      done({ code, signal, stderr });
    }),
  );
  const waitForAcks = (count: number) =>
    new Promise<void>((done, fail) => {
      if (acks.length >= count) return done();
      waiters.push({ count, done });
      void closed.then(({ code, stderr: text }) => fail(new Error(`${script} exited (${code}): ${text}`)));
    });
  return { child, acks, last: (word) => lastValues.get(word), ready, waitForAcks, closed };
}
