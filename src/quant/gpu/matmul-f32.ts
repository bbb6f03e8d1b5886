// Host side of shaders/matmul.wgsl: the plain f32 register-tiled matmul y = x·Wᵀ (+ bias) with the
// same tiling as the fused 4-bit kernel (the benchmark baseline, and a general f32 matmul for the
// training engine), and the vec4 copy kernel (the bandwidth baseline).

import type { GpuRuntime } from '../../gpu/runtime.ts';
import { grid2d } from './gpu-quant.ts';

export const MATMUL_SHADER = 'matmul';

/** A register tile: TM rows of x × TN rows of W per invocation, WG invocations per workgroup. */
export interface TileConfig {
  tm: number;
  tn: number;
  wg: number;
}

/** Whether the runtime is a CPU WebGPU implementation (SwiftShader, lavapipe) or a fallback adapter. */
export function isCpuAdapter(rt: GpuRuntime): boolean {
  const a = rt.adapter;
  return a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|cpu/i.test([a.vendor, a.architecture, a.device, a.description, a.backend].join(' '));
}

/** The f32 tile for this adapter (the same as the fused 4-bit forward tile). */
export function defaultF32Tile(rt: GpuRuntime): TileConfig {
  return isCpuAdapter(rt) ? { tm: 4, tn: 4, wg: 64 } : { tm: 4, tn: 4, wg: 64 };
}

let dummies = new WeakMap<GpuRuntime, GPUBuffer>();
function dummyStorage(rt: GpuRuntime): GPUBuffer {
  let b = dummies.get(rt);
  if (!b) {
    b = rt.create(16, 'dummy');
    dummies.set(rt, b);
  }
  return b;
}
/** Forget cached helper buffers (tests that destroy runtimes). */
export function resetMatmulF32Cache(): void {
  dummies = new WeakMap();
}

function checkTile(t: TileConfig): void {
  if (!(t.tm >= 1 && t.tm <= 8 && t.tn >= 1 && t.tn <= 8)) throw new Error(`tile ${t.tm}x${t.tn}: TM and TN must be 1..8`);
}

/**
 * y[M,N] = x[M,K] · Wᵀ (+ bias[N]); x f32 [M,K], W f32 [N,K], both row-major. Any M, N, K
 * (K % 4 == 0 takes the vec4 kernel). Returns `out` or a new buffer of M*N floats.
 */
export function matmulF32(
  rt: GpuRuntime,
  x: GPUBuffer,
  w: GPUBuffer,
  M: number,
  N: number,
  K: number,
  opts: { bias?: GPUBuffer; out?: GPUBuffer; tile?: TileConfig } = {},
): GPUBuffer {
  const tile = opts.tile ?? defaultF32Tile(rt);
  checkTile(tile);
  const out = opts.out ?? rt.create(M * N * 4, 'matmul-f32-out');
  if (M === 0 || N === 0) return out;
  const tilesN = Math.ceil(N / tile.tn);
  const tiles = Math.ceil(M / tile.tm) * tilesN;
  const [gx, gy] = grid2d(rt, Math.ceil(tiles / tile.wg));
  const params = rt.uniform([M, N, K, tilesN, gx * tile.wg, tiles, opts.bias ? 1 : 0, 0]);
  const entry = K % 4 === 0 && K > 0 ? 'mm_f32' : 'mm_f32_any';
  rt.dispatch(MATMUL_SHADER, entry, [params, x, w, out, opts.bias ?? dummyStorage(rt)], [gx, gy], {
    TM: tile.tm,
    TN: tile.tn,
    WG: tile.wg,
  });
  return out;
}

/** Copies n floats with the vec4 copy kernel (each invocation 32 bytes); buffers padded to 32 bytes. */
export function copyF32(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, n: number, wg = 64): void {
  const n4 = Math.ceil(n / 4);
  const inv = Math.ceil(n4 / 2);
  const [gx, gy] = grid2d(rt, Math.ceil(inv / wg));
  const params = rt.uniform([n4, gx * wg]);
  rt.dispatch(MATMUL_SHADER, 'copy_v4', [params, src, dst], [gx, gy], { WG: wg });
}
