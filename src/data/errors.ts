// Data-pipeline errors and the skip log: every row that is not used is counted with its reason
// (never silently dropped), and a fatal problem names the file, line and what was expected.

/** A problem with the user's data: the message names where (file, line, field) and what was expected. */
export class DataError extends Error {
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
    this.name = 'DataError';
  }
}

/** What to do with a row that cannot be used: skip it (counted, with its reason) or stop with an error. */
export type BadRowPolicy = 'skip' | 'error';

export interface SkipSample {
  where: string;
  reason: string;
}

export interface SkipSummary {
  total: number;
  /** Count per reason kind, e.g. { "invalid JSON": 3, "no assistant message": 1 }. */
  byReason: Record<string, number>;
  /** The first few skipped rows with their full reason. */
  samples: SkipSample[];
}

/** Counts skipped rows by reason kind and keeps the first `maxSamples` in full. */
export class SkipLog {
  total = 0;
  readonly byReason = new Map<string, number>();
  readonly samples: SkipSample[] = [];

  constructor(readonly maxSamples = 20) {}

  /** `kind` groups rows in the summary; `detail` is the full reason for this row. */
  add(kind: string, detail: string, where: string): void {
    this.total++;
    this.byReason.set(kind, (this.byReason.get(kind) ?? 0) + 1);
    if (this.samples.length < this.maxSamples) this.samples.push({ where, reason: detail });
  }

  summary(): SkipSummary {
    return { total: this.total, byReason: Object.fromEntries(this.byReason), samples: [...this.samples] };
  }
}

/** Applies a bad-row policy: logs and returns under 'skip', throws a DataError under 'error'. */
export function badRow(policy: BadRowPolicy, log: SkipLog, kind: string, detail: string, where: string): void {
  if (policy === 'error') throw new DataError(detail, where);
  log.add(kind, detail, where);
}

/** A short JSON-ish description of a value's type for error messages: "number", "array", "null", … */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
