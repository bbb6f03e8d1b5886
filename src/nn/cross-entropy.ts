// Fused softmax cross-entropy (shaders/cross_entropy.wgsl): one workgroup per row of V logits,
// max-subtracted log-sum-exp in f32, V up to vocabulary sizes of 150k+.
//
// Buffers:
//   logits  f32 [rows, V]   row r is token rowOffset + r. crossEntropyForwardBackward OVERWRITES
//                           it with dlogits = (softmax − onehot(label))·scale for counted
//                           tokens and 0 for ignored ones: the logits are dead after the loss,
//                           and [T, V] is the largest activation of the model (e.g. 2048 × 128256
//                           f32 = 1 GiB), so the gradient reuses its memory.
//   labels  i32 [T]         next-token targets; a label counts when 0 ≤ label < V, −100 (or any
//                           other out-of-range value) is ignored
//   losses  f32 [T]         per-token loss lse − logit[label], 0 for ignored tokens
//   stats   f32 [4]         [mean loss, loss sum, count, 1/count] (mean and 1/count are 0 when
//                           count is 0), from crossEntropyCount / crossEntropyReduce; stays on the
//                           GPU until someone reads it
// scale = gradScale / count, the gradient of the mean loss over counted tokens (gradScale
// defaults to 1; with gradient accumulation pass the total count over micro-batches, or fold
// 1/microBatches into gradScale). The count comes from the host (a number) or from the GPU
// (crossEntropyCount's stats buffer, recorded before the backward).
// Chunked use: call with rows = a chunk of tokens, rowOffset = its first token, logits holding
// just that chunk; labels/losses are always indexed by the global token.

import { perRowDispatch, type GpuRuntime } from '../gpu/runtime.ts';

const FILE = 'cross_entropy';

/**
 * 'workgroup': a workgroup per row (GPUs); 'rows': a row per invocation, no barriers (CPU
 * adapters, where workgroup barriers are the slowest operation). Default by adapter.
 */
export type CrossEntropyKernel = 'workgroup' | 'rows';

export interface CrossEntropyArgs {
  logits: GPUBuffer;
  labels: GPUBuffer;
  /** rows of logits in this call */
  rows: number;
  V: number;
  /** token index of logits row 0 (into labels and losses); default 0 */
  rowOffset?: number;
  /** per-token losses f32 [rowOffset + rows] at least; created (rows·4 bytes) when absent */
  losses?: GPUBuffer;
  kernel?: CrossEntropyKernel;
}

/** Records per-token losses; logits untouched. Returns losses. */
export function crossEntropyForward(rt: GpuRuntime, a: CrossEntropyArgs): GPUBuffer {
  const off = a.rowOffset ?? 0;
  const losses = a.losses ?? rt.create((off + a.rows) * 4, 'ce.losses');
  if (a.rows > 0) {
    const k = perRowDispatch(rt, 'ce_forward', a.rows, a.kernel);
    rt.dispatch(FILE, k.entry, [rt.uniform([a.rows, a.V, off, 0], 'uuuf'), a.labels, losses, a.logits], k.groups, k.constants);
  }
  return losses;
}

/**
 * Records the fused forward + backward: per-token losses, and logits overwritten in place by
 * dlogits = (softmax − onehot)·gradScale/count (0 rows for ignored tokens). `count` is a number
 * (host-known count of counted labels, over all chunks / micro-batches that share the mean) or
 * a stats buffer from crossEntropyCount (its 1/count is read on the GPU). Returns losses.
 */
export function crossEntropyForwardBackward(
  rt: GpuRuntime,
  a: CrossEntropyArgs & { count: number | GPUBuffer; gradScale?: number },
): GPUBuffer {
  const off = a.rowOffset ?? 0;
  const losses = a.losses ?? rt.create((off + a.rows) * 4, 'ce.losses');
  const gs = a.gradScale ?? 1;
  if (a.rows > 0) {
    if (typeof a.count === 'number') {
      const scale = a.count > 0 ? gs / a.count : 0;
      const k = perRowDispatch(rt, 'ce_fwd_bwd', a.rows, a.kernel);
      rt.dispatch(FILE, k.entry, [rt.uniform([a.rows, a.V, off, scale], 'uuuf'), a.labels, losses, a.logits], k.groups, k.constants);
    } else {
      const k = perRowDispatch(rt, 'ce_fwd_bwd_stats', a.rows, a.kernel);
      rt.dispatch(FILE, k.entry, [rt.uniform([a.rows, a.V, off, gs], 'uuuf'), a.labels, losses, a.logits, a.count], k.groups, k.constants);
    }
  }
  return losses;
}

/** Records stats = [0, 0, count, 1/count] over labels [T] (no readback). Returns stats (f32 [4]). */
export function crossEntropyCount(rt: GpuRuntime, labels: GPUBuffer, T: number, V: number, stats?: GPUBuffer): GPUBuffer {
  const out = stats ?? rt.create(16, 'ce.stats');
  rt.dispatch(FILE, 'ce_count', [rt.uniform([T, V, 0, 0], 'uuuf'), labels, out], [1]);
  return out;
}

/**
 * Records stats = [mean, sum, count, 1/count] of the per-token losses over tokens [0, T)
 * (mean = sum/count, 0 when count is 0). Returns stats (f32 [4]).
 */
export function crossEntropyReduce(
  rt: GpuRuntime,
  losses: GPUBuffer,
  labels: GPUBuffer,
  T: number,
  V: number,
  stats?: GPUBuffer,
): GPUBuffer {
  const out = stats ?? rt.create(16, 'ce.stats');
  rt.dispatch(FILE, 'ce_reduce', [rt.uniform([T, V, 0, 0], 'uuuf'), labels, losses, out], [1]);
  return out;
}
