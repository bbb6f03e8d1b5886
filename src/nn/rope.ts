// Rotary position embedding (shaders/rope.wgsl), HF rotate_half convention: dimension i pairs
// with i + Dh/2, y[i] = x[i]·cos − x[i+Dh/2]·sin, y[i+Dh/2] = x[i+Dh/2]·cos + x[i]·sin.
// The backward is the rotation by −angle (ropeBackward: dx from dy, same layouts).
//
// Buffers:
//   x     f32, token t / head h / dim i at offset + t·rowStride + h·Dh + i. Defaults: offset 0,
//         rowStride H·Dh, i.e. a plain [T, H, Dh] tensor (q: H = Hq, k: H = Hkv). A fused QKV
//         buffer [T, (Hq + 2·Hkv)·Dh] works in place with rowStride = (Hq + 2·Hkv)·Dh and
//         offset 0 (q) or Hq·Dh (k).
//   pos   u32 [T]  position id per token (restart at 0 for each packed example); positions
//         ≥ maxPos are clamped to maxPos − 1 (build the table long enough)
//   table f32 [maxPos, Dh/2, 2] (cos, sin), from ropeTable() in rope-table.ts
//   out   optional; f32 with its own outRowStride (default H·Dh) / outOffset (default 0); must not
//         alias x. Without `out` the rotation is in place.

import { grid, type GpuRuntime } from '../gpu/runtime.ts';

const WG = 256;

export interface RopeArgs {
  /** the tensor to rotate */
  x: GPUBuffer;
  /** position ids u32 [T] */
  pos: GPUBuffer;
  /** (cos, sin) table f32 [maxPos, Dh/2, 2] */
  table: GPUBuffer;
  T: number;
  /** heads in x */
  H: number;
  Dh: number;
  /** rows of the table */
  maxPos: number;
  /** elements between tokens in x (default H·Dh) */
  rowStride?: number;
  /** first element of x's tensor (default 0) */
  offset?: number;
  /** out-of-place output; in place when absent */
  out?: GPUBuffer;
  outRowStride?: number;
  outOffset?: number;
}

function record(rt: GpuRuntime, a: RopeArgs, sign: number): void {
  if (a.Dh % 2 !== 0) throw new Error(`RoPE needs an even head dim, got ${a.Dh}`);
  const half = a.Dh / 2;
  const n = a.T * a.H * half;
  if (n <= 0) return;
  const params = rt.uniform(
    [
      a.T,
      a.H,
      half,
      a.maxPos,
      a.rowStride ?? a.H * a.Dh,
      a.offset ?? 0,
      a.outRowStride ?? a.H * a.Dh,
      a.outOffset ?? 0,
      sign,
    ],
    'uuuuuuuuf',
  );
  const groups = grid(rt, Math.ceil(n / WG));
  if (a.out) {
    rt.dispatch('rope', 'rope_out', [params, a.pos, a.table, a.x, a.out], groups);
  } else {
    rt.dispatch('rope', 'rope_inplace', [params, a.pos, a.table, a.x], groups);
  }
}

/** Records the rotation by +angle (forward). Returns the rotated buffer (x, or out). */
export function ropeForward(rt: GpuRuntime, args: RopeArgs): GPUBuffer {
  record(rt, args, 1);
  return args.out ?? args.x;
}

/** Records the rotation by −angle: with x = dy it gives dx (backward). Returns x, or out. */
export function ropeBackward(rt: GpuRuntime, args: RopeArgs): GPUBuffer {
  record(rt, args, -1);
  return args.out ?? args.x;
}
