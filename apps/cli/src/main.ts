import { Command } from 'commander';
import pkg from '../package.json';
import { EXIT, nodeIo, type CliIo } from './cli-io';
import { createAgentsCommand } from './agents.command';
import { createLocationsCommand } from './locations.command';
import { createProbeCommand } from './probe.command';
import { createResultsCommand } from './results.command';
import { runProgram } from './run-program';
import { createStatusCommand } from './status.command';
import { createTestsCommand } from './tests.command';

/** Once the command has finished, a late DNS answer or a stuck socket must not keep the process alive. */
const EXIT_GRACE_MS = 3000;

function createProgram(io: CliIo): Command {
  return new Command('wsmon')
    .description('Synthetic monitoring for WebSocket endpoints.')
    .version(pkg.version)
    .addCommand(createProbeCommand(io))
    .addCommand(createTestsCommand(io))
    .addCommand(createResultsCommand(io))
    .addCommand(createStatusCommand(io))
    .addCommand(createAgentsCommand(io))
    .addCommand(createLocationsCommand(io))
    .addHelpText(
      'after',
      `
Commands other than probe talk to a control plane: --server or WSMON_SERVER (default
http://127.0.0.1:8080), and an API key in WSMON_API_KEY (or --api-key).

Exit codes: 0 healthy (every run passed), 1 a probe or run failed or the control plane refused,
2 bad usage, an invalid configuration or tests file.

Examples:
  $ wsmon probe wss://echo.example.com/ --send hello --expect hello
  $ wsmon probe wss://stream.example.com/socket --ping-mode protocol --json
  $ wsmon tests apply -f tests.yaml --prune
  $ wsmon tests run --tag smoke --wait --junit wsmon.xml
  $ wsmon status`,
    );
}

// A reader that stops early (`wsmon probe --help | head`) ends the output, not the probe with an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
});

const io = nodeIo();
void runProgram(createProgram(io), process.argv.slice(2), io).then((code) => {
  process.exitCode = code;
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
});
