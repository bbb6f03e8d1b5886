// Tokenized examples → fixed-length training sequences and batches.
//
// Truncation to max length: drop the example, truncate it (keep the head), or split it into chunks.
// Packing puts several examples in one sequence; position ids restart at 0 for each example and
// segment ids number the examples 1, 2, … (0 = padding), so attention must only connect tokens with the
// same non-zero segment id (and causally). Padding uses the pad id, label -100, position 0, segment 0.
//
// Labels follow the Hugging Face convention: labels[t] = inputIds[t] where trained, else -100, and the
// loss shifts (position t predicts labels[t + 1]). The first token of every example/segment gets -100,
// so no target is predicted across an example boundary. Batches also carry `targets`, the same labels
// already shifted (targets[t] = labels[t + 1] in the same row, -100 at a row's end): the next-token
// targets a fused cross-entropy over the logits of position t wants.

export const IGNORE = -100;

/** An example, or a chunk of one, no longer than the max length. */
export interface Piece {
  ids: Int32Array;
  trained: Uint8Array;
}

export type Truncation = 'drop' | 'split' | 'truncate';

export interface FitResult {
  pieces: Piece[];
  action: 'kept' | 'truncated' | 'split' | 'dropped';
  /** Why nothing (or less) was kept. */
  reason?: string;
}

function countTrained(p: Piece): number {
  let n = 0;
  for (let i = 1; i < p.trained.length; i++) n += p.trained[i]!;
  return n;
}

/** Applies the max length to one example. Pieces without a trained token (after the first) are dropped. */
export function fitToLength(ex: Piece, maxLength: number, mode: Truncation): FitResult {
  const n = ex.ids.length;
  if (n < 2) return { pieces: [], action: 'dropped', reason: 'shorter than 2 tokens' };
  if (n <= maxLength) {
    return countTrained(ex) > 0 ? { pieces: [ex], action: 'kept' } : { pieces: [], action: 'dropped', reason: 'no trained tokens' };
  }
  if (mode === 'drop') return { pieces: [], action: 'dropped', reason: `longer than max length ${maxLength}` };
  const cuts: Piece[] = [];
  const step = mode === 'truncate' ? n : maxLength;
  for (let s = 0; s < n; s += step) {
    const e = Math.min(n, s + maxLength);
    const p = { ids: ex.ids.subarray(s, e), trained: ex.trained.subarray(s, e) };
    if (p.ids.length >= 2 && countTrained(p) > 0) cuts.push(p);
  }
  if (cuts.length === 0) return { pieces: [], action: 'dropped', reason: `no trained tokens within max length ${maxLength}` };
  return { pieces: cuts, action: mode === 'truncate' ? 'truncated' : 'split' };
}

/** One training row before padding: one example, or several packed. */
export interface Sequence {
  ids: Int32Array;
  labels: Int32Array;
  positionIds: Int32Array;
  segmentIds: Uint32Array;
  examples: number;
  trainedTokens: number;
}

/** Concatenates pieces into one sequence with restarting positions and segment ids 1..k. */
export function buildSequence(pieces: readonly Piece[]): Sequence {
  const len = pieces.reduce((a, p) => a + p.ids.length, 0);
  const ids = new Int32Array(len);
  const labels = new Int32Array(len);
  const positionIds = new Int32Array(len);
  const segmentIds = new Uint32Array(len);
  let o = 0;
  let trainedTokens = 0;
  pieces.forEach((p, k) => {
    ids.set(p.ids, o);
    for (let i = 0; i < p.ids.length; i++) {
      const on = i > 0 && p.trained[i] === 1;
      labels[o + i] = on ? p.ids[i]! : IGNORE;
      trainedTokens += on ? 1 : 0;
      positionIds[o + i] = i;
      segmentIds[o + i] = k + 1;
    }
    o += p.ids.length;
  });
  return { ids, labels, positionIds, segmentIds, examples: pieces.length, trainedTokens };
}

/**
 * Packs pieces (in the given order) into groups of at most `maxLength` tokens: first fit over the
 * last `window` open sequences, so order is mostly kept and packing stays O(n · window).
 */
export function packPieces(pieces: readonly Piece[], maxLength: number, window = 32): Piece[][] {
  const groups: Piece[][] = [];
  const free: number[] = [];
  const open: number[] = []; // indices of groups still open, oldest first
  for (const p of pieces) {
    const len = p.ids.length;
    let placed = -1;
    for (const g of open) {
      if (free[g]! >= len) {
        placed = g;
        break;
      }
    }
    if (placed < 0) {
      placed = groups.length;
      groups.push([]);
      free.push(maxLength);
      open.push(placed);
      if (open.length > window) open.shift();
    }
    groups[placed]!.push(p);
    free[placed]! -= len;
    if (free[placed]! < 2) open.splice(open.indexOf(placed), 1);
  }
  return groups;
}

/** Sequences from pieces: packed, or one piece per sequence. */
export function makeSequences(pieces: readonly Piece[], maxLength: number, packing: boolean): Sequence[] {
  return packing ? packPieces(pieces, maxLength).map(buildSequence) : pieces.map((p) => buildSequence([p]));
}

/** A training batch, row-major [batchSize, seqLen]. */
export interface Batch {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  labels: Int32Array;
  /** Next-token targets: targets[t] = labels[t + 1] within the row, -100 at its last position. */
  targets: Int32Array;
  positionIds: Int32Array;
  /** 1.. per example within a row, 0 = padding; attend only within equal non-zero ids. */
  segmentIds: Uint32Array;
  /** Real (non-pad) tokens and trained targets in the batch. */
  tokens: number;
  trainedTokens: number;
  examples: number;
}

/** Pads sequences to `seqLen` (pad id, label -100, position 0, segment 0) into one batch. */
export function makeBatch(seqs: readonly Sequence[], seqLen: number, padId: number): Batch {
  const B = seqs.length;
  const inputIds = new Int32Array(B * seqLen).fill(padId);
  const labels = new Int32Array(B * seqLen).fill(IGNORE);
  const positionIds = new Int32Array(B * seqLen);
  const segmentIds = new Uint32Array(B * seqLen);
  let tokens = 0;
  let trainedTokens = 0;
  let examples = 0;
  seqs.forEach((s, b) => {
    if (s.ids.length > seqLen) throw new RangeError(`sequence of ${s.ids.length} tokens does not fit seqLen ${seqLen}`);
    const o = b * seqLen;
    inputIds.set(s.ids, o);
    labels.set(s.labels, o);
    positionIds.set(s.positionIds, o);
    segmentIds.set(s.segmentIds, o);
    tokens += s.ids.length;
    trainedTokens += s.trainedTokens;
    examples += s.examples;
  });
  const targets = new Int32Array(B * seqLen).fill(IGNORE);
  for (let b = 0; b < B; b++) targets.set(labels.subarray(b * seqLen + 1, (b + 1) * seqLen), b * seqLen);
  return { batchSize: B, seqLen, inputIds, labels, targets, positionIds, segmentIds, tokens, trainedTokens, examples };
}

export interface BatchOptions {
  batchSize: number;
  /** Fixed row length (the max length), or 'longest' to pad each batch to its longest row. */
  seqLen: number | 'longest';
  padId: number;
  /** Drop a last batch with fewer than batchSize rows. Default false (it is emitted smaller). */
  dropLast?: boolean;
}

export function* batchSequences(seqs: readonly Sequence[], opts: BatchOptions): Generator<Batch> {
  const B = Math.max(1, Math.floor(opts.batchSize));
  for (let i = 0; i < seqs.length; i += B) {
    const rows = seqs.slice(i, i + B);
    if (rows.length < B && opts.dropLast) return;
    const S = opts.seqLen === 'longest' ? Math.max(...rows.map((r) => r.ids.length)) : opts.seqLen;
    yield makeBatch(rows, S, opts.padId);
  }
}

/** A 32-bit mix of (seed, n): a stable pseudo-random key. */
export function hash32(seed: number, n: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n >>> 0, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A seeded permutation of 0..n-1 (Fisher–Yates driven by hash32). */
export function permutation(n: number, seed: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = hash32(seed, i) % (i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/**
 * Deterministic train/eval split by row key (the row's index in the source): rows are ordered by
 * hash32(seed, key) and the first ones go to eval. `evalSplit` < 1 is a fraction, ≥ 1 a count; at
 * least one example stays in train. Returns positions into `keys`, each list in source order.
 */
export function splitTrainEval(keys: readonly number[], evalSplit: number, seed: number): { train: number[]; eval: number[] } {
  const n = keys.length;
  let k = evalSplit >= 1 ? Math.floor(evalSplit) : Math.round(n * Math.max(0, evalSplit));
  if (evalSplit > 0 && evalSplit < 1 && k === 0 && n >= 2) k = 1;
  k = Math.min(k, Math.max(0, n - 1));
  const order = keys.map((key, i) => ({ i, h: hash32(seed, key) })).sort((a, b) => a.h - b.h || a.i - b.i);
  const isEval = new Uint8Array(n);
  for (let j = 0; j < k; j++) isEval[order[j]!.i] = 1;
  const train: number[] = [];
  const evalIdx: number[] = [];
  for (let i = 0; i < n; i++) (isEval[i] ? evalIdx : train).push(i);
  return { train, eval: evalIdx };
}
