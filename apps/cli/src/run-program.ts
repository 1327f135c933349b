import { CommanderError, type Command } from 'commander';
import { ApiError } from './api-client';
import { CommandError, EXIT, UsageError, type CliIo } from './cli-io';

function configure(command: Command, io: CliIo): void {
  command.exitOverride();
  command.configureOutput({
    writeOut: (text) => io.stdout.write(text),
    writeErr: (text) => io.stderr.write(text),
    outputError: (text, write) => write(text.replace(/^error: /, 'wsmon: ')),
  });
  command.showHelpAfterError(`(run "${commandPath(command)} --help" for usage)`);
  for (const sub of command.commands) configure(sub, io);
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Parses `argv` (the arguments after the program name) and runs the command it names, returning the
 * exit code: commander's own usage errors and {@link UsageError}s become 2, help and version 0,
 * {@link CommandError}s and the control plane's refusals ({@link ApiError}) 1.
 */
export async function runProgram(program: Command, argv: readonly string[], io: CliIo): Promise<number> {
  configure(program, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return io.exitCode;
  } catch (error) {
    // Commander has already printed its message; help and --version end with exit code 0.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof UsageError) {
      io.stderr.write(`wsmon: ${error.message}\n`);
      for (const line of error.details) io.stderr.write(`  ${line}\n`);
      return EXIT.usage;
    }
    if (error instanceof CommandError) {
      io.stderr.write(`wsmon: ${error.message}\n`);
      for (const line of error.details) io.stderr.write(`  ${line}\n`);
      return EXIT.failed;
    }
    if (error instanceof ApiError) {
      const [head, ...fields] = error.lines();
      io.stderr.write(`wsmon: ${head}\n`);
      for (const line of fields) io.stderr.write(`  ${line}\n`);
      return EXIT.failed;
    }
    io.stderr.write(`wsmon: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  }
}
