// LoRA adapters on the GPU, exactly as PEFT defines them:
//   y = base(x) + s · B·(A·dropout(x)),  A [r, in], B [out, r], s = alpha/r (or alpha/√r, rsLoRA)
// One module's parameters live in ONE buffer [A | B] (r·in + out·r floats) and its gradients in
// another of the same layout, so each (layer, module) is one optimizer page.
//
// Forward (per module, T tokens):    u  = dropout(x)·Aᵀ         [T, r]   (kept for the backward, in
//                                                                        the model's activations)
//                                     y += s · u·Bᵀ              [T, out] (`expansion`: the frozen
//                                                                        linear adds it, see linear.ts)
// Backward (given dy [T, out]):       gB += s · dyᵀ·u            [out, r]
//                                     du  = s · dy·B             [T, r]
//                                     gA += duᵀ·dropout(x)       [r, in]
//                                     dx += dropout(du·A)        [T, in]  (same mask as forward;
//                                                                        `inputGrad`: the frozen
//                                                                        linear's backward adds it)
// Dropout is fused into the products (gemm.wgsl, and the 4-bit backward's LoRA epilogue in
// matmul4.wgsl): the mask of element (t, i) of x comes from the
// counter RNG keyed by (seed, micro-step, layer, module), so the backward regenerates the
// forward's mask and no dropped copy of x is ever stored.

import type { GpuRuntime } from '../gpu/runtime.ts';
import { gemm } from '../nn/gemm.ts';
import type { LoraEpilogue, LoraGradEpilogue } from '../quant/gpu/matmul4.ts';
import { LORA_TARGETS, peftLoraName, type LoraTarget } from '../model/names.ts';
import type { ModelConfig } from '../model/config.ts';
import { targetShape } from '../model/names.ts';
import { dropoutKey, initLoraA } from '../train/rng.ts';

export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  targetModules: readonly LoraTarget[];
  seed: number;
}

export function loraScale(s: Pick<LoraSettings, 'r' | 'alpha' | 'useRslora'>): number {
  return s.useRslora ? s.alpha / Math.sqrt(s.r) : s.alpha / s.r;
}

export class LoraModule {
  readonly aSize: number;
  readonly size: number;

  constructor(
    readonly layer: number,
    readonly target: LoraTarget,
    readonly r: number,
    readonly inF: number,
    readonly outF: number,
    /** [A | B] f32 */
    readonly params: GPUBuffer,
    /** [gA | gB] f32 */
    readonly grads: GPUBuffer,
  ) {
    this.aSize = r * inF;
    this.size = this.aSize + outF * r;
  }
}

export class LoraAdapter {
  readonly modules = new Map<string, LoraModule>();
  readonly scale: number;

  private constructor(
    readonly settings: LoraSettings,
    readonly numLayers: number,
  ) {
    this.scale = loraScale(settings);
  }

  /** A new adapter: A ~ U(±1/√in) from the seed (PEFT's kaiming_uniform(a=√5)), B = 0. */
  static init(rt: GpuRuntime, config: ModelConfig, settings: LoraSettings): LoraAdapter {
    return LoraAdapter.fromTensors(rt, config, settings, (layer, target, r, inF, outF) => ({
      a: initLoraA(settings.seed, layer, target, r, inF),
      b: new Float32Array(outF * r),
    }));
  }

  /** An adapter from given A [r, in] and B [out, r] per (layer, module). */
  static fromTensors(
    rt: GpuRuntime,
    config: ModelConfig,
    settings: LoraSettings,
    get: (layer: number, target: LoraTarget, r: number, inF: number, outF: number) => { a: Float32Array; b: Float32Array },
  ): LoraAdapter {
    const adapter = new LoraAdapter(settings, config.numLayers);
    const r = settings.r;
    for (let layer = 0; layer < config.numLayers; layer++) {
      for (const target of LORA_TARGETS) {
        if (!settings.targetModules.includes(target)) continue;
        const [outF, inF] = targetShape(config, target);
        const { a, b } = get(layer, target, r, inF, outF);
        if (a.length !== r * inF || b.length !== outF * r) {
          throw new Error(`${peftLoraName(layer, target, 'A')}: expected A [${r}, ${inF}] and B [${outF}, ${r}]`);
        }
        const both = new Float32Array(a.length + b.length);
        both.set(a);
        both.set(b, a.length);
        const label = `lora.${layer}.${target}`;
        const m = new LoraModule(layer, target, r, inF, outF, rt.upload(both, label), rt.create(both.byteLength, `${label}.grad`));
        adapter.modules.set(key(layer, target), m);
      }
    }
    return adapter;
  }

  get(layer: number, target: LoraTarget): LoraModule | undefined {
    return this.modules.get(key(layer, target));
  }

  get parameterCount(): number {
    let n = 0;
    for (const m of this.modules.values()) n += m.size;
    return n;
  }

  /** The expansion y += s·u·Bᵀ of module m, for the frozen linear's forward to add (after `project`). */
  expansion(m: LoraModule, u: GPUBuffer): LoraEpilogue {
    return { u, params: m.params, offset: m.aSize, r: m.r, scale: this.scale };
  }

  /**
   * u = dropout(x)·Aᵀ [T, r], kept for the backward and for the expansion. `microStep` keys the
   * dropout mask (null: eval, no dropout).
   */
  project(rt: GpuRuntime, m: LoraModule, x: GPUBuffer, T: number, microStep: number | null, u: GPUBuffer): void {
    gemm(rt, x, m.params, u, { M: T, N: m.r, K: m.inF, transB: true, dropout: this.drop('A', m, microStep) });
  }

  /**
   * Accumulates gA and gB, leaving du = s·dy·B [T, r] in `du` for the input gradient (`inputGrad`).
   * Must follow the forward (or project) of the same module and micro-step: `u` is what it left, and
   * the dropout mask is regenerated.
   */
  backward(rt: GpuRuntime, m: LoraModule, x: GPUBuffer, dy: GPUBuffer, T: number, microStep: number | null, u: GPUBuffer, du: GPUBuffer): void {
    const s = this.scale;
    // gB[out, r] += s · dyᵀ[out, T] · u[T, r]
    gemm(rt, dy, u, m.grads, { M: m.outF, N: m.r, K: T, transA: true, alpha: s, beta: 1, offC: m.aSize });
    // du[T, r] = s · dy[T, out] · B[out, r]
    gemm(rt, dy, m.params, du, { M: T, N: m.r, K: m.outF, alpha: s, offB: m.aSize });
    // gA[r, in] += duᵀ[r, T] · dropout(x)[T, in]
    gemm(rt, du, x, m.grads, { M: m.r, N: m.inF, K: T, transA: true, beta: 1, dropout: this.drop('B', m, microStep) });
  }

  /** The input gradient dx += dropout(du·A) [T, in] of module m (after `backward` left du), for the frozen linear's backward to add. */
  inputGrad(m: LoraModule, du: GPUBuffer, microStep: number | null): LoraGradEpilogue {
    const d = this.drop('C', m, microStep);
    return { du, params: m.params, offset: 0, r: m.r, dropout: d && { key: d.key, p: d.p, slot: d.slot } };
  }

  /** Zeroes every gradient buffer. */
  zeroGrads(rt: GpuRuntime): void {
    for (const m of this.modules.values()) rt.write(m.grads, new Float32Array(m.size));
  }

  /** Reads A and B of every module back (PEFT names → data). */
  async read(rt: GpuRuntime): Promise<Map<string, { shape: [number, number]; data: Float32Array }>> {
    const out = new Map<string, { shape: [number, number]; data: Float32Array }>();
    for (const m of this.modules.values()) {
      const all = await rt.readF32(m.params, m.size);
      out.set(peftLoraName(m.layer, m.target, 'A'), { shape: [m.r, m.inF], data: all.slice(0, m.aSize) });
      out.set(peftLoraName(m.layer, m.target, 'B'), { shape: [m.outF, m.r], data: all.slice(m.aSize) });
    }
    return out;
  }

  /** Reads the gradients back under the PEFT names of their tensors. */
  async readGrads(rt: GpuRuntime): Promise<Map<string, { shape: [number, number]; data: Float32Array }>> {
    const out = new Map<string, { shape: [number, number]; data: Float32Array }>();
    for (const m of this.modules.values()) {
      const all = await rt.readF32(m.grads, m.size);
      out.set(peftLoraName(m.layer, m.target, 'A'), { shape: [m.r, m.inF], data: all.slice(0, m.aSize) });
      out.set(peftLoraName(m.layer, m.target, 'B'), { shape: [m.outF, m.r], data: all.slice(m.aSize) });
    }
    return out;
  }

  destroy(): void {
    for (const m of this.modules.values()) {
      m.params.destroy();
      m.grads.destroy();
    }
    this.modules.clear();
  }

  /** The fused-dropout spec of one product, or undefined in eval mode / with p = 0. */
  private drop(on: 'A' | 'B' | 'C', m: LoraModule, microStep: number | null) {
    if (microStep === null || this.settings.dropout <= 0) return undefined;
    return { on, key: dropoutKey(this.settings.seed, microStep, m.layer, m.target), p: this.settings.dropout, slot: `lora.${m.layer}.${m.target}.${on}` };
  }
}

function key(layer: number, target: LoraTarget): string {
  return `${layer}.${target}`;
}
