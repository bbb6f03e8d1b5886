// Frozen base linear layers on the GPU: y = x·Wᵀ (+ b) with W [out, in], and the input gradient
// dx = dy·W. Two kinds behind one interface: full precision (f32 W, gemm.wgsl) and 4-bit
// (NF4/FP4 packed W dequantized in registers, matmul4.wgsl). No weight gradient: the base is
// frozen; LoRA adds its own path on top (lora.ts): its expansion s·u·Bᵀ is handed to the forward
// and its input gradient dropout(du·A) to the backward, which fuse them into the 4-bit products'
// epilogues where the kernels and device allow (one dispatch, y / dx written once) and otherwise add
// them with a gemm.
//
// Buffers: x [T, in], y [T, out], dy [T, out], dx [T, in], f32 row-major.

import type { GpuRuntime } from '../gpu/runtime.ts';
import { gemm } from '../nn/gemm.ts';
import type { Linear4, LoraEpilogue, LoraGradEpilogue } from '../quant/gpu/matmul4.ts';
import type { GpuQuant4 } from '../quant/gpu/gpu-quant.ts';

export interface FrozenLinear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly kind: 'f32' | 'nf4' | 'fp4';
  /** Bytes held on the GPU (weight, quantization state, bias). */
  readonly bytes: number;
  /** y = x·Wᵀ (+ b) (+ lora.scale · u·Bᵀ), overwriting y. */
  forward(rt: GpuRuntime, x: GPUBuffer, y: GPUBuffer, T: number, lora?: LoraEpilogue): void;
  /** dx = dy·W, or dx += dy·W when `accumulate` (+ dropout(du·A), a LoRA input gradient). */
  backward(rt: GpuRuntime, dy: GPUBuffer, dx: GPUBuffer, T: number, accumulate: boolean, lora?: LoraGradEpilogue): void;
  destroy(): void;
}

/** Adds the bias row b [out] to every row of y [T, out] (gemm with a ones column). */
export function addBias(rt: GpuRuntime, y: GPUBuffer, bias: GPUBuffer, ones: GPUBuffer, T: number, out: number): void {
  // y[T,out] += 1[T,1] · b[1,out]
  gemm(rt, ones, bias, y, { M: T, N: out, K: 1, beta: 1 });
}

/** y[T, out] += e.scale · u[T, r]·B[out, r]ᵀ as its own product (where no kernel fuses it). */
export function addLoraExpansion(rt: GpuRuntime, y: GPUBuffer, e: LoraEpilogue, T: number, out: number): void {
  gemm(rt, e.u, e.params, y, { M: T, N: out, K: e.r, transB: true, alpha: e.scale, beta: 1, offB: e.offset });
}

/** dx[T, in] += dropout(du[T, r]·A[r, in]) as its own product (where no kernel fuses it). */
export function addLoraInputGrad(rt: GpuRuntime, dx: GPUBuffer, e: LoraGradEpilogue, T: number, inF: number): void {
  const dropout = e.dropout && { on: 'C' as const, ...e.dropout };
  gemm(rt, e.du, e.params, dx, { M: T, N: inF, K: e.r, beta: 1, offB: e.offset, dropout });
}

export class F32Linear implements FrozenLinear {
  readonly kind = 'f32' as const;
  readonly bytes: number;
  private ones: GPUBuffer | null = null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    private readonly weight: GPUBuffer,
    private readonly bias: GPUBuffer | null,
  ) {
    this.bytes = weight.size + (bias?.size ?? 0);
  }

  static upload(rt: GpuRuntime, w: Float32Array, shape: [number, number], bias: Float32Array | null, label: string): F32Linear {
    const [out, inF] = shape;
    return new F32Linear(inF, out, rt.upload(w, `${label}.weight`), bias ? rt.upload(bias, `${label}.bias`) : null);
  }

  forward(rt: GpuRuntime, x: GPUBuffer, y: GPUBuffer, T: number, lora?: LoraEpilogue): void {
    gemm(rt, x, this.weight, y, { M: T, N: this.outFeatures, K: this.inFeatures, transB: true });
    if (this.bias) addBias(rt, y, this.bias, this.onesFor(rt, T), T, this.outFeatures);
    if (lora) addLoraExpansion(rt, y, lora, T, this.outFeatures);
  }

  backward(rt: GpuRuntime, dy: GPUBuffer, dx: GPUBuffer, T: number, accumulate: boolean, lora?: LoraGradEpilogue): void {
    gemm(rt, dy, this.weight, dx, { M: T, N: this.inFeatures, K: this.outFeatures, beta: accumulate ? 1 : 0 });
    if (lora) addLoraInputGrad(rt, dx, lora, T, this.inFeatures);
  }

  private onesFor(rt: GpuRuntime, T: number): GPUBuffer {
    if (!this.ones || this.ones.size < T * 4) {
      if (this.ones) rt.retire(this.ones);
      this.ones = rt.upload(new Float32Array(T).fill(1), 'ones');
    }
    return this.ones;
  }

  destroy(): void {
    this.weight.destroy();
    this.bias?.destroy();
    this.ones?.destroy();
  }
}

/** A frozen bitsandbytes 4-bit (NF4/FP4) linear: products dequantize W in registers. */
export class Quant4Linear implements FrozenLinear {
  readonly kind: 'nf4' | 'fp4';
  readonly bytes: number;

  constructor(private readonly lin: Linear4) {
    this.kind = lin.weight.type;
    this.bytes = lin.weightBytes + (lin.bias?.size ?? 0);
  }

  get inFeatures(): number {
    return this.lin.K;
  }

  get outFeatures(): number {
    return this.lin.N;
  }

  /** The GPU-resident quantized weight (for export and dequantization). */
  get weight(): GpuQuant4 {
    return this.lin.weight;
  }

  forward(rt: GpuRuntime, x: GPUBuffer, y: GPUBuffer, T: number, lora?: LoraEpilogue): void {
    if (lora && this.lin.fusesLora(rt, T, lora)) {
      this.lin.matmul(rt, x, T, y, lora);
      return;
    }
    this.lin.matmul(rt, x, T, y);
    if (lora) addLoraExpansion(rt, y, lora, T, this.outFeatures);
  }

  backward(rt: GpuRuntime, dy: GPUBuffer, dx: GPUBuffer, T: number, accumulate: boolean, lora?: LoraGradEpilogue): void {
    if (lora && this.lin.fusesLoraGrad(rt, lora)) {
      this.lin.matmulBackward(rt, dy, T, dx, accumulate, lora);
      return;
    }
    this.lin.matmulBackward(rt, dy, T, dx, accumulate);
    if (lora) addLoraInputGrad(rt, dx, lora, T, this.inFeatures);
  }

  destroy(): void {
    this.lin.destroy();
  }
}
