// Linear4: a frozen bnb 4-bit (NF4/FP4) linear layer resident on the GPU (packed weight + absmax,
// plain or double-quantized, uploaded once) with fused dequantize-in-registers products:
//   matmul          y[M,N]  = x[M,K] · Wᵀ (+ bias) (+ s·u·Bᵀ, a LoRA expansion fused in the epilogue)
//   matvec          y[1,N]  = x[1,K] · Wᵀ (+ bias)      (decode; memory-bandwidth bound)
//   matmulBackward  dX[M,K] = dY[M,N] · W               (gradients through the frozen layer;
//                   + dropout(du·A), a LoRA input gradient fused in the epilogue)
// Kernels: shaders/matmul4.wgsl. K % 8 == 0 takes the word-aligned fast kernels (each u32 word = 8
// consecutive k of one row); any other K takes the per-element kernels.

import { grid, spreadWorkgroup, usesCpuKernels, type GpuRuntime } from '../../gpu/runtime.ts';
import {
  destroyQuant4,
  log2Exact,
  uploadQuant4,
  type GpuQuant4,
  type Quant4Data,
} from './gpu-quant.ts';
import { checkFwdTile, pickFwdTile, spreadTile, type TileConfig } from './matmul-f32.ts';
import { dropoutScale, dropoutThreshold } from '../../train/rng.ts';
import { BWD_TILES, bwdEntry, bwdHalfEntry, bwdLoraEntry, bwdvEntry, fwdEntry, fwdHalfEntry, fwdLoraEntry, HALF_BWD_ROWS, HALF_FWD_TILES, MV_ROWS, mvcEntry, mvEntry } from './wgsl-gen.ts';

export const MATMUL4_SHADER = 'matmul4';

/** Backward tile: TM rows of dY × 8·tkw columns of dX per invocation. */
export interface BwdTile {
  tm: number;
  tkw: number;
  wg: number;
  /** Read dY as vec4, four n per step (needs N % 4 == 0; default: on CPU adapters when it does). */
  vec?: boolean;
}

/**
 * Decode matvec: TN rows per team of `ksplit` threads (K split across them), WG threads per workgroup.
 * `interleave`: thread t of a team takes words t, t + ksplit, ... (coalesced, for GPUs) instead of whole
 * scale blocks.
 */
export interface MvConfig {
  tn: number;
  ksplit: number;
  wg: number;
  interleave?: boolean;
}

/**
 * A LoRA expansion y += scale · u·Bᵀ to fuse into the forward product's epilogue: u [M, r] f32 and
 * B [N, r] f32 at float offset `offset` of `params` (a LoRA module's [A | B] buffer).
 */
export interface LoraEpilogue {
  u: GPUBuffer;
  params: GPUBuffer;
  offset: number;
  r: number;
  scale: number;
}

/**
 * A LoRA input gradient dX += dropout(du·A) to fuse into the backward product's epilogue: du [M, r]
 * f32 and A [r, K] f32 at float offset `offset` of `params`; `dropout` is the module's mask on the
 * product (the forward's mask on x, regenerated), absent without dropout.
 */
export interface LoraGradEpilogue {
  du: GPUBuffer;
  params: GPUBuffer;
  offset: number;
  r: number;
  /** `slot` names the call site, whose key changes every step (see rt.uniform). */
  dropout?: { key: number; p: number; slot?: string };
}

/** Storage buffers the LoRA-epilogue kernels bind: forward x, W, absmax, y, bias, nested, map, lut, u, B; backward one fewer (no bias). */
const LORA_EPILOGUE_BINDINGS = 10;
const LORA_GRAD_EPILOGUE_BINDINGS = 9;

/** The epilogue words of the params (R4, lOff, lScale, lKey, lThreshold). */
interface EpilogueWords {
  r: number;
  offset: number;
  scale: number;
  key: number;
  threshold: number;
}

/** Kernel configuration of a Linear4; a missing entry is chosen per adapter and shape. */
export interface Linear4Kernels {
  fwd?: TileConfig;
  bwd?: BwdTile;
  mv?: MvConfig;
  /** Workgroup size of the any-K kernels (4×4 forward, 4×8 backward tiles). */
  anyWg?: number;
  /** Half-word kernels (K % 4 == 0, K % 8 != 0): forward tile, backward rows and dY as vec4. */
  halfFwd?: TileConfig;
  halfBwd?: { tm: number; wg: number; vec?: boolean };
}

/** The half-word forward tile: the tallest generated one M and N allow on CPU adapters, 4×4 on GPUs. */
function pickHalfFwdTile(rt: GpuRuntime, M: number, N: number): TileConfig {
  const [tm, tn] = usesCpuKernels(rt) && N >= 8 && M >= 16 ? [M >= 32 ? 32 : 16, 8] : [4, 4];
  return spreadTile(rt, M, N, tm, tn);
}

/**
 * The backward tile for this adapter, M and K. CPU implementations: 16 rows × 16 columns when the
 * shape allows (each decoded W word feeds 16 rows; two words per step measured 1.3–1.8× the
 * one-word tile on SwiftShader).
 */
export function pickBwdTile(rt: GpuRuntime, M: number, K = 0): BwdTile {
  if (!usesCpuKernels(rt)) return { tm: 4, tkw: 1, wg: 64 };
  const [tm, tkw] = M >= 16 ? [16, K >= 16 ? 2 : 1] : M >= 8 ? [8, 1] : [4, 1];
  return { tm, tkw, wg: spreadWorkgroup(rt, Math.ceil(M / tm) * Math.ceil(K / 8 / tkw)) };
}

/**
 * The decode matvec configuration. CPU: each invocation owns 4 whole rows (no reduction). GPUs: a team of
 * 64 threads per row splits K word-interleaved (adjacent threads read adjacent words) and reduces in
 * workgroup memory: 14 us for 2048x2048 on an H100 (164 GB/s), where other splits took ~0.5 ms.
 */
export function pickMv(rt: GpuRuntime): MvConfig {
  return usesCpuKernels(rt) ? { tn: 4, ksplit: 1, wg: 16 } : { tn: 1, ksplit: 64, wg: 128, interleave: true };
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
      map: rt.create(1024, 'matmul4-dummy-map'),
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
    /** The packed 4-bit weight [N, K] on the GPU. */
    readonly weight: GpuQuant4,
    readonly N: number,
    readonly K: number,
    readonly bias: GPUBuffer | null,
    owns: { weight: boolean; bias: boolean },
    kernels: Linear4Kernels = {},
  ) {
    if (weight.n !== N * K) throw new Error(`Linear4: weight has ${weight.n} values, not ${N}x${K}`);
    if (kernels.fwd) checkFwdTile(kernels.fwd);
    if (kernels.bwd && !BWD_TILES.some(([m, u]) => m === kernels.bwd!.tm && u === kernels.bwd!.tkw)) {
      throw new Error(`backward tile ${kernels.bwd.tm}x${kernels.bwd.tkw} is not generated`);
    }
    if (kernels.mv) {
      const mv = kernels.mv;
      if (!MV_ROWS.includes(mv.tn) || mv.wg % mv.ksplit !== 0 || (mv.ksplit & (mv.ksplit - 1)) !== 0 || mv.wg * mv.tn > 1024) {
        throw new Error(`matvec config ${JSON.stringify(mv)}: tn in ${MV_ROWS.join(',')}, ksplit a power of two dividing wg, wg*tn <= 1024`);
      }
    }
    this.kernels = kernels;
    this.ownsWeight = owns.weight;
    this.ownsBias = owns.bias;
  }

  /** Uploads a CPU bnb 4-bit weight of shape [N, K] (e.g. src/quant's Quantized4) once. */
  static upload(rt: GpuRuntime, q: Quant4Data & { shape: readonly number[] }, opts: Linear4Options = {}): Linear4 {
    if (q.shape.length !== 2) throw new Error(`Linear4: weight shape [${q.shape.join(', ')}] is not [out, in]`);
    const [N, K] = q.shape as [number, number];
    const weight = uploadQuant4(rt, { ...q, n: N * K }, { code: opts.code });
    const { bias, owns } = Linear4.biasBuffer(rt, opts.bias, N);
    return new Linear4(weight, N, K, bias, { weight: true, bias: owns }, opts.kernels);
  }

  /**
   * Wraps a GPU-resident 4-bit weight (e.g. from gpuQuantize4) of shape [N, K]; it is destroyed
   * with the layer only when `ownsWeight` is set.
   */
  static fromGpu(
    rt: GpuRuntime,
    weight: GpuQuant4,
    N: number,
    K: number,
    opts: Omit<Linear4Options, 'code'> & { ownsWeight?: boolean } = {},
  ): Linear4 {
    const { bias, owns } = Linear4.biasBuffer(rt, opts.bias, N);
    return new Linear4(weight, N, K, bias, { weight: opts.ownsWeight ?? false, bias: owns }, opts.kernels);
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

  /** `unit`: elements per step of the K loop, 8 (words) or 4 (half-words; KW then counts halves). */
  private params(rt: GpuRuntime, M: number, tilesX: number, tiles: number, gridX: number, flag: boolean, unit: 8 | 4 = 8, lora?: EpilogueWords, slot?: string): GPUBuffer {
    const w = this.weight;
    const nested = w.nested;
    const K = this.K;
    // Units sharing one absmax in every row: every row starts at a multiple of gcd(K, blocksize),
    // so runs of gcd/unit units from a multiple of it never cross a block boundary (K % unit == 0
    // here; the per-element kernels ignore seg).
    const seg = K % unit === 0 ? gcd(K, w.blocksize) / unit : 1;
    return rt.uniform(
      [
        M,
        this.N,
        K,
        Math.floor(K / unit),
        log2Exact(w.blocksize, 'blocksize'),
        tilesX,
        tiles,
        gridX,
        flag ? 1 : 0, // forward: add the bias; backward: accumulate
        0,
        nested ? nested.offset : 0,
        nested ? log2Exact(nested.nestedBlocksize, 'nested blocksize') : 8,
        seg,
        lora ? lora.r / 4 : 0,
        lora ? lora.offset / 4 : 0,
        lora ? lora.scale : 0,
        lora ? lora.key >>> 0 : 0,
        lora ? lora.threshold : 0,
      ],
      'uuuuuuuuuufuuuufuu',
      slot,
    );
  }

  /** absmax, nested absmax, map bindings (dummies when not double-quantized). */
  private scaleBindings(rt: GpuRuntime): [GPUBuffer, GPUBuffer, GPUBuffer] {
    const w = this.weight;
    if (w.nested) return [w.nested.qabsmax, w.nested.nestedAbsmax, w.nested.map];
    const h = helperBuffers(rt);
    return [w.absmax!, h.storage, h.map];
  }

  /**
   * Whether matmul can fuse this LoRA expansion for M rows: the tiled kernels (not the decode
   * matvec or the any-K kernel), N, rank and B's offset multiples of 4 (vec4 reads and stores), and
   * a device allowing the epilogue kernels' 10 storage buffers per stage (WebGPU's default is 8).
   */
  fusesLora(rt: GpuRuntime, M: number, e: LoraEpilogue): boolean {
    const K = this.K;
    if (K % 4 !== 0 || this.N % 4 !== 0 || (M === 1 && K % 8 === 0 && !this.kernels.fwd)) return false;
    return e.r % 4 === 0 && e.offset % 4 === 0 && rt.device.limits.maxStorageBuffersPerShaderStage >= LORA_EPILOGUE_BINDINGS;
  }

  /**
   * y[M,N] = x[M,K] · Wᵀ (+ bias) (+ lora.scale · u·Bᵀ; only where fusesLora says so). x: M*K f32.
   * Returns `out` or a new buffer of M*N floats. Where a LoRA epilogue could fuse, plain products
   * take the same tiles with rank 0 too, for their vec4 stores of y.
   */
  matmul(rt: GpuRuntime, x: GPUBuffer, M: number, out?: GPUBuffer, lora?: LoraEpilogue): GPUBuffer {
    if (lora && !this.fusesLora(rt, M, lora)) throw new Error(`Linear4: this product (M=${M}, K=${this.K}, r=${lora.r}) cannot fuse a LoRA epilogue`);
    if (M === 1 && this.K % 8 === 0 && !this.kernels.fwd) return this.matvec(rt, x, out);
    const { N, K } = this;
    const y = out ?? rt.create(M * N * 4, 'linear4-y');
    if (M === 0 || N === 0) return y;
    const h = helperBuffers(rt);
    const rank0 = { u: h.storage, params: h.storage, offset: 0, r: 0, scale: 0 };
    const epi = lora ?? (this.fusesLora(rt, M, rank0) ? rank0 : undefined);
    const fast = K % 8 === 0;
    const half = !fast && K % 4 === 0;
    const tile = fast
      ? (this.kernels.fwd ?? pickFwdTile(rt, M, N))
      : half
        ? (this.kernels.halfFwd ?? pickHalfFwdTile(rt, M, N))
        : this.kernels.anyWg
          ? { tm: 4, tn: 4, wg: this.kernels.anyWg }
          : spreadTile(rt, M, N, 4, 4);
    if (half && !HALF_FWD_TILES.some(([m, n]) => m === tile.tm && n === tile.tn)) throw new Error(`half-word tile ${tile.tm}x${tile.tn} is not generated`);
    const tilesX = Math.ceil(N / tile.tn);
    const tiles = Math.ceil(M / tile.tm) * tilesX;
    const [gx, gy] = grid(rt, Math.ceil(tiles / tile.wg));
    const [absmax, nested, map] = this.scaleBindings(rt);
    const words = epi ? { r: epi.r, offset: epi.offset, scale: epi.scale, key: 0, threshold: 0 } : undefined;
    const params = this.params(rt, M, tilesX, tiles, gx * tile.wg, !!this.bias, half ? 4 : 8, words);
    const entry = epi ? fwdLoraEntry(tile.tm, tile.tn, half) : fast ? fwdEntry(tile.tm, tile.tn) : half ? fwdHalfEntry(tile.tm, tile.tn) : 'mm4_any';
    rt.dispatch(
      MATMUL4_SHADER,
      entry,
      [params, this.weight.lut, x, this.weight.packed, absmax, y, this.bias ?? h.storage, nested, map, ...(epi ? [epi.u, epi.params] : [])],
      [gx, gy],
      { WG: tile.wg, DQ: this.weight.nested ? 1 : 0 },
    );
    return y;
  }

  /** y[1,N] = x[1,K] · Wᵀ (+ bias), the decode product. Falls back to matmul when K % 8 != 0. */
  matvec(rt: GpuRuntime, x: GPUBuffer, out?: GPUBuffer): GPUBuffer {
    const { N, K } = this;
    if (K % 8 !== 0) return this.matmul(rt, x, 1, out);
    const y = out ?? rt.create(N * 4, 'linear4-y');
    if (N === 0) return y;
    const mv = this.kernels.mv ?? pickMv(rt);
    const rowsPerGroup = (mv.wg / mv.ksplit) * mv.tn;
    const groups = Math.ceil(N / rowsPerGroup);
    const [gx, gy] = grid(rt, groups);
    const [absmax, nested, map] = this.scaleBindings(rt);
    const params = this.params(rt, 1, 0, groups, gx, !!this.bias);
    const h = helperBuffers(rt);
    rt.dispatch(
      MATMUL4_SHADER,
      mv.interleave ? mvcEntry(mv.tn) : mvEntry(mv.tn),
      [params, this.weight.lut, x, this.weight.packed, absmax, y, this.bias ?? h.storage, nested, map],
      [gx, gy],
      { WG: mv.wg, KSPLIT: mv.ksplit, DQ: this.weight.nested ? 1 : 0 },
    );
    return y;
  }

  /**
   * Whether matmulBackward can fuse this LoRA input gradient: the word-aligned kernels (K % 8 == 0),
   * rank and A's offset multiples of 4, N > 0, and a device allowing 9 storage buffers per stage.
   */
  fusesLoraGrad(rt: GpuRuntime, e: LoraGradEpilogue): boolean {
    if (this.K % 8 !== 0 || this.N === 0) return false;
    return e.r % 4 === 0 && e.offset % 4 === 0 && rt.device.limits.maxStorageBuffersPerShaderStage >= LORA_GRAD_EPILOGUE_BINDINGS;
  }

  /**
   * dX[M,K] = dY[M,N] · W, or dX += dY·W with `accumulate` (into `out`), plus dropout(du·A) with a
   * `lora` epilogue (only where fusesLoraGrad says so). dy: M*N f32. Returns `out` or a new buffer
   * of M*K floats.
   */
  matmulBackward(rt: GpuRuntime, dy: GPUBuffer, M: number, out?: GPUBuffer, accumulate = false, lora?: LoraGradEpilogue): GPUBuffer {
    const { N, K } = this;
    if (accumulate && !out) throw new Error('matmulBackward: accumulate needs an output buffer');
    if (lora && !this.fusesLoraGrad(rt, lora)) throw new Error(`Linear4: this backward (K=${K}, r=${lora.r}) cannot fuse a LoRA epilogue`);
    const dx = out ?? rt.create(M * K * 4, 'linear4-dx');
    if (M === 0 || K === 0) return dx;
    if (N === 0) {
      if (!accumulate) rt.write(dx, new Float32Array(M * K)); // an empty sum
      return dx;
    }
    const [absmax, nested, map] = this.scaleBindings(rt);
    const DQ = this.weight.nested ? 1 : 0;
    const bindings = [this.weight.lut, dy, this.weight.packed, absmax, dx, nested, map];
    if (K % 8 === 0) {
      const t = this.kernels.bwd ?? pickBwdTile(rt, M, K);
      const tilesX = Math.ceil(K / 8 / t.tkw);
      const tiles = Math.ceil(M / t.tm) * tilesX;
      const [gx, gy] = grid(rt, Math.ceil(tiles / t.wg));
      const d = lora?.dropout;
      const words = lora && { r: lora.r, offset: lora.offset, scale: d ? dropoutScale(d.p) : 1, key: d?.key ?? 0, threshold: d ? dropoutThreshold(d.p) : 0 };
      const params = this.params(rt, M, tilesX, tiles, gx * t.wg, accumulate, 8, words, d?.slot && `mm4.bwd.${d.slot}`);
      const vec = (t.vec ?? usesCpuKernels(rt)) && N % 4 === 0;
      const entry = lora ? bwdLoraEntry(t.tm, t.tkw, vec) : vec ? bwdvEntry(t.tm, t.tkw) : bwdEntry(t.tm, t.tkw);
      rt.dispatch(MATMUL4_SHADER, entry, [params, ...bindings, ...(lora ? [lora.du, lora.params] : [])], [gx, gy], { WG: t.wg, DQ });
    } else if (K % 4 === 0) {
      const tm = usesCpuKernels(rt) && M >= 16 ? 16 : 4;
      const t = this.kernels.halfBwd ?? { tm, wg: spreadWorkgroup(rt, Math.ceil(M / tm) * (K / 4)) };
      if (!HALF_BWD_ROWS.includes(t.tm)) throw new Error(`half-word backward with ${t.tm} rows is not generated`);
      const vec = (t.vec ?? usesCpuKernels(rt)) && N % 4 === 0;
      const tilesX = K / 4;
      const tiles = Math.ceil(M / t.tm) * tilesX;
      const [gx, gy] = grid(rt, Math.ceil(tiles / t.wg));
      const params = this.params(rt, M, tilesX, tiles, gx * t.wg, accumulate, 4);
      rt.dispatch(MATMUL4_SHADER, bwdHalfEntry(t.tm, vec), [params, ...bindings], [gx, gy], { WG: t.wg, DQ });
    } else {
      const tilesX = Math.ceil(K / 8);
      const tiles = Math.ceil(M / 4) * tilesX;
      const wg = this.kernels.anyWg ?? spreadWorkgroup(rt, tiles);
      const [gx, gy] = grid(rt, Math.ceil(tiles / wg));
      const params = this.params(rt, M, tilesX, tiles, gx * wg, accumulate);
      rt.dispatch(MATMUL4_SHADER, 'mm4_bwd_any', [params, ...bindings], [gx, gy], { WG: wg, DQ });
    }
    return dx;
  }

  destroy(): void {
    if (this.ownsWeight) destroyQuant4(this.weight);
    if (this.ownsBias) this.bias?.destroy();
  }
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
