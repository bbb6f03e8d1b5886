// Host side of shaders/gemm.wgsl: C[M,N] = alpha · op(A) · op(B) + beta · C, f32, row-major.
//   transA=false: A [M,K]; transA=true: A stored [K,M]
//   transB=false: B [K,N]; transB=true: B stored [N,K]   (x·Wᵀ for an nn.Linear weight W [N,K])
// Records one dispatch; no readback. Kernels: `gemm` (scalar loads, 4×4 tiles, any shape and
// offset) and the vec4 family `gemm_v4` / `_v4w` / `_v4x` / `_v4n` / `_v4m` (4×4, 4×8, 8×8, 4×16,
// 16×4 tiles; K % 4 == 0 and 16-byte aligned rows along each operand's contiguous axis, see
// v4Fits), which CPU kernel shapes take whenever the shape allows (2–3× there on the LoRA
// products, 8×8 another 1.2–2×).
// GPUs keep the scalar kernel, split along K when its tiles are too few to fill the GPU (see
// splitParts).

import { grid, spreadWorkgroup, usesCpuKernels, type GpuRuntime } from '../gpu/runtime.ts';
import { dropoutKeep, dropoutScale, dropoutThreshold } from '../train/rng.ts';

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  /** 0 overwrites C, 1 accumulates into it. */
  beta?: number;
  /** Element offsets of A, B, C inside their buffers (default 0). */
  offA?: number;
  offB?: number;
  offC?: number;
  /**
   * Fused dropout with the counter RNG (key, probability p): on operand 'A' (A [M,K], not
   * transposed), 'B' (B [K,N], not transposed) or 'C' (the product, before accumulation). `slot`
   * names the call site, whose key changes every step (see rt.uniform).
   */
  dropout?: { on: 'A' | 'B' | 'C'; key: number; p: number; slot?: string };
  /**
   * Force a kernel (tests): 'scalar' (gemm), 'v4' (gemm_v4, 4×4 tiles), 'v4w' (gemm_v4w, 4×8),
   * 'v4x' (gemm_v4x, 8×8), 'v4n' (4×16) or 'v4m' (16×4). Default on CPU adapters when the shape
   * allows: see cpuKernel; else scalar.
   */
  kernel?: 'scalar' | 'v4' | 'v4w' | 'v4x' | 'v4n' | 'v4m';
  /** Force split-K into this many parts (tests; scalar kernel only). Default: see splitParts. */
  splitK?: number;
}

/**
 * Split-K parts for the scalar kernel on a GPU: a product of few 4×4 tiles over a long K (LoRA's
 * weight gradients: M, N = rank × features, K = every token of the batch) runs as tiles × parts
 * invocations, each over ≥ 32 k, into a scratch buffer that gemm_splitk_reduce adds up. 1 (no
 * split) for CPU kernel shapes, short K, or enough tiles already.
 */
export function splitParts(rt: GpuRuntime, tiles: number, K: number): number {
  if (usesCpuKernels(rt)) return 1;
  const parts = Math.min(Math.floor(K / SPLIT_MIN_K), Math.ceil(SPLIT_TARGET_INVOCATIONS / tiles), SPLIT_MAX_PARTS);
  return parts >= SPLIT_MIN_PARTS ? parts : 1;
}
/** Fewer parts don't pay for the reduce pass's extra dispatch. */
const SPLIT_MIN_PARTS = 4;
const SPLIT_MIN_K = 32;
const SPLIT_TARGET_INVOCATIONS = 8192;
const SPLIT_MAX_PARTS = 64;

/** Whether the vec4 kernel can run this shape (see the top of the file). */
export function v4Fits(s: GemmShape): boolean {
  const { M, N, K } = s;
  const offA = s.offA ?? 0;
  const offB = s.offB ?? 0;
  if (K % 4 !== 0 || offA % 4 !== 0 || offB % 4 !== 0) return false;
  if (s.transA && M % 4 !== 0) return false;
  if (!s.transB && N % 4 !== 0) return false;
  return true;
}

export function gemm(rt: GpuRuntime, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, s: GemmShape): void {
  const { M, N, K } = s;
  if (M === 0 || N === 0) return;
  const d = s.dropout;
  if (d && ((d.on === 'A' && s.transA) || (d.on === 'B' && s.transB))) throw new Error('gemm: dropout on a transposed operand');
  // The vec4 view of C must cover its last element's whole vec4 (buffers are not always 16-byte sized).
  const cCovered = c.size >= Math.ceil(((s.offC ?? 0) + M * N) / 4) * 16;
  const kernel = s.kernel ?? ((s.splitK ?? 1) <= 1 && usesCpuKernels(rt) && v4Fits(s) && cCovered ? cpuKernel(s) : 'scalar');
  const vec = kernel !== 'scalar';
  if (vec && !(v4Fits(s) && cCovered)) throw new Error(`gemm: the vec4 kernel cannot run M=${M} N=${N} K=${K} on these buffers (see v4Fits)`);
  const [tm, tn] = { scalar: [4, 4], v4: [4, 4], v4w: [4, 8], v4x: [8, 8], v4n: [4, 16], v4m: [16, 4] }[kernel];
  const tilesN = Math.ceil(N / tn);
  const tiles = Math.ceil(M / tm) * tilesN;
  const parts = s.splitK ?? (kernel === 'scalar' ? splitParts(rt, tiles, K) : 1);
  if (parts > 1) {
    if (vec) throw new Error('gemm: split-K runs on the scalar kernel only');
    gemmSplitK(rt, a, b, c, s, tiles, tilesN, parts);
    return;
  }
  const WG = spreadWorkgroup(rt, tiles);
  const [gx, gy] = grid(rt, Math.ceil(tiles / WG));
  const params = gemmParams(rt, s, { tilesN, gridX: gx * WG, tiles, alpha: s.alpha ?? 1, beta: s.beta ?? 0, offC: s.offC ?? 0 }, 'gemm');
  rt.dispatch('gemm', { scalar: 'gemm', v4: 'gemm_v4', v4w: 'gemm_v4w', v4x: 'gemm_v4x', v4n: 'gemm_v4n', v4m: 'gemm_v4m' }[kernel], [params, a, b, c], [gx, gy], {
    TA: s.transA ? 1 : 0,
    TB: s.transB ? 1 : 0,
    WG,
    DROP: dropCode(s),
    ...(vec ? { C4: N % 4 === 0 && (s.offC ?? 0) % 4 === 0 ? 1 : 0 } : {}),
  });
}

/** The scalar kernel over `parts` slices of K into a scratch buffer, then gemm_splitk_reduce into C. */
function gemmSplitK(rt: GpuRuntime, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, s: GemmShape, tiles: number, tilesN: number, parts: number): void {
  const { M, N } = s;
  const DROP = dropCode(s);
  const scratch = rt.pool.acquire(parts * M * N * 4, 'gemm.splitk');
  const WG = spreadWorkgroup(rt, tiles * parts);
  const [gx, gy] = grid(rt, Math.ceil((tiles * parts) / WG));
  const partial = gemmParams(rt, s, { tilesN, gridX: gx * WG, tiles, alpha: 1, beta: 0, offC: 0 }, 'gemm.split');
  rt.dispatch('gemm', 'gemm', [partial, a, b, scratch], [gx, gy], { TA: s.transA ? 1 : 0, TB: s.transB ? 1 : 0, WG, DROP, SPLIT: parts });
  const RWG = spreadWorkgroup(rt, M * N);
  const [rx, ry] = grid(rt, Math.ceil((M * N) / RWG));
  const reduce = gemmParams(rt, s, { tilesN, gridX: rx * RWG, tiles: M * N, alpha: s.alpha ?? 1, beta: s.beta ?? 0, offC: s.offC ?? 0 }, 'gemm.reduce');
  rt.dispatch('gemm', 'gemm_splitk_reduce', [reduce, scratch, undefined, c], [rx, ry], { WG: RWG, DROP, SPLIT: parts });
  rt.pool.release(scratch);
}

/**
 * gemm.wgsl's Params block for one dispatch of `s` (every entry reads the same layout). A call
 * site whose dropout key changes every step keeps one buffer per dispatch kind (see rt.uniform).
 */
function gemmParams(
  rt: GpuRuntime,
  s: GemmShape,
  w: { tilesN: number; gridX: number; tiles: number; alpha: number; beta: number; offC: number },
  kind: string,
): GPUBuffer {
  const d = s.dropout;
  const words = [
    s.M, s.N, s.K, w.tilesN, w.gridX, w.tiles, 0, s.K, w.alpha, w.beta, s.offA ?? 0, s.offB ?? 0, w.offC,
    d ? d.key >>> 0 : 0, d ? dropoutThreshold(d.p) : 0, d ? dropoutScale(d.p) : 1,
  ];
  return rt.uniform(words, 'uuuuuuuuffuuuuuf', d?.slot && `${kind}.${d.slot}`);
}

/** The DROP override: which operand the fused dropout masks (0: none). */
function dropCode(s: GemmShape): number {
  return s.dropout ? { A: 1, B: 2, C: 3 }[s.dropout.on] : 0;
}

/**
 * The vec4 tile for a CPU adapter: 8×8 (4×8 when M < 8, 4×4 when N < 8), except for a product
 * 9–16 wide with dropout on A (u = dropout(x)·Aᵀ of LoRA: 4×16, each masked x element hashed once,
 * not twice) or 9–16 tall with dropout on B (gA = duᵀ·dropout(x): 16×4): 1.1–1.3× there.
 */
function cpuKernel(s: GemmShape): 'v4' | 'v4w' | 'v4x' | 'v4n' | 'v4m' {
  const { M, N } = s;
  if (s.dropout?.on === 'A' && N > 8 && N <= 16) return 'v4n';
  if (s.dropout?.on === 'B' && M > 8 && M <= 16) return 'v4m';
  return N < 8 ? 'v4' : M < 8 ? 'v4w' : 'v4x';
}

/** Float64 reference of the same product (tests). */
export function gemmRef(a: ArrayLike<number>, b: ArrayLike<number>, c: ArrayLike<number> | null, s: GemmShape): Float64Array {
  const { M, N, K } = s;
  const d = s.dropout;
  const t = d ? dropoutThreshold(d.p) : 0;
  const keep = (on: string, i: number) => (d && d.on === on ? (dropoutKeep(d.key, i, t) ? Math.fround(dropoutScale(d.p)) : 0) : 1);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const av = (s.transA ? a[k * M + m]! : a[m * K + k]!) * keep('A', m * K + k);
        const bv = (s.transB ? b[n * K + k]! : b[k * N + n]!) * keep('B', k * N + n);
        acc += av * bv;
      }
      out[m * N + n] = (s.alpha ?? 1) * acc * keep('C', m * N + n) + (s.beta ? s.beta * c![m * N + n]! : 0);
    }
  }
  return out;
}
