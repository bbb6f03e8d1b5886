// Host side of shaders/matmul.wgsl: the plain f32 register-tiled matmul y = x·Wᵀ (+ bias) with the
// same tiles as the fused 4-bit kernel (the benchmark baseline, and a general f32 matmul for the
// training engine), and the vec4 copy kernel (the bandwidth baseline). Tile choice per adapter and shape.

import { grid, spreadWorkgroup, usesCpuKernels, type GpuRuntime } from '../../gpu/runtime.ts';
import { f32BwdEntry, f32BwdvEntry, f32Entry, f32vEntry, F32_BWD_ROWS, FWD_TILES } from './wgsl-gen.ts';

export const MATMUL_SHADER = 'matmul';

/** A register tile: TM rows of x × TN rows of W per invocation, WG invocations per workgroup. */
export interface TileConfig {
  tm: number;
  tn: number;
  wg: number;
}

export function isFwdTile(t: { tm: number; tn: number }): boolean {
  return FWD_TILES.some(([m, n]) => m === t.tm && n === t.tn);
}

/**
 * The forward tile for an M×K·Wᵀ[N,K] product on this adapter (shared by the f32 and the 4-bit kernels).
 * CPU implementations: the tallest tile M allows (SwiftShader runs loads as per-lane loops, so reuse per
 * load is everything: 32×8 reached ~6 GFLOP/s where 4×4 gets ~2).
 */
export function pickFwdTile(rt: GpuRuntime, M: number, N: number): TileConfig {
  // GPUs (measured on an H100 through Dawn/Vulkan): 4×4 is best or near best up to ~1M outputs; big
  // products want taller tiles (16×8 reached 14.8 TFLOP/s fused NF4 at 2048×4096×4096).
  if (!usesCpuKernels(rt)) return M >= 16 && M * N >= 1 << 22 ? { tm: 16, tn: 8, wg: 64 } : { tm: 4, tn: 4, wg: 64 };
  const tn = N >= 8 ? 8 : 4;
  for (const tm of [32, 16, 8, 4]) {
    if (M >= tm && isFwdTile({ tm, tn })) return spreadTile(rt, M, N, tm, tn);
  }
  return M === 1 ? { tm: 1, tn: 4, wg: 64 } : spreadTile(rt, M, N, 4, 4);
}

/** A tm×tn tile for an M×N output, its workgroup size from the tile count (spreadWorkgroup). */
export function spreadTile(rt: GpuRuntime, M: number, N: number, tm: number, tn: number): TileConfig {
  return { tm, tn, wg: spreadWorkgroup(rt, Math.ceil(M / tm) * Math.ceil(N / tn)) };
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
/** Forget cached helper buffers. */
export function resetMatmulF32Cache(): void {
  dummies = new WeakMap();
}

export function checkFwdTile(t: TileConfig): void {
  if (!isFwdTile(t)) {
    throw new Error(`tile ${t.tm}x${t.tn} is not generated (choose one of ${FWD_TILES.map(([m, n]) => `${m}x${n}`).join(', ')})`);
  }
}

/**
 * y[M,N] = x[M,K] · Wᵀ (+ bias[N]); x f32 [M,K], W f32 [N,K], both row-major. Any M, N, K
 * (K % 8 == 0 takes the tiled kernel, any other K a 4×4 scalar kernel). x's rows start at
 * element `xOffset` of its buffer (a multiple of 4 for the tiled kernel). Returns `out` or a new buffer.
 */
export function matmulF32(
  rt: GpuRuntime,
  x: GPUBuffer,
  w: GPUBuffer,
  M: number,
  N: number,
  K: number,
  opts: { bias?: GPUBuffer; out?: GPUBuffer; tile?: TileConfig; xOffset?: number } = {},
): GPUBuffer {
  const out = opts.out ?? rt.create(M * N * 4, 'matmul-f32-out');
  if (M === 0 || N === 0) return out;
  const xOff = opts.xOffset ?? 0;
  const fast = K % 8 === 0;
  if (fast && xOff % 4 !== 0) throw new Error(`matmulF32: x offset ${xOff} is not a multiple of 4`);
  const tile = fast ? (opts.tile ?? pickFwdTile(rt, M, N)) : { tm: 4, tn: 4, wg: opts.tile?.wg ?? 64 };
  if (fast) checkFwdTile(tile);
  const tilesX = Math.ceil(N / tile.tn);
  const tiles = Math.ceil(M / tile.tm) * tilesX;
  const [gx, gy] = grid(rt, Math.ceil(tiles / tile.wg));
  const params = rt.uniform([M, N, K, Math.floor(K / 8), tilesX, tiles, gx * tile.wg, opts.bias ? 1 : 0, xOff, 0]);
  // y as vec4 rows when N % 4 == 0, as the 4-bit tiles store it where they can (same tile, same stores)
  const entry = !fast ? 'mm_f32_any' : N % 4 === 0 ? f32vEntry(tile.tm, tile.tn) : f32Entry(tile.tm, tile.tn);
  rt.dispatch(MATMUL_SHADER, entry, [params, x, w, out, opts.bias ?? dummyStorage(rt)], [gx, gy], {
    WG: tile.wg,
  });
  return out;
}

/** Rows of dY per invocation of the f32 backward: the tallest CPU adapters' M allows (reuse per W load), 4 on GPUs. */
export function pickF32BwdRows(rt: GpuRuntime, M: number): number {
  if (!usesCpuKernels(rt)) return 4;
  return [...F32_BWD_ROWS].reverse().find((tm) => M >= tm) ?? 4;
}

/**
 * dX[M,K] = dY[M,N] · W, W f32 [N,K] row-major (the input gradient of y = x·Wᵀ, e.g. the tied LM
 * head's backward). Needs K % 8 == 0 (dX is written 8 columns at a time). dX starts at element
 * `outOffset` of `out` (a multiple of 4). Returns `out` or a new buffer.
 */
export function matmulF32Backward(
  rt: GpuRuntime,
  dy: GPUBuffer,
  w: GPUBuffer,
  M: number,
  N: number,
  K: number,
  opts: { out?: GPUBuffer; outOffset?: number; rows?: number; wg?: number; vec?: boolean } = {},
): GPUBuffer {
  if (K % 8 !== 0) throw new Error(`matmulF32Backward: K = ${K} is not a multiple of 8`);
  const outOff = opts.outOffset ?? 0;
  if (outOff % 4 !== 0) throw new Error(`matmulF32Backward: output offset ${outOff} is not a multiple of 4`);
  const out = opts.out ?? rt.create(M * K * 4, 'matmul-f32-dx');
  if (M === 0 || K === 0) return out;
  const tm = opts.rows ?? pickF32BwdRows(rt, M);
  if (!F32_BWD_ROWS.includes(tm)) throw new Error(`matmulF32Backward: ${tm} rows per invocation is not generated (${F32_BWD_ROWS.join(', ')})`);
  const KW = K / 8;
  const tiles = Math.ceil(M / tm) * KW;
  const wg = opts.wg ?? spreadWorkgroup(rt, tiles);
  const [gx, gy] = grid(rt, Math.ceil(tiles / wg));
  const params = rt.uniform([M, N, K, KW, KW, tiles, gx * wg, 0, 0, outOff]);
  // dY as vec4, four n per step, on CPU adapters when N % 4 == 0 (1.3–1.5× there, as the 4-bit backward)
  const vec = (opts.vec ?? usesCpuKernels(rt)) && N % 4 === 0;
  rt.dispatch(MATMUL_SHADER, vec ? f32BwdvEntry(tm) : f32BwdEntry(tm), [params, dy, w, out], [gx, gy], { WG: wg });
  return out;
}

/** Copies n floats with the vec4 copy kernel (each invocation 32 bytes); buffers padded to 32 bytes. */
export function copyF32(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, n: number, wg = 64): void {
  const n4 = Math.ceil(n / 4);
  const inv = Math.ceil(n4 / 2);
  const [gx, gy] = grid(rt, Math.ceil(inv / wg));
  const params = rt.uniform([n4, gx * wg]);
  rt.dispatch(MATMUL_SHADER, 'copy_v4', [params, src, dst], [gx, gy], { WG: wg });
}
