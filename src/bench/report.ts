// Rendering benchmark results: a readable fixed-width text table, and JSON with the run's context.

import type { BenchResult } from './harness.ts';

export interface BenchContext {
  /** Adapter description, e.g. "SwiftShader Device (Subzero) (node/dawn (SwiftShader))". */
  adapter?: string;
  /** ISO time of the run. */
  date?: string;
  /** Anything else worth keeping with the numbers. */
  [key: string]: unknown;
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || Number.isNaN(v)) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 10 ** -digits) return v.toExponential(2);
  return v.toFixed(digits);
}

function extraText(r: BenchResult): string {
  const extra: Record<string, number | string> = { ...(r.cpuMs !== undefined ? { cpuMs: r.cpuMs } : {}), ...r.extra };
  return Object.entries(extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v, Math.abs(v) < 0.01 ? 6 : 3) : v}`)
    .join(' ');
}

/** The results as an aligned text table (one line per result, then the notes). */
export function renderTable(results: BenchResult[], context: BenchContext = {}): string {
  const header = ['benchmark', 'shape', 'ms', 'GFLOP/s', 'GB/s', 'ratio', 'goal', 'met', 'timing', 'details'];
  const rows = results.map((r) => [
    r.name,
    r.shape,
    r.ms ? fmt(r.ms, 3) : '',
    fmt(r.gflops, 2),
    fmt(r.gbps, 2),
    r.ratio !== undefined ? `${fmt(r.ratio, 2)}x` : '',
    r.goal ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
    r.timing ? `${r.timing}${r.minMs !== undefined ? ` [${fmt(r.minMs, 2)}..${fmt(r.maxMs, 2)}]` : ''}` : '',
    extraText(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  if (context.adapter) out.push(`adapter: ${context.adapter}`);
  if (context.date) out.push(`date: ${context.date}`);
  out.push(line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line));
  const ratioNotes = [...new Set(results.filter((r) => r.ratioOf).map((r) => `${r.name}: ratio = ${r.ratioOf}`))];
  if (ratioNotes.length) out.push('', ...ratioNotes);
  const notes = results.filter((r) => r.note).map((r) => `${r.name}: ${r.note}`);
  if (notes.length) out.push(...notes);
  return out.join('\n');
}

/** The results as pretty JSON, with the context. */
export function renderJson(results: BenchResult[], context: BenchContext = {}): string {
  return JSON.stringify({ context, results }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}
