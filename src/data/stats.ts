// Token statistics shown before training: counts, length summary and a length histogram, plus
// plain-text renderings for the CLI.

import type { SkipSummary } from './errors.ts';

export interface Histogram {
  /** Bin i counts lengths in [edges[i], edges[i+1]); the last edge may be Infinity (over max length). */
  edges: number[];
  counts: number[];
}

export interface LengthSummary {
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
}

export interface SplitStats {
  examples: number;
  /** Training rows after truncation/packing. */
  sequences: number;
  tokens: number;
  trainedTokens: number;
  /** Fraction of sequence slots (sequences × max length) holding real tokens. */
  fill: number;
}

export interface DataStats {
  source: string;
  format: string;
  formatDetected: boolean;
  template: string;
  rows: number;
  examples: number;
  skipped: SkipSummary;
  /** Tokens and trained tokens of all examples before truncation. */
  tokens: number;
  trainedTokens: number;
  maxLength: number;
  truncated: number;
  split: number;
  /** Examples dropped by the length rules, by reason. */
  dropped: Record<string, number>;
  lengths: LengthSummary;
  histogram: Histogram;
  train: SplitStats;
  eval: SplitStats;
}

export function summarizeLengths(lengths: readonly number[]): LengthSummary {
  if (lengths.length === 0) return { min: 0, max: 0, mean: 0, p50: 0, p95: 0 };
  const s = [...lengths].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
  return { min: s[0]!, max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p95: q(0.95) };
}

/** `bins` equal bins over [0, maxLength), plus one "over max length" bin when any example is longer. */
export function lengthHistogram(lengths: readonly number[], maxLength: number, bins = 8): Histogram {
  const width = Math.max(1, Math.ceil(maxLength / bins));
  const edges = Array.from({ length: bins + 1 }, (_, i) => Math.min(i * width, maxLength + 1));
  edges[bins] = maxLength + 1;
  const counts = new Array<number>(bins).fill(0);
  let over = 0;
  for (const n of lengths) {
    if (n > maxLength) over++;
    else counts[Math.min(bins - 1, Math.floor(n / width))]!++;
  }
  if (over) {
    edges.push(Infinity);
    counts.push(over);
  }
  return { edges, counts };
}

/** Text bars, one line per bin: "   129–256   ██████████  412". */
export function formatHistogram(h: Histogram, width = 40): string {
  const max = Math.max(1, ...h.counts);
  const labels = h.counts.map((_, i) => (h.edges[i + 1] === Infinity ? `> ${h.edges[i]! - 1}` : `${h.edges[i]}–${h.edges[i + 1]! - 1}`));
  const lw = Math.max(...labels.map((l) => l.length));
  const cw = Math.max(...h.counts.map((c) => String(c).length));
  return h.counts
    .map((c, i) => `${labels[i]!.padStart(lw)}  ${'█'.repeat(Math.round((c / max) * width)).padEnd(width)}  ${String(c).padStart(cw)}`)
    .join('\n');
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The statistics as aligned text lines. */
export function formatStats(s: DataStats): string {
  const lines = [
    `source         ${s.source}`,
    `format         ${s.format}${s.formatDetected ? ' (detected)' : ''}`,
    `template       ${s.template}`,
    `rows           ${s.rows}`,
    `examples       ${s.examples}`,
    `skipped rows   ${s.skipped.total}`,
  ];
  for (const [k, v] of Object.entries(s.skipped.byReason)) lines.push(`  ${k.padEnd(28)} ${v}`);
  lines.push(
    `tokens         ${s.tokens} (trained ${s.trainedTokens}, ${pct(s.tokens ? s.trainedTokens / s.tokens : 0)})`,
    `lengths        min ${s.lengths.min}, median ${s.lengths.p50}, mean ${s.lengths.mean.toFixed(1)}, p95 ${s.lengths.p95}, max ${s.lengths.max}`,
    `max length     ${s.maxLength}: ${s.truncated} truncated, ${s.split} split, ${Object.values(s.dropped).reduce((a, b) => a + b, 0)} dropped`,
  );
  for (const [k, v] of Object.entries(s.dropped)) lines.push(`  ${k.padEnd(28)} ${v}`);
  for (const [name, sp] of [['train', s.train], ['eval', s.eval]] as const) {
    lines.push(`${name.padEnd(14)} ${sp.examples} examples → ${sp.sequences} sequences, ${sp.tokens} tokens (${sp.trainedTokens} trained), fill ${pct(sp.fill)}`);
  }
  return lines.join('\n');
}
