// AdamW on the GPU (shaders/adamw.wgsl), exactly torch.optim.AdamW's update, over optimizer
// state kept behind a small paging-ready interface: an OptimizerStore hands out one page
// (params, grads, m, v of equal length) per key on acquire() and takes it back on release(), so
// a later store can keep m/v in CPU memory and page them in per step. GpuOptimizerStore keeps
// everything resident. Also a float64 CPU reference of the same update for tests.
//
// torch.optim.AdamW (torch/optim/adam.py with decoupled_weight_decay, foreach and single-tensor
// paths), per step t = 1, 2, ...:
//   p ← p·(1 − lr·wd); m ← lerp(m, g, 1 − β1); v ← v·β2 + (1 − β2)·g²
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)
// with g already multiplied by the clip coefficient (HF Trainer clips in place before step()).

import { grid, packWords, type GpuRuntime } from '../gpu/runtime.ts';
import { uniformBuffer } from '../gpu/uniforms.ts';

/** One page of optimizer state: four f32 buffers of `length` elements. */
export interface ParamPage {
  key: string;
  length: number;
  params: GPUBuffer;
  grads: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
}

/**
 * Where parameters and their optimizer state live. The optimizer asks for one page at a time.
 * `release(key)` means the caller has recorded all its GPU work on the page; a paging store must
 * let that work finish (e.g. `rt.sync()`) before it evicts or reuses the page's buffers.
 */
export interface OptimizerStore {
  /** Page keys in a stable order (the optimizer steps pages in this order). */
  keys(): string[];
  /** Element count of a page. */
  length(key: string): number;
  acquire(key: string): Promise<ParamPage>;
  release(key: string): void;
}

/** The store with every page resident in GPU memory. */
export class GpuOptimizerStore implements OptimizerStore {
  private pages = new Map<string, ParamPage>();
  private owned = new Set<GPUBuffer>();

  constructor(private readonly rt: GpuRuntime) {}

  /**
   * Adds a page. `params` is a buffer (shared with the model, not owned) or initial values
   * (uploaded, owned); `grads` likewise, or a new zeroed buffer. m and v start at zero.
   */
  add(key: string, params: GPUBuffer | Float32Array, grads?: GPUBuffer, length?: number): ParamPage {
    if (this.pages.has(key)) throw new Error(`optimizer store: page "${key}" already exists`);
    const n = length ?? (params instanceof Float32Array ? params.length : params.size / 4);
    const own = (b: GPUBuffer) => (this.owned.add(b), b);
    const p = params instanceof Float32Array ? own(this.rt.upload(params, `${key}.params`)) : params;
    const g = grads ?? own(this.rt.create(n * 4, `${key}.grads`));
    for (const [name, b] of [['params', p], ['grads', g]] as const) {
      if (b.size < n * 4) throw new Error(`optimizer store: page "${key}" ${name} buffer has ${b.size} bytes, needs ${n * 4}`);
    }
    const page: ParamPage = {
      key,
      length: n,
      params: p,
      grads: g,
      m: own(this.rt.create(n * 4, `${key}.m`)),
      v: own(this.rt.create(n * 4, `${key}.v`)),
    };
    this.pages.set(key, page);
    return page;
  }

  keys(): string[] {
    return [...this.pages.keys()];
  }

  length(key: string): number {
    return this.page(key).length;
  }

  acquire(key: string): Promise<ParamPage> {
    return Promise.resolve(this.page(key));
  }

  release(key: string): void {
    this.page(key); // nothing to do when everything is resident
  }

  /** Total bytes of m and v (the optimizer state proper). */
  stateBytes(): number {
    let n = 0;
    for (const p of this.pages.values()) n += p.length * 8;
    return n;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.pages.clear();
  }

  private page(key: string): ParamPage {
    const p = this.pages.get(key);
    if (!p) throw new Error(`optimizer store: no page "${key}" (have ${this.pages.size})`);
    return p;
  }
}

export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Where the kernel reads its gradient multiplier: `buffer[index]` (grad-norm's result[1]). */
export interface GradFactor {
  buffer: GPUBuffer;
  index: number;
}

/** The f32 words of the kernel's Hyper uniform for step t (1-based), computed in float64. */
export function adamwUniformWords(h: AdamWHyper, lr: number, t: number, factorIndex: number): number[] {
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  return [1 - lr * h.weightDecay, 1 - h.beta1, h.beta2, 1 - h.beta2, h.eps, -(lr / bc1), Math.sqrt(bc2), factorIndex];
}

export class AdamW {
  /** Optimizer steps taken (torch's state["step"]); save it with a checkpoint. */
  stepCount = 0;
  private pageUniforms = new Map<string, GPUBuffer>();
  private ones: GPUBuffer | null = null;

  constructor(
    private readonly rt: GpuRuntime,
    readonly store: OptimizerStore,
    readonly hyper: AdamWHyper,
  ) {}

  /**
   * One AdamW step over every page of the store at learning rate `lr`, gradients multiplied by
   * `factor` (the clip coefficient on the GPU; omitted = 1). Records the dispatches; the
   * runtime submits them on its next flush/sync/read.
   */
  async step(lr: number, factor?: GradFactor): Promise<void> {
    const t = this.stepCount + 1;
    const f = factor ?? { buffer: this.onesBuffer(), index: 0 };
    // Changes every step (t, the bias corrections, a scheduled lr): one slot, rewritten in place.
    const hyper = this.rt.uniform(adamwUniformWords(this.hyper, lr, t, f.index), 'fffffffu', 'adamw.hyper');
    for (const key of this.store.keys()) {
      const page = await this.store.acquire(key);
      try {
        const n = page.length;
        this.rt.dispatch(
          'adamw',
          'adamw_step',
          [hyper, this.pageUniform(key, n), f.buffer, page.params, page.grads, page.m, page.v],
          grid(this.rt, Math.ceil(n / 256)),
        );
      } finally {
        this.store.release(key);
      }
    }
    this.stepCount = t;
  }

  destroy(): void {
    for (const b of this.pageUniforms.values()) b.destroy();
    this.pageUniforms.clear();
    this.ones?.destroy();
    this.ones = null;
  }

  private pageUniform(key: string, n: number): GPUBuffer {
    let b = this.pageUniforms.get(key);
    if (!b) {
      b = persistentUniform(this.rt, [n], 'u', `adamw.${key}`);
      this.pageUniforms.set(key, b);
    }
    return b;
  }

  private onesBuffer(): GPUBuffer {
    if (!this.ones) this.ones = this.rt.upload(new Float32Array([1]), 'adamw.ones');
    return this.ones;
  }
}

/** A uniform buffer that lives until destroyed (rt.uniform's are recycled once unused for a few submits). */
export function persistentUniform(rt: GpuRuntime, words: number[], types: string, label: string): GPUBuffer {
  return uniformBuffer(rt.device, packWords(words, types), label);
}

// ---- CPU reference -----------------------------------------------------------------------

/**
 * One AdamW step in place on the CPU, torch's formula; `step` is t (1-based) and `gradScale`
 * the clip coefficient. Float64 arithmetic, or torch's f32 rounding after every operation
 * with `f32: true` (the scalars rounded to f32 as torch does with Python floats).
 */
export function adamwReference(
  p: Float64Array | Float32Array,
  g: ArrayLike<number>,
  m: Float64Array | Float32Array,
  v: Float64Array | Float32Array,
  o: AdamWHyper & { lr: number; step: number; gradScale?: number; f32?: boolean },
): void {
  const r = o.f32 ? Math.fround : (x: number) => x;
  const [decay, w1, beta2, w2, eps, negStep, bc2Sqrt] = adamwUniformWords(o, o.lr, o.step, 0).map(r);
  const scale = r(o.gradScale ?? 1);
  for (let i = 0; i < p.length; i++) {
    const grad = r(g[i]! * scale!);
    const param = r(p[i]! * decay!);
    const m0 = m[i]!;
    const m1 = Math.abs(w1!) < 0.5 ? r(m0 + r(w1! * r(grad - m0))) : r(grad - r(r(grad - m0) * r(1 - w1!)));
    const v1 = r(r(v[i]! * beta2!) + r(r(w2! * grad) * grad));
    const denom = r(r(r(Math.sqrt(v1)) / bc2Sqrt!) + eps!);
    m[i] = m1;
    v[i] = v1;
    p[i] = r(param + r(negStep! * r(m1 / denom)));
  }
}
