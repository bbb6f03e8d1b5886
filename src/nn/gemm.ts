// Host side of shaders/gemm.wgsl: C[M,N] = alpha · op(A) · op(B) + beta · C, f32, row-major.
//   transA=false: A [M,K]; transA=true: A stored [K,M]
//   transB=false: B [K,N]; transB=true: B stored [N,K]   (x·Wᵀ for an nn.Linear weight W [N,K])
// Records one dispatch; no readback.

import type { GpuRuntime } from '../gpu/runtime.ts';

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
}

const WG = 64;
const TILE = 4;

export function gemm(rt: GpuRuntime, a: GPUBuffer, b: GPUBuffer, c: GPUBuffer, s: GemmShape): void {
  const { M, N, K } = s;
  if (M === 0 || N === 0) return;
  const tilesN = Math.ceil(N / TILE);
  const tiles = Math.ceil(M / TILE) * tilesN;
  const groups = Math.ceil(tiles / WG);
  const max = rt.device.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(groups, max);
  const gy = Math.ceil(groups / gx);
  const words = [M, N, K, tilesN, gx * WG, tiles, 0, K, s.alpha ?? 1, s.beta ?? 0, s.offA ?? 0, s.offB ?? 0, s.offC ?? 0, 0, 0, 0];
  const params = rt.uniform(words, 'uuuuuuuuffuuuuuu');
  rt.dispatch('gemm', 'gemm', [params, a, b, c], [gx, gy], {
    TA: s.transA ? 1 : 0,
    TB: s.transB ? 1 : 0,
    WG,
  });
}

/** Float64 reference of the same product (tests). */
export function gemmRef(a: ArrayLike<number>, b: ArrayLike<number>, c: ArrayLike<number> | null, s: GemmShape): Float64Array {
  const { M, N, K } = s;
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const av = s.transA ? a[k * M + m]! : a[m * K + k]!;
        const bv = s.transB ? b[n * K + k]! : b[k * N + n]!;
        acc += av * bv;
      }
      out[m * N + n] = (s.alpha ?? 1) * acc + (s.beta ? s.beta * c![m * N + n]! : 0);
    }
  }
  return out;
}
