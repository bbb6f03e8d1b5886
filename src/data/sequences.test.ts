// Sequences: truncation modes, packing with restarting position ids and segment ids, padding,
// labels at example boundaries, batches, and the deterministic seeded split and shuffle.

import { describe, expect, it } from 'vitest';
import {
  batchSequences, buildSequence, fitToLength, IGNORE, makeSequences, packPieces, permutation, splitTrainEval, type Piece,
} from './sequences.ts';

/** An example of `n` tokens with ids base, base+1, …; trained from index `from` on. */
function ex(n: number, base = 100, from = 1): Piece {
  return { ids: Int32Array.from({ length: n }, (_, i) => base + i), trained: Uint8Array.from({ length: n }, (_, i) => (i >= from ? 1 : 0)) };
}

describe('truncation', () => {
  it('keeps short examples; drops, truncates or splits long ones', () => {
    expect(fitToLength(ex(5), 8, 'drop')).toMatchObject({ action: 'kept' });
    expect(fitToLength(ex(10), 8, 'drop')).toEqual({ pieces: [], action: 'dropped', reason: 'longer than max length 8' });
    const t = fitToLength(ex(10), 8, 'truncate');
    expect(t.action).toBe('truncated');
    expect(Array.from(t.pieces[0]!.ids)).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
    const s = fitToLength(ex(20), 8, 'split');
    expect(s.action).toBe('split');
    expect(s.pieces.map((p) => p.ids.length)).toEqual([8, 8, 4]);
    expect(s.pieces[2]!.ids[0]).toBe(116);
  });
  it('drops pieces with nothing to train', () => {
    expect(fitToLength(ex(5, 100, 5), 8, 'drop')).toEqual({ pieces: [], action: 'dropped', reason: 'no trained tokens' });
    // Answer only at the end: truncating would cut all of it.
    expect(fitToLength(ex(12, 100, 10), 8, 'truncate')).toEqual({ pieces: [], action: 'dropped', reason: 'no trained tokens within max length 8' });
    expect(fitToLength(ex(12, 100, 10), 8, 'split').pieces.length).toBe(1);
    expect(fitToLength(ex(1), 8, 'drop').reason).toBe('shorter than 2 tokens');
  });
});

describe('packing and padding', () => {
  it('position ids restart per example, segment ids count 1.., the first token of each example is not a target', () => {
    const seq = buildSequence([ex(3, 10), ex(4, 20, 2), ex(2, 30)]);
    expect(Array.from(seq.ids)).toEqual([10, 11, 12, 20, 21, 22, 23, 30, 31]);
    expect(Array.from(seq.positionIds)).toEqual([0, 1, 2, 0, 1, 2, 3, 0, 1]);
    expect(Array.from(seq.segmentIds)).toEqual([1, 1, 1, 2, 2, 2, 2, 3, 3]);
    expect(Array.from(seq.labels)).toEqual([IGNORE, 11, 12, IGNORE, IGNORE, 22, 23, IGNORE, 31]);
    expect(seq.trainedTokens).toBe(5);
    expect(seq.examples).toBe(3);
  });

  it('first-fit packing never exceeds the max length and keeps every example once', () => {
    const lens = [5, 9, 3, 7, 2, 8, 4, 6, 1 + 1, 10];
    const pieces = lens.map((n, i) => ex(n, i * 100));
    const groups = packPieces(pieces, 10);
    for (const g of groups) expect(g.reduce((a, p) => a + p.ids.length, 0)).toBeLessThanOrEqual(10);
    expect(groups.flat().length).toBe(lens.length);
    expect(new Set(groups.flat())).toEqual(new Set(pieces));
    expect(groups.length).toBeLessThan(lens.length);
  });

  it('batches pad with the pad id, label -100, position 0, segment 0; attention stays within a segment', () => {
    const seqs = makeSequences([ex(3, 10), ex(4, 20), ex(5, 30)], 8, true);
    const [batch] = [...batchSequences(seqs, { batchSize: 2, seqLen: 8, padId: 0 })];
    expect(batch!.batchSize).toBe(2);
    expect(batch!.seqLen).toBe(8);
    expect(Array.from(batch!.inputIds)).toEqual([10, 11, 12, 20, 21, 22, 23, 0, 30, 31, 32, 33, 34, 0, 0, 0]);
    expect(Array.from(batch!.segmentIds)).toEqual([1, 1, 1, 2, 2, 2, 2, 0, 1, 1, 1, 1, 1, 0, 0, 0]);
    expect(Array.from(batch!.positionIds)).toEqual([0, 1, 2, 0, 1, 2, 3, 0, 0, 1, 2, 3, 4, 0, 0, 0]);
    expect(Array.from(batch!.labels.slice(8))).toEqual([IGNORE, 31, 32, 33, 34, IGNORE, IGNORE, IGNORE]);
    expect(Array.from(batch!.targets.slice(0, 8))).toEqual([11, 12, IGNORE, 21, 22, 23, IGNORE, IGNORE]);
    expect(Array.from(batch!.targets.slice(8))).toEqual([31, 32, 33, 34, IGNORE, IGNORE, IGNORE, IGNORE]);
    expect(batch!.tokens).toBe(12);
    expect(batch!.trainedTokens).toBe(9);
    // The block-diagonal causal mask the engine builds: j visible from i iff same non-zero segment and j ≤ i.
    const visible = (i: number, j: number) => batch!.segmentIds[i] !== 0 && batch!.segmentIds[i] === batch!.segmentIds[j] && j <= i;
    expect(visible(4, 2)).toBe(false);
    expect(visible(4, 3)).toBe(true);
  });

  it("unpacked: one example per row; 'longest' pads to the batch's longest row; dropLast", () => {
    const seqs = makeSequences([ex(3), ex(6), ex(2)], 8, false);
    expect(seqs.length).toBe(3);
    const bs = [...batchSequences(seqs, { batchSize: 2, seqLen: 'longest', padId: 7 })];
    expect(bs.map((b) => [b.batchSize, b.seqLen])).toEqual([[2, 6], [1, 2]]);
    expect(Array.from(bs[0]!.inputIds.slice(0, 6))).toEqual([100, 101, 102, 7, 7, 7]);
    expect([...batchSequences(seqs, { batchSize: 2, seqLen: 8, padId: 0, dropLast: true })].length).toBe(1);
  });
});

describe('deterministic split and shuffle', () => {
  const keys = Array.from({ length: 100 }, (_, i) => i);
  it('same seed → same split; another seed → another split; sizes from a fraction or a count', () => {
    const a = splitTrainEval(keys, 0.1, 42);
    expect(splitTrainEval(keys, 0.1, 42)).toEqual(a);
    expect(a.eval.length).toBe(10);
    expect(a.train.length).toBe(90);
    expect(new Set([...a.train, ...a.eval]).size).toBe(100);
    expect(splitTrainEval(keys, 0.1, 43).eval).not.toEqual(a.eval);
    expect(splitTrainEval(keys, 7, 1).eval.length).toBe(7);
    expect(splitTrainEval(keys, 0, 1).eval.length).toBe(0);
    expect(splitTrainEval([5], 0.5, 1)).toEqual({ train: [0], eval: [] });
    expect(splitTrainEval([1, 2], 0.01, 1).eval.length).toBe(1);
  });
  it('a row keeps its side when other rows are removed (membership depends on the row key)', () => {
    const a = splitTrainEval(keys, 0.2, 9);
    const evalKeys = new Set(a.eval.map((i) => keys[i]));
    const fewer = keys.filter((k) => k % 10 !== 3);
    const b = splitTrainEval(fewer, 0.2, 9);
    const bEval = b.eval.map((i) => fewer[i]!);
    const agree = bEval.filter((k) => evalKeys.has(k)).length;
    expect(agree / bEval.length).toBeGreaterThan(0.8);
  });
  it('permutation is a seeded shuffle', () => {
    expect(permutation(10, 3)).toEqual(permutation(10, 3));
    expect(permutation(10, 3)).not.toEqual(permutation(10, 4));
    expect([...permutation(50, 1)].sort((x, y) => x - y)).toEqual(keys.slice(0, 50));
  });
});
