import { Command } from 'commander';
import pkg from '../package.json';
import { EXIT, nodeIo, type CliIo } from './cli-io';
import { createProbeCommand } from './probe.command';
import { runProgram } from './run-program';

/** Once the command has finished, a late DNS answer or a stuck socket must not keep the process alive. */
const EXIT_GRACE_MS = 3000;

function createProgram(io: CliIo): Command {
  return new Command('wsmon')
    .description('Synthetic monitoring for WebSocket endpoints.')
    .version(pkg.version)
    .addCommand(createProbeCommand(io))
    .addHelpText(
      'after',
      `
Exit codes: 0 healthy, 1 the probe failed, 2 bad usage or an invalid configuration.

Examples:
  $ wsmon probe wss://echo.example.com/ --send hello --expect hello
  $ wsmon probe wss://stream.example.com/socket --ping-mode protocol --json
  $ wsmon probe --help`,
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
