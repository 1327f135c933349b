/**
 * Child process of the spool's kill -9 test: opens the spool in the given directory and appends records
 * (a few at a time, of mixed sizes) until it is killed. Prints `READY <pid>` once open, `ACK <sequence>` once
 * an append has resolved, and `ACKED <sequence>` once an acknowledgement up to that sequence has resolved.
 */
import { ResultSpool } from '../../src/spool/result-spool';
import { spooledRecord } from './spooled-record';

interface AppenderInput {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly syncIntervalMs: number;
  /** Acknowledge up to `lag` records behind the last appended one, every `every` appends (0: never). */
  readonly acknowledge: { readonly every: number; readonly lag: number };
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as AppenderInput;
  const spool = await ResultSpool.open(input.dir, input);
  process.stdout.write(`READY ${process.pid}\n`);
  for (let round = 0; ; round++) {
    const burst = Array.from({ length: 1 + (round % 8) }, (_, i) => spooledRecord(round * 8 + i));
    const sequences = await Promise.all(
      burst.map(async (record) => {
        const sequence = await spool.append(record);
        process.stdout.write(`ACK ${sequence}\n`);
        return sequence;
      }),
    );
    const last = sequences.at(-1)!;
    if (
      input.acknowledge.every > 0 &&
      round % input.acknowledge.every === 0 &&
      last > input.acknowledge.lag
    ) {
      await spool.acknowledge(last - input.acknowledge.lag);
      process.stdout.write(`ACKED ${last - input.acknowledge.lag}\n`);
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
