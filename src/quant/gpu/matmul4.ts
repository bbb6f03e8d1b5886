// Linear4: a frozen bnb 4-bit (NF4/FP4) linear layer resident on the GPU (packed weight + absmax,
// plain or double-quantized, uploaded once) with fused dequantize-in-registers products:
//   matmul          y[M,N]  = x[M,K] · Wᵀ (+ bias)
//   matvec          y[1,N]  = x[1,K] · Wᵀ (+ bias)      (decode; memory-bandwidth bound)
//   matmulBackward  dX[M,K] = dY[M,N] · W               (gradients through the frozen layer)
// Kernels: shaders/matmul4.wgsl. K % 8 == 0 takes the word-aligned fast kernels (each u32 word = 8
// consecutive k of one row); any other K takes the per-element kernels.

import type { GpuRuntime } from '../../gpu/runtime.ts';
import {
  destroyQuant4,
  grid2d,
  log2Exact,
  uploadQuant4,
  type GpuQuant4,
  type Quant4Data,
} from './gpu-quant.ts';
import { isCpuAdapter, type TileConfig } from './matmul-f32.ts';

export const MATMUL4_SHADER = 'matmul4';

/** Kernel configuration of a Linear4 (override constants of matmul4.wgsl). */
export interface Linear4Kernels {
  /** Forward tile (K % 8 == 0): TM rows of x × TN rows of W per invocation. */
  fwd: TileConfig;
  /** Forward tile for any K. */
  fwdAny: TileConfig;
  /** Decode matvec: TN rows per team of `ksplit` threads (K split across them), WG threads. */
  mv: { tn: number; ksplit: number; wg: number };
  /** Backward tile (K % 8 == 0): TM rows of dY × 8·tkw columns of dX. */
  bwd: { tm: number; tkw: number; wg: number };
  /** Backward for any K: TM rows × 8 columns. */
  bwdAny: { tm: number; wg: number };
}

/** Kernel choice per adapter: register tiles on CPU adapters; K-split matvec on GPUs. */
export function defaultLinear4Kernels(rt: GpuRuntime): Linear4Kernels {
  if (isCpuAdapter(rt)) {
    return {
      fwd: { tm: 4, tn: 4, wg: 64 },
      fwdAny: { tm: 4, tn: 4, wg: 64 },
      mv: { tn: 4, ksplit: 1, wg: 64 },
      bwd: { tm: 4, tkw: 1, wg: 64 },
      bwdAny: { tm: 4, wg: 64 },
    };
  }
  return {
    fwd: { tm: 4, tn: 4, wg: 64 },
    fwdAny: { tm: 4, tn: 4, wg: 64 },
    mv: { tn: 2, ksplit: 32, wg: 256 },
    bwd: { tm: 4, tkw: 1, wg: 64 },
    bwdAny: { tm: 4, wg: 64 },
  };
}

interface Helpers {
  storage: GPUBuffer;
  map: GPUBuffer;
}
const helpers = new WeakMap<GpuRuntime, Helpers>();
function helperBuffers(rt: GpuRuntime): Helpers {
  let h = helpers.get(rt);
  if (!h) {
    h = {
      storage: rt.create(16, 'matmul4-dummy'),
      map: rt.upload(new Float32Array(256), 'matmul4-dummy-map', GPUBufferUsage.UNIFORM),
    };
    helpers.set(rt, h);
  }
  return h;
}

export interface Linear4Options {
  /** f32 bias [N], added in the forward products. */
  bias?: Float32Array | GPUBuffer;
  /** Dequantization code table (default: CUDA's for the type). */
  code?: Float32Array;
  /** Kernel overrides (merged over defaultLinear4Kernels). */
  kernels?: Partial<Linear4Kernels>;
}

export class Linear4 {
  readonly kernels: Linear4Kernels;
  private readonly ownsWeight: boolean;
  private readonly ownsBias: boolean;

  private constructor(
    rt: GpuRuntime,
    /** The packed 4-bit weight [N, K] on the GPU. */
    readonly weight: GpuQuant4,
    readonly N: number,
    readonly K: number,
    readonly bias: GPUBuffer | null,
    owns: { weight: boolean; bias: boolean },
    kernels?: Partial<Linear4Kernels>,
  ) {
    if (weight.n !== N * K) throw new Error(`Linear4: weight has ${weight.n} values, not ${N}x${K}`);
    this.kernels = { ...defaultLinear4Kernels(rt), ...kernels };
    this.ownsWeight = owns.weight;
    this.ownsBias = owns.bias;
  }

  /** Uploads a CPU bnb 4-bit weight of shape [N, K] (e.g. src/quant's Quantized4) once. */
  static upload(rt: GpuRuntime, q: Quant4Data & { shape: readonly number[] }, opts: Linear4Options = {}): Linear4 {
    if (q.shape.length !== 2) throw new Error(`Linear4: weight shape [${q.shape.join(', ')}] is not [out, in]`);
    const [N, K] = q.shape as [number, number];
    const weight = uploadQuant4(rt, { ...q, n: N * K }, { code: opts.code });
    const { bias, owns } = Linear4.biasBuffer(rt, opts.bias, N);
    return new Linear4(rt, weight, N, K, bias, { weight: true, bias: owns }, opts.kernels);
  }

  /** Wraps a GPU-resident 4-bit weight (e.g. from gpuQuantize4) of shape [N, K]; it is not destroyed with the layer. */
  static fromGpu(rt: GpuRuntime, weight: GpuQuant4, N: number, K: number, opts: Omit<Linear4Options, 'code'> = {}): Linear4 {
    const { bias, owns } = Linear4.biasBuffer(rt, opts.bias, N);
    return new Linear4(rt, weight, N, K, bias, { weight: false, bias: owns }, opts.kernels);
  }

  private static biasBuffer(rt: GpuRuntime, bias: Float32Array | GPUBuffer | undefined, N: number): { bias: GPUBuffer | null; owns: boolean } {
    if (!bias) return { bias: null, owns: false };
    if (bias instanceof Float32Array) {
      if (bias.length !== N) throw new Error(`Linear4: bias has ${bias.length} values, expected ${N}`);
      return { bias: rt.upload(bias, 'linear4-bias'), owns: true };
    }
    return { bias, owns: false };
  }

  /** Bytes of GPU memory the weight takes (packed + absmax statistics). */
  get weightBytes(): number {
    const w = this.weight;
    let b = w.packed.size;
    if (w.absmax) b += w.absmax.size;
    if (w.nested) b += w.nested.qabsmax.size + w.nested.nestedAbsmax.size + w.nested.map.size;
    return b;
  }

  private params(rt: GpuRuntime, M: number, tilesX: number, tiles: number, gridX: number, hasBias: boolean): GPUBuffer {
    const w = this.weight;
    const nested = w.nested;
    return rt.uniform(
      [
        M,
        this.N,
        this.K,
        Math.floor(this.K / 8),
        log2Exact(w.blocksize, 'blocksize'),
        tilesX,
        tiles,
        gridX,
        hasBias ? 1 : 0,
        0,
        nested ? nested.offset : 0,
        nested ? log2Exact(nested.nestedBlocksize, 'nested blocksize') : 8,
      ],
      'uuuuuuuuuufu',
    );
  }

  /** absmax, nested absmax, map bindings (dummies when not double-quantized). */
  private scaleBindings(rt: GpuRuntime): [GPUBuffer, GPUBuffer, GPUBuffer] {
    const w = this.weight;
    if (w.nested) return [w.nested.qabsmax, w.nested.nestedAbsmax, w.nested.map];
    const h = helperBuffers(rt);
    return [w.absmax!, h.storage, h.map];
  }

  /** y[M,N] = x[M,K] · Wᵀ (+ bias). x: M*K f32. Returns `out` or a new buffer of M*N floats. */
  matmul(rt: GpuRuntime, x: GPUBuffer, M: number, out?: GPUBuffer): GPUBuffer {
    if (M === 1 && this.K % 8 === 0) return this.matvec(rt, x, out);
    const { N, K } = this;
    const y = out ?? rt.create(M * N * 4, 'linear4-y');
    if (M === 0 || N === 0) return y;
    const fast = K % 8 === 0;
    const tile = fast ? this.kernels.fwd : this.kernels.fwdAny;
    const tilesX = Math.ceil(N / tile.tn);
    const tiles = Math.ceil(M / tile.tm) * tilesX;
    const [gx, gy] = grid2d(rt, Math.ceil(tiles / tile.wg));
    const [absmax, nested, map] = this.scaleBindings(rt);
    const params = this.params(rt, M, tilesX, tiles, gx * tile.wg, !!this.bias);
    const h = helperBuffers(rt);
    rt.dispatch(
      MATMUL4_SHADER,
      fast ? 'mm4' : 'mm4_any',
      [params, this.weight.code, x, this.weight.packed, absmax, y, this.bias ?? h.storage, nested, map],
      [gx, gy],
      { TM: tile.tm, TN: tile.tn, WG: tile.wg, DQ: this.weight.nested ? 1 : 0 },
    );
    return y;
  }

  /** y[1,N] = x[1,K] · Wᵀ (+ bias), the decode product. Falls back to matmul when K % 8 != 0. */
  matvec(rt: GpuRuntime, x: GPUBuffer, out?: GPUBuffer): GPUBuffer {
    const { N, K } = this;
    if (K % 8 !== 0) return this.matmul(rt, x, 1, out);
    const y = out ?? rt.create(N * 4, 'linear4-y');
    if (N === 0) return y;
    const mv = this.kernels.mv;
    if (mv.wg % mv.ksplit !== 0 || (mv.wg / mv.ksplit) * mv.tn > 512 || mv.wg * mv.tn > 512) {
      throw new Error(`matvec config ${JSON.stringify(mv)}: need wg % ksplit == 0 and wg*tn <= 512`);
    }
    const rowsPerGroup = (mv.wg / mv.ksplit) * mv.tn;
    const groups = Math.ceil(N / rowsPerGroup);
    const [gx, gy] = grid2d(rt, groups);
    const [absmax, nested, map] = this.scaleBindings(rt);
    const params = this.params(rt, 1, 0, groups, gx, !!this.bias);
    const h = helperBuffers(rt);
    rt.dispatch(
      MATMUL4_SHADER,
      'mv4',
      [params, this.weight.code, x, this.weight.packed, absmax, y, this.bias ?? h.storage, nested, map],
      [gx, gy],
      { TN: mv.tn, WG: mv.wg, KSPLIT: mv.ksplit, DQ: this.weight.nested ? 1 : 0 },
    );
    return y;
  }

  /** dX[M,K] = dY[M,N] · W. dy: M*N f32. Returns `out` or a new buffer of M*K floats. */
  matmulBackward(rt: GpuRuntime, dy: GPUBuffer, M: number, out?: GPUBuffer): GPUBuffer {
    const { N, K } = this;
    const dx = out ?? rt.create(M * K * 4, 'linear4-dx');
    if (M === 0 || K === 0) return dx;
    const [absmax, nested, map] = this.scaleBindings(rt);
    const consts = { DQ: this.weight.nested ? 1 : 0 };
    if (N === 0) {
      // an empty sum: dX = 0
      rt.write(dx, new Float32Array(M * K));
      return dx;
    }
    if (K % 8 === 0) {
      const t = this.kernels.bwd;
      const tilesX = Math.ceil(K / 8 / t.tkw);
      const tiles = Math.ceil(M / t.tm) * tilesX;
      const [gx, gy] = grid2d(rt, Math.ceil(tiles / t.wg));
      const params = this.params(rt, M, tilesX, tiles, gx * t.wg, false);
      rt.dispatch(MATMUL4_SHADER, 'mm4_bwd', [params, this.weight.code, dy, this.weight.packed, absmax, dx, nested, map], [gx, gy], {
        TM: t.tm,
        TKW: t.tkw,
        WG: t.wg,
        ...consts,
      });
    } else {
      const t = this.kernels.bwdAny;
      const tilesX = Math.ceil(K / 8);
      const tiles = Math.ceil(M / t.tm) * tilesX;
      const [gx, gy] = grid2d(rt, Math.ceil(tiles / t.wg));
      const params = this.params(rt, M, tilesX, tiles, gx * t.wg, false);
      rt.dispatch(MATMUL4_SHADER, 'mm4_bwd_any', [params, this.weight.code, dy, this.weight.packed, absmax, dx, nested, map], [gx, gy], {
        TM: t.tm,
        WG: t.wg,
        ...consts,
      });
    }
    return dx;
  }

  destroy(): void {
    if (this.ownsWeight) destroyQuant4(this.weight);
    if (this.ownsBias) this.bias?.destroy();
  }
}
