// Entry of the `qlora` command line: dispatches to one command module per verb.
// Errors print one clear line on stderr and exit non-zero.

import { CliError, parse, type Command } from './args.ts';
import { gpuCommand } from './commands/gpu.ts';
import { inspectCommand } from './commands/inspect.ts';
import { generateCommand } from './commands/generate.ts';
import { gradCommand } from './commands/grad.ts';
import { dataCommand } from './commands/data.ts';
import { trainCommand } from './commands/train.ts';
import { dequantizeCommand, quantizeCommand } from './commands/quantize.ts';
import { benchCommand } from './commands/bench.ts';
import { pullCommand } from './commands/pull.ts';
import { cacheCommand } from './commands/cache.ts';
import { exportCommand } from './commands/export.ts';
import { linkCommand } from './commands/link.ts';

const commands: Command[] = [gpuCommand, inspectCommand, quantizeCommand, dequantizeCommand, dataCommand, trainCommand, generateCommand, gradCommand, benchCommand, pullCommand, cacheCommand];
commands.push(exportCommand, linkCommand);

function help(): string {
  const lines = ['usage: qlora <command> [options]', '', 'commands:'];
  for (const c of commands) lines.push(`  ${c.name.padEnd(12)} ${c.summary}`);
  lines.push('', 'Run `qlora <command> --help` for the options of one command.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 1;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) throw new CliError(`unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')}`);
  const { values, positionals } = parse(cmd, rest);
  if (values.help) {
    process.stdout.write(`usage: ${cmd.usage}\n`);
    return 0;
  }
  await cmd.run(values as Record<string, string | boolean | undefined>, positionals);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`qlora: ${msg}\n`);
    if (process.env.QLORA_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(err instanceof CliError ? 2 : 1);
  },
);
