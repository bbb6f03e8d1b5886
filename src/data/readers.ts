// Dataset file readers: JSON Lines, JSON arrays, CSV/TSV (header row) and plain text, all streaming
// from byte chunks. Each yields rows (plain objects) with their location; a bad row is skipped and
// counted with its reason, or is an error naming the line, as the caller chooses.

import { badRow, DataError, SkipLog, typeName, type BadRowPolicy } from './errors.ts';
import { CsvParser, type CsvRecord } from './csv.ts';
import { splitJsonArray } from './json-array.ts';
import { decodeUtf8, peekFirstChar, splitLines, type ByteChunks } from './stream.ts';

/** One row of a dataset: a plain object plus where it came from ("data.jsonl line 12"). */
export interface SourceRow {
  value: Record<string, unknown>;
  where: string;
  /** 0-based index among the rows the reader yielded. */
  index: number;
}

export type FileKind = 'jsonl' | 'json' | 'csv' | 'tsv' | 'text';
export const FILE_KINDS: readonly FileKind[] = ['jsonl', 'json', 'csv', 'tsv', 'text'];

/** How plain text becomes rows: one per line, per blank-line-separated paragraph, or the whole file. */
export type TextUnit = 'line' | 'paragraph' | 'document';

export interface ReaderOptions {
  /** Name used in messages (usually the file name). */
  name?: string;
  /** Skip bad rows (counted in `skips`) or throw. Default 'skip'. */
  onBadRow?: BadRowPolicy;
  skips?: SkipLog;
  /** Plain text only. Default 'paragraph'. */
  textUnit?: TextUnit;
}

interface Resolved {
  name: string;
  policy: BadRowPolicy;
  skips: SkipLog;
}

function resolve(opts: ReaderOptions): Resolved {
  return { name: opts.name ?? 'data', policy: opts.onBadRow ?? 'skip', skips: opts.skips ?? new SkipLog() };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The file kind for a file name's extension, or null when the extension says nothing. */
export function fileKindFromName(name: string): FileKind | null {
  const m = /\.([a-z0-9]+)$/i.exec(name);
  switch (m?.[1]?.toLowerCase()) {
    case 'jsonl':
    case 'ndjson':
      return 'jsonl';
    case 'json':
      return 'json';
    case 'csv':
      return 'csv';
    case 'tsv':
    case 'tab':
      return 'tsv';
    case 'txt':
    case 'text':
    case 'md':
      return 'text';
    default:
      return null;
  }
}

function firstLine(msg: string): string {
  return msg.split('\n')[0]!;
}

async function* jsonlFromText(strings: AsyncIterable<string>, r: Resolved): AsyncGenerator<SourceRow> {
  let index = 0;
  for await (const { text, line } of splitLines(strings)) {
    if (text.trim() === '') continue;
    const where = `${r.name} line ${line}`;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      badRow(r.policy, r.skips, 'invalid JSON', `invalid JSON (expected one JSON object per line): ${firstLine((e as Error).message)}`, where);
      continue;
    }
    if (!isPlainObject(v)) {
      badRow(r.policy, r.skips, 'not an object', `expected a JSON object per line, got ${typeName(v)}`, where);
      continue;
    }
    yield { value: v, where, index: index++ };
  }
}

async function* jsonArrayFromText(strings: AsyncIterable<string>, r: Resolved): AsyncGenerator<SourceRow> {
  let index = 0;
  for await (const el of splitJsonArray(strings, r.name)) {
    const where = `${r.name} line ${el.line}`;
    let v: unknown;
    try {
      v = JSON.parse(el.text);
    } catch (e) {
      badRow(r.policy, r.skips, 'invalid JSON', `invalid JSON array element: ${firstLine((e as Error).message)}`, where);
      continue;
    }
    if (!isPlainObject(v)) {
      badRow(r.policy, r.skips, 'not an object', `expected each array element to be a JSON object, got ${typeName(v)}`, where);
      continue;
    }
    yield { value: v, where, index: index++ };
  }
}

/** JSON Lines: one object per line; blank lines are ignored. */
export async function* readJsonl(chunks: ByteChunks, opts: ReaderOptions = {}): AsyncGenerator<SourceRow> {
  const r = resolve(opts);
  yield* jsonlFromText(decodeUtf8(chunks, r.name), r);
}

/** A `.json` file: a top-level array of objects (streamed element by element), or JSON Lines. */
export async function* readJson(chunks: ByteChunks, opts: ReaderOptions = {}): AsyncGenerator<SourceRow> {
  const r = resolve(opts);
  const { first, rest } = await peekFirstChar(decodeUtf8(chunks, r.name));
  if (first === null) return;
  if (first === '[') yield* jsonArrayFromText(rest, r);
  else if (first === '{') yield* jsonlFromText(rest, r);
  else throw new DataError(`expected a JSON array ("[") or JSON Lines ("{" on each line), got ${JSON.stringify(first)}`, r.name);
}

function uniqueHeader(fields: string[]): string[] {
  const seen = new Map<string, number>();
  return fields.map((f, i) => {
    const base = f.trim() || `column${i + 1}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}_${n}`;
  });
}

/** CSV (or TSV with `delimiter: '\t'`): the first record is the header; each later record becomes an object. */
export async function* readCsv(chunks: ByteChunks, opts: ReaderOptions & { delimiter?: string } = {}): AsyncGenerator<SourceRow> {
  const r = resolve(opts);
  const parser = new CsvParser(opts.delimiter ?? ',', r.name);
  let header: string[] | null = null;
  let index = 0;
  const out: CsvRecord[] = [];
  const rows = function* (): Generator<SourceRow> {
    for (const rec of out) {
      const where = `${r.name} line ${rec.line}`;
      if (header === null) {
        if (rec.error) throw new DataError(`header row: ${rec.error}`, where);
        header = uniqueHeader(rec.fields);
        continue;
      }
      if (rec.fields.length === 1 && rec.fields[0] === '' && header.length > 1) continue; // blank line
      if (rec.error) {
        badRow(r.policy, r.skips, 'CSV syntax', rec.error, where);
        continue;
      }
      if (rec.fields.length !== header.length) {
        badRow(r.policy, r.skips, 'wrong number of fields',
          `expected ${header.length} fields (${header.join(', ')}), got ${rec.fields.length}`, where);
        continue;
      }
      const value: Record<string, unknown> = {};
      for (let i = 0; i < header.length; i++) value[header[i]!] = rec.fields[i];
      yield { value, where, index: index++ };
    }
    out.length = 0;
  };
  for await (const s of decodeUtf8(chunks, r.name)) {
    parser.push(s, out);
    yield* rows();
  }
  parser.end(out);
  yield* rows();
}

/** Plain text: rows `{ text }` per line, per paragraph (blank-line separated, the default) or for the whole file. */
export async function* readText(chunks: ByteChunks, opts: ReaderOptions = {}): AsyncGenerator<SourceRow> {
  const r = resolve(opts);
  const unit = opts.textUnit ?? 'paragraph';
  let index = 0;
  let para: string[] = [];
  let paraLine = 0;
  const flush = (): SourceRow | null => {
    const text = para.join('\n');
    para = [];
    return text.trim() === '' ? null : { value: { text }, where: `${r.name} line ${paraLine}`, index: index++ };
  };
  for await (const { text, line } of splitLines(decodeUtf8(chunks, r.name))) {
    if (unit === 'line') {
      if (text.trim() !== '') yield { value: { text }, where: `${r.name} line ${line}`, index: index++ };
    } else if (unit === 'paragraph' && text.trim() === '') {
      const row = flush();
      if (row) yield row;
    } else {
      if (para.length === 0) paraLine = line;
      para.push(text);
    }
  }
  const row = flush();
  if (row) yield row;
}

/**
 * Reads rows of a file of the given kind. 'auto' sniffs the first character: "[" → JSON array,
 * "{" → JSON Lines, anything else → plain text (CSV/TSV need their kind, usually from the extension).
 */
export async function* readRows(chunks: ByteChunks, kind: FileKind | 'auto', opts: ReaderOptions = {}): AsyncGenerator<SourceRow> {
  switch (kind) {
    case 'jsonl':
      return yield* readJsonl(chunks, opts);
    case 'json':
      return yield* readJson(chunks, opts);
    case 'csv':
      return yield* readCsv(chunks, opts);
    case 'tsv':
      return yield* readCsv(chunks, { ...opts, delimiter: '\t' });
    case 'text':
      return yield* readText(chunks, opts);
    case 'auto': {
      const r = resolve(opts);
      const { first, rest } = await peekFirstChar(decodeUtf8(chunks, r.name));
      if (first === '[') return yield* jsonArrayFromText(rest, r);
      if (first === '{') return yield* jsonlFromText(rest, r);
      return yield* readText(textAsBytes(rest), opts);
    }
    default:
      throw new DataError(`unknown file kind "${String(kind)}" (expected one of ${FILE_KINDS.join(', ')}, auto)`);
  }
}

async function* textAsBytes(strings: AsyncIterable<string>): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  for await (const s of strings) yield enc.encode(s);
}
