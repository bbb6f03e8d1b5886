// A batch as the GPU model consumes it: B sequences of S tokens flattened to T = B·S rows.
//   inputIds   u32 [T]   token ids (pad id where there is no token)
//   positions  u32 [T]   position ids (restart at 0 for each packed example)
//   segments   u32 [T]   1.. per example within a row, 0 = padding: attention never crosses segments
//   targets    i32 [T]   next-token target of each position, −100 when not trained
// Labels come in the Hugging Face convention (same shape as input_ids, unshifted, −100 ignored);
// they are shifted here, as LlamaForCausalLM does: position t is scored against labels[t+1]
// when t+1 is in the same row and segment.

export const IGNORE = -100;

export interface Batch {
  B: number;
  S: number;
  inputIds: Uint32Array;
  positions: Uint32Array;
  segments: Uint32Array;
  targets: Int32Array;
  /** Number of targets ≠ −100. */
  count: number;
}

export interface BatchRows {
  inputIds: number[][];
  /** HF-style labels (unshifted); default: the input ids (train on every token). */
  labels?: number[][];
  /** Segment ids per token (packing); default 1 for every real token. */
  segmentIds?: number[][];
  /** Position ids per token; default 0.. per segment. */
  positionIds?: number[][];
}

export function makeBatch(rows: BatchRows, opts: { padId?: number; seqLen?: number } = {}): Batch {
  const B = rows.inputIds.length;
  if (B === 0) throw new Error('batch: no sequences');
  const S = opts.seqLen ?? Math.max(...rows.inputIds.map((r) => r.length));
  if (S === 0) throw new Error('batch: every sequence is empty');
  const T = B * S;
  const inputIds = new Uint32Array(T).fill(opts.padId ?? 0);
  const positions = new Uint32Array(T);
  const segments = new Uint32Array(T);
  const labels = new Int32Array(T).fill(IGNORE);
  for (let b = 0; b < B; b++) {
    const ids = rows.inputIds[b]!;
    if (ids.length > S) throw new Error(`batch: sequence ${b} has ${ids.length} tokens, more than the length ${S}`);
    const lab = rows.labels?.[b] ?? ids;
    const seg = rows.segmentIds?.[b];
    const pos = rows.positionIds?.[b];
    if (lab.length !== ids.length) throw new Error(`batch: labels of sequence ${b} have ${lab.length} entries, input_ids ${ids.length}`);
    let lastSeg = -1;
    let p = 0;
    for (let s = 0; s < ids.length; s++) {
      const t = b * S + s;
      inputIds[t] = ids[s]!;
      const sg = seg ? seg[s]! : 1;
      if (sg !== lastSeg) p = 0;
      lastSeg = sg;
      segments[t] = sg;
      positions[t] = pos ? pos[s]! : p;
      p++;
      labels[t] = lab[s]!;
    }
  }
  const targets = new Int32Array(T).fill(IGNORE);
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let s = 0; s + 1 < S; s++) {
      const t = b * S + s;
      if (segments[t] !== 0 && segments[t + 1] === segments[t] && labels[t + 1] !== IGNORE) {
        targets[t] = labels[t + 1]!;
        count++;
      }
    }
  }
  return { B, S, inputIds, positions, segments, targets, count };
}

/** The data pipeline's batch (already shifted `targets`) as the GPU model's batch. */
export function fromDataBatch(b: {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  targets: Int32Array;
  positionIds: Int32Array;
  segmentIds: Uint32Array;
}): Batch {
  let count = 0;
  for (const t of b.targets) if (t !== IGNORE) count++;
  return {
    B: b.batchSize,
    S: b.seqLen,
    inputIds: Uint32Array.from(b.inputIds),
    positions: Uint32Array.from(b.positionIds),
    segments: b.segmentIds,
    targets: b.targets,
    count,
  };
}
