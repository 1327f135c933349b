/**
 * Child process of the no-leftover-handles test: runs probes from argv, then reports what is
 * still alive. It never calls process.exit: a leaked socket, timer or listener keeps it running,
 * which the test sees as a process that does not end.
 */
import { assertProbeConfig } from '@wsmon/contracts';
import { dnsServerLookup } from '../src/lookup';
import { createProbe } from '../src/probe';

interface RunnerInput {
  readonly configs: readonly unknown[];
  readonly total: number;
  readonly concurrency: number;
  readonly dnsServer: string;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as RunnerInput;
  const runtime = { lookup: dnsServerLookup([input.dnsServer]) };
  const probes = input.configs.map((config) => createProbe(assertProbeConfig(config), runtime));
  const outcomes: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < input.total) {
      const probe = probes[next++ % probes.length]!;
      const result = await probe.run();
      const key = result.failure ? `${result.failure.reason}/${result.failure.cause}` : 'success';
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: input.concurrency }, worker));
  // One turn of the loop for close callbacks, then a census of what keeps the process alive.
  await new Promise((resolve) => setImmediate(resolve));
  const resources = process.getActiveResourcesInfo();
  process.stdout.write(JSON.stringify({ outcomes, resources }));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = 1;
});
