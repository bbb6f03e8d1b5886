// Command-line argument parsing shared by all `qlora` commands (node:util parseArgs, strict),
// and the CliError that main.ts turns into one clear line and a non-zero exit.

import { parseArgs, type ParseArgsConfig } from 'node:util';

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<void>;
}

export function parse(cmd: Command, argv: string[]) {
  try {
    return parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message.split('\n')[0]}\nusage: ${cmd.usage}`);
  }
}

/** A numeric option: errors name the flag and what was expected. */
export function num(values: Record<string, unknown>, flag: string, fallback: number, opts: { int?: boolean; min?: number; max?: number } = {}): number {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || (opts.int && !Number.isInteger(v))) {
    throw new CliError(`--${flag} expects ${opts.int ? 'an integer' : 'a number'}, got "${String(raw)}"`);
  }
  if (opts.min !== undefined && v < opts.min) throw new CliError(`--${flag} must be at least ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new CliError(`--${flag} must be at most ${opts.max}, got ${v}`);
  return v;
}

/** A choice option: errors list the accepted values. */
export function choice<T extends string>(values: Record<string, unknown>, flag: string, allowed: readonly T[], fallback: T): T {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  if (!allowed.includes(raw as T)) throw new CliError(`--${flag} expects one of ${allowed.join(', ')}, got "${String(raw)}"`);
  return raw as T;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Formats a byte count for tables: 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Left-aligned text table with a header row. */
export function table(rows: string[][], rightAlign: number[] = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) => r.map((cell, c) => (rightAlign.includes(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n');
}
