// RMSNorm forward/backward (shaders/rmsnorm.wgsl), as LlamaRMSNorm / Qwen2RMSNorm in f32:
//   y = w ⊙ (x · rstd),  rstd = 1/sqrt(mean(x²) + eps).
// The weight is frozen (LoRA training), so the backward gives dx only.
//
// Buffers (T = B·S rows, D = hidden size, any D ≥ 1):
//   x    f32 [T, D]   input (row-major)
//   w    f32 [D]      weight
//   y    f32 [T, D]   output (must not alias x)
//   rstd f32 [T]      saved by the forward for the backward
//   dy   f32 [T, D]   gradient of y
//   dx   f32 [T, D]   gradient of x: written, or added to when `accumulate` (e.g. the residual
//                     stream's gradient already held in dx); must not alias dy or x
// Two kernel shapes: on GPUs one workgroup per row (2D grid past 65535 rows), reductions in
// workgroup memory; on CPU adapters (SwiftShader) one row per invocation, no barriers (5–200×
// faster there: barriers across a workgroup's invocations are its slowest operation).

import { perRowDispatch, type GpuRuntime } from '../gpu/runtime.ts';

const FILE = 'rmsnorm';

/** 'workgroup': a workgroup per row; 'rows': a row per invocation; default by adapter. */
export type RmsnormKernel = 'workgroup' | 'rows';

/** Workgroup size for rows of D: a power of two in [32, 256], at least ~4 elements per invocation. */
function workgroupSize(rt: GpuRuntime, D: number): number {
  const cap = Math.min(256, rt.device.limits.maxComputeInvocationsPerWorkgroup);
  let wg = 32;
  while (wg < cap && wg * 4 < D) wg *= 2;
  return wg;
}

/** Records the forward. Returns y and rstd (created when not given). */
export function rmsnormForward(
  rt: GpuRuntime,
  x: GPUBuffer,
  w: GPUBuffer,
  T: number,
  D: number,
  eps: number,
  out: { y?: GPUBuffer; rstd?: GPUBuffer; kernel?: RmsnormKernel } = {},
): { y: GPUBuffer; rstd: GPUBuffer } {
  const y = out.y ?? rt.create(T * D * 4, 'rmsnorm.y');
  const rstd = out.rstd ?? rt.create(T * 4, 'rmsnorm.rstd');
  if (T > 0) {
    const k = perRowDispatch(rt, 'rms_forward', T, out.kernel, workgroupSize(rt, D));
    rt.dispatch(FILE, k.entry, [rt.uniform([T, D, eps, 0], 'uufu'), x, w, y, rstd], k.groups, k.constants);
  }
  return { y, rstd };
}

/** Records the backward: dx (=, or += when accumulate) from dy, x, w and the saved rstd. Returns dx. */
export function rmsnormBackward(
  rt: GpuRuntime,
  dy: GPUBuffer,
  x: GPUBuffer,
  w: GPUBuffer,
  rstd: GPUBuffer,
  T: number,
  D: number,
  dx?: GPUBuffer,
  accumulate = false,
  kernel?: RmsnormKernel,
): GPUBuffer {
  const out = dx ?? rt.create(T * D * 4, 'rmsnorm.dx');
  if (T > 0) {
    // eps is unused by the backward (rstd is saved); the word stays for one Params layout.
    const k = perRowDispatch(rt, 'rms_backward', T, kernel, workgroupSize(rt, D));
    rt.dispatch(FILE, k.entry, [rt.uniform([T, D, 0, accumulate ? 1 : 0], 'uufu'), x, w, dy, rstd, out], k.groups, k.constants);
  }
  return out;
}
