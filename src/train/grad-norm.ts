// Global L2 norm of many gradient buffers on the GPU (shaders/reduce.wgsl) and the clip
// coefficient of torch.nn.utils.clip_grad_norm_, left in a GPU buffer for the AdamW kernel so a
// step needs no readback; the norm can be read afterwards for logging.
// torch (torch/nn/utils/clip_grad.py): total_norm = ‖(‖g_1‖, …, ‖g_k‖)‖₂ (= √Σ g²),
// clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1, and every grad is
// multiplied by it unconditionally (no `if clip_coef < 1` branch).

import { usesCpuKernels, type GpuRuntime } from '../gpu/runtime.ts';
import { persistentUniform } from './adamw.ts';

export interface GradSource {
  buffer: GPUBuffer;
  /** Elements (f32) to include, from the start of the buffer. */
  length: number;
}

/** Index of each value in `GradNorm.result`. */
export const GRAD_NORM = { norm: 0, coef: 1, sumSq: 2 } as const;

/** At most this many partial sums (workgroups) per buffer (workgroup kernel). */
const MAX_PARTIALS = 64;
/** Elements per partial sum of the row kernel (CHUNK in reduce.wgsl), and its workgroup size. */
const ROW_CHUNK = 1024;
const ROW_WG = 16;

/**
 * 'workgroup': workgroup reductions (GPUs); 'rows': one invocation per 1024 elements, no barriers
 * (CPU adapters, where the workgroup kernel cost ~10% of a training step). Default by adapter.
 */
export type GradNormKernel = 'workgroup' | 'rows';

export class GradNorm {
  /** [norm, clip coefficient, sum of squares] (f32), written by `record`. */
  readonly result: GPUBuffer;
  private readonly partials: GPUBuffer;
  private readonly plan: Array<{ src: GradSource; groups: number; uniform: GPUBuffer }> = [];
  private readonly partialCount: number;
  private readonly kernel: GradNormKernel;

  constructor(private readonly rt: GpuRuntime, sources: GradSource[], kernel?: GradNormKernel) {
    this.kernel = kernel ?? (usesCpuKernels(rt) ? 'rows' : 'workgroup');
    let offset = 0;
    for (const src of sources) {
      if (!Number.isInteger(src.length) || src.length < 0 || src.length * 4 > src.buffer.size) {
        throw new Error(`grad-norm: buffer "${src.buffer.label}" has ${src.buffer.size} bytes, cannot hold ${src.length} floats`);
      }
      if (src.length === 0) continue;
      const partials = this.kernel === 'rows' ? Math.ceil(src.length / ROW_CHUNK) : Math.min(MAX_PARTIALS, Math.ceil(src.length / 256));
      const groups = this.kernel === 'rows' ? Math.ceil(partials / ROW_WG) : partials;
      this.plan.push({ src, groups, uniform: persistentUniform(rt, [src.length, offset], 'uu', 'grad-norm.partial') });
      offset += partials;
    }
    this.partialCount = offset;
    this.partials = rt.create(Math.max(1, offset) * 4, 'grad-norm.partials');
    this.result = rt.create(16, 'grad-norm.result');
  }

  /**
   * Records the reduction: afterwards result = [norm, coef, Σg²] with coef = 1 when
   * maxNorm ≤ 0 (clipping off). Pass `{ buffer: result, index: GRAD_NORM.coef }` to AdamW.step.
   */
  record(maxNorm: number): void {
    for (const { src, groups, uniform } of this.plan) {
      this.rt.dispatch('reduce', this.kernel === 'rows' ? 'sumsq_rows' : 'sumsq_partial', [uniform, src.buffer, this.partials], [groups]);
    }
    const params = this.rt.uniform([this.partialCount, maxNorm], 'uf');
    this.rt.dispatch('reduce', 'finalize', [params, this.partials, this.result], [1]);
  }

  /** Reads the last result back (submits pending work). */
  async read(): Promise<{ norm: number; coef: number; sumSq: number }> {
    const r = await this.rt.readF32(this.result, 3);
    return { norm: r[0]!, coef: r[1]!, sumSq: r[2]! };
  }

  destroy(): void {
    for (const p of this.plan) p.uniform.destroy();
    this.partials.destroy();
    this.result.destroy();
  }
}

// ---- CPU reference -----------------------------------------------------------------------

/** √(Σ over all arrays of x²) in float64. */
export function gradNormReference(arrays: ArrayLike<number>[]): number {
  let s = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

/** torch's clip coefficient: min(1, maxNorm / (norm + 1e-6)); 1 when clipping is off (maxNorm ≤ 0). */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
}
