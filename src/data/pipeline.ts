// The data pipeline in one call: source (file bytes, Hugging Face dataset, or rows) → rows → format
// detection and normalization → chat template + tokenization + labels → length rules → deterministic
// train/eval split → packed or padded batches, with statistics and previews. Engine code: no DOM, no Node.

import { badRow, DataError, SkipLog, type BadRowPolicy } from './errors.ts';
import { detectFormat, normalizeRow, parseFormatName, type FormatName } from './formats.ts';
import { readHfRows, type HfOptions } from './hf.ts';
import { tokenizeExample, type LabelMode, type TokenizedExample } from './labels.ts';
import { fileKindFromName, readRows, type FileKind, type SourceRow, type TextUnit } from './readers.ts';
import {
  batchSequences, fitToLength, makeSequences, permutation, splitTrainEval, type Batch, type Piece, type Sequence, type Truncation,
} from './sequences.ts';
import { lengthHistogram, summarizeLengths, type DataStats, type SplitStats } from './stats.ts';
import type { ByteChunks } from './stream.ts';
import type { ChatTemplate } from './template.ts';
import type { DataTokenizer } from './tokenize.ts';

export type DataSource =
  /** A file's bytes (Node: fs.createReadStream(path); browser: blobChunks(file)). Kind defaults from the name. */
  | { kind: 'file'; name: string; chunks: ByteChunks; fileKind?: FileKind | 'auto' }
  | { kind: 'hf'; dataset: string; options?: HfOptions }
  | { kind: 'rows'; name: string; rows: Iterable<Record<string, unknown>> | AsyncIterable<Record<string, unknown>> };

export interface PipelineOptions {
  /** A format name or 'auto' (default): detected from the first `detectRows` rows. */
  format?: FormatName | 'auto' | string;
  /** Tokens per sequence. Default 1024. */
  maxLength?: number;
  /** Pack several examples per sequence. Default false (one example per row, padded). */
  packing?: boolean;
  /** 'assistant' (default): loss on assistant answers + EOS only; 'all': on every token. */
  labelMode?: LabelMode;
  /** Over-long examples. 'auto' (default): drop chat examples, split raw text. */
  truncation?: Truncation | 'auto';
  /** Eval share: a fraction < 1 or a count ≥ 1. Default 0. */
  evalSplit?: number;
  seed?: number;
  /** Rows per batch. Default 1. */
  batchSize?: number;
  /** Pad rows to the max length (default) or to each batch's longest row. */
  padding?: 'max-length' | 'longest';
  onBadRow?: BadRowPolicy;
  textUnit?: TextUnit;
  /** Read at most this many rows. */
  maxRows?: number;
  /** Rows used for format detection. Default 32. */
  detectRows?: number;
  /** Examples kept with their rendered text for display. Default 2. */
  previews?: number;
}

export interface PreviewExample extends TokenizedExample {
  where: string;
}

export interface DataSplit {
  readonly examples: number;
  /** The training rows for an epoch (train: shuffled by seed and epoch; eval: fixed order). */
  sequences(epoch?: number): Sequence[];
  batches(opts?: { epoch?: number; batchSize?: number; dropLast?: boolean }): Generator<Batch>;
}

export interface PreparedData {
  format: FormatName;
  stats: DataStats;
  train: DataSplit;
  eval: DataSplit;
  previews: PreviewExample[];
  padId: number;
  maxLength: number;
}

function sourceName(src: DataSource): string {
  return src.kind === 'hf' ? src.dataset : src.name;
}

async function* sourceRows(src: DataSource, opts: PipelineOptions, skips: SkipLog): AsyncGenerator<SourceRow> {
  const policy = opts.onBadRow ?? 'skip';
  if (src.kind === 'hf') {
    yield* readHfRows(src.dataset, { ...src.options, maxRows: opts.maxRows ?? src.options?.maxRows, onBadRow: policy, skips });
    return;
  }
  let n = 0;
  if (src.kind === 'rows') {
    for await (const value of src.rows) {
      if (n >= (opts.maxRows ?? Infinity)) return;
      yield { value, where: `${src.name} row ${n}`, index: n++ };
    }
    return;
  }
  const kind = src.fileKind ?? fileKindFromName(src.name) ?? 'auto';
  for await (const row of readRows(src.chunks, kind, { name: src.name, onBadRow: policy, skips, textUnit: opts.textUnit })) {
    if (n++ >= (opts.maxRows ?? Infinity)) return;
    yield row;
  }
}

interface Kept {
  key: number;
  pieces: Piece[];
}

/** Runs the whole pipeline. Fatal problems (unreadable file, unknown format, no usable row) throw DataError. */
export async function prepareData(src: DataSource, options: PipelineOptions, tok: DataTokenizer, tpl: ChatTemplate): Promise<PreparedData> {
  const name = sourceName(src);
  const requested = parseFormatName(options.format ?? 'auto');
  const maxLength = options.maxLength ?? 1024;
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new DataError(`max length must be an integer ≥ 2, got ${maxLength}`);
  const labelMode = options.labelMode ?? 'assistant';
  const policy = options.onBadRow ?? 'skip';
  const skips = new SkipLog();
  const padId = tok.padId ?? tok.eosId ?? 0;
  const previewsWanted = options.previews ?? 2;

  const it = sourceRows(src, options, skips)[Symbol.asyncIterator]();
  const head: SourceRow[] = [];
  while (head.length < (options.detectRows ?? 32)) {
    const r = await it.next();
    if (r.done) break;
    head.push(r.value);
  }
  if (head.length === 0) {
    const why = skips.total ? ` (${skips.total} rows skipped: ${Object.entries(skips.summary().byReason).map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
    throw new DataError(`no rows: the dataset is empty${why}`, name);
  }
  const format: FormatName = requested === 'auto' ? detectFormat(head.map((r) => r.value), name).format : requested;
  const truncation: Truncation = options.truncation && options.truncation !== 'auto' ? options.truncation : format === 'text' ? 'split' : 'drop';

  const kept: Kept[] = [];
  const lengths: number[] = [];
  const previews: PreviewExample[] = [];
  const dropped: Record<string, number> = {};
  let rows = 0;
  let tokens = 0;
  let trainedTokens = 0;
  let truncated = 0;
  let splitCount = 0;

  let rowSkips = 0;
  const handle = (row: SourceRow) => {
    rows++;
    const norm = normalizeRow(row.value, format);
    if (!norm.ok) {
      rowSkips++;
      return badRow(policy, skips, norm.kind, norm.reason, row.where);
    }
    let ex: TokenizedExample;
    try {
      ex = tokenizeExample(norm.example, tok, tpl, labelMode);
    } catch (e) {
      if (!(e instanceof DataError)) throw new Error(`${row.where}: ${(e as Error).message}`, { cause: e });
      rowSkips++;
      return badRow(policy, skips, 'template error', e.message, row.where);
    }
    const n = ex.ids.length;
    lengths.push(n);
    tokens += n;
    let t = 0;
    for (let i = 1; i < n; i++) t += ex.trained[i]!;
    trainedTokens += t;
    if (previews.length < previewsWanted) previews.push({ ...ex, where: row.where });
    const fit = fitToLength({ ids: ex.ids, trained: ex.trained }, maxLength, truncation);
    if (fit.action === 'dropped') {
      dropped[fit.reason!] = (dropped[fit.reason!] ?? 0) + 1;
      return;
    }
    if (fit.action === 'truncated') truncated++;
    if (fit.action === 'split') splitCount++;
    kept.push({ key: row.index, pieces: fit.pieces });
  };

  for (const row of head) handle(row);
  for (let r = await it.next(); !r.done; r = await it.next()) handle(r.value);
  rows += skips.total - rowSkips; // rows the reader itself rejected

  if (kept.length === 0) {
    const reasons = [...Object.entries(skips.summary().byReason), ...Object.entries(dropped)].map(([k, v]) => `${k}: ${v}`).join(', ');
    throw new DataError(`no usable examples in ${rows} rows${reasons ? ` (${reasons})` : ''}`, name);
  }

  const seed = options.seed ?? 0;
  const parts = splitTrainEval(kept.map((k) => k.key), options.evalSplit ?? 0, seed);
  const packing = options.packing ?? false;
  const batchOpts = { batchSize: options.batchSize ?? 1, padId, seqLen: options.padding === 'longest' ? ('longest' as const) : maxLength };

  const makeSplit = (idx: number[], shuffle: boolean): DataSplit => {
    const sequences = (epoch = 0) => {
      const order = shuffle ? permutation(idx.length, (seed * 0x9e3779b1 + epoch + 1) >>> 0).map((i) => idx[i]!) : idx;
      return makeSequences(order.flatMap((i) => kept[i]!.pieces), maxLength, packing);
    };
    return {
      examples: idx.length,
      sequences,
      *batches(o = {}) {
        yield* batchSequences(sequences(o.epoch ?? 0), { ...batchOpts, batchSize: o.batchSize ?? batchOpts.batchSize, dropLast: o.dropLast });
      },
    };
  };
  const train = makeSplit(parts.train, true);
  const evalSplit = makeSplit(parts.eval, false);

  const splitStats = (s: DataSplit): SplitStats => {
    const seqs = s.sequences(0);
    const tk = seqs.reduce((a, q) => a + q.ids.length, 0);
    return {
      examples: s.examples, sequences: seqs.length, tokens: tk,
      trainedTokens: seqs.reduce((a, q) => a + q.trainedTokens, 0),
      fill: seqs.length ? tk / (seqs.length * maxLength) : 0,
    };
  };

  const stats: DataStats = {
    source: name,
    format,
    formatDetected: requested === 'auto',
    template: format === 'text' ? 'none (raw text)' : tpl.name,
    rows,
    examples: lengths.length,
    skipped: skips.summary(),
    tokens,
    trainedTokens,
    maxLength,
    truncated,
    split: splitCount,
    dropped,
    lengths: summarizeLengths(lengths),
    histogram: lengthHistogram(lengths, maxLength),
    train: splitStats(train),
    eval: splitStats(evalSplit),
  };
  return { format, stats, train, eval: evalSplit, previews, padId, maxLength };
}
