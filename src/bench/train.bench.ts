// Training throughput and memory, measured in one run beside the best matmul rate the same
// runtime reaches: tokens/s and achieved GFLOP/s of a whole QLoRA step (NF4 base, LoRA on all
// seven linears, dropout, checkpointing, AdamW) on stories260K and on a larger synthetic Llama,
// and the peak GPU bytes against the analytic minimum of what a step must hold.

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ModelConfig } from '../model/config.ts';
import { parseModelConfig } from '../model/config.ts';
import type { ModelFiles } from '../model/model-files.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { LORA_TARGETS, modelTensorShapes, targetShape } from '../model/names.ts';
import { randomWeights } from '../model/tiny-model.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { gemm } from '../nn/gemm.ts';
import { quantize4bit } from '../quant/blockwise4.ts';
import { Linear4 } from '../quant/gpu/matmul4.ts';
import { matmulF32 } from '../quant/gpu/matmul-f32.ts';
import { loadGpuModel } from '../llm/load.ts';
import { LoraAdapter } from '../llm/lora.ts';
import { makeBatch } from '../llm/batch.ts';
import { Trainer } from '../llm/trainer.ts';
import { median, matmulGflops, timeGpu, type BenchResult } from './harness.ts';

export interface TrainBenchCase {
  name: string;
  files: ModelFiles;
  B: number;
  S: number;
  rank: number;
}

/** A synthetic Llama (random weights) as an in-memory model folder. */
export function syntheticLlama(over: Record<string, unknown> = {}): ModelFiles {
  const json = {
    model_type: 'llama',
    hidden_size: 512,
    intermediate_size: 1376,
    num_hidden_layers: 4,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    vocab_size: 4096,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    ...over,
  };
  const config = parseModelConfig(json);
  const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
  const weights = randomWeights(config, 5, 0.05);
  const st = writeSafetensors([...weights].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
  return memoryModelFiles({ 'config.json': JSON.stringify(json), 'model.safetensors': st });
}

/**
 * FLOPs one training step executes (checkpointing on): the forward; the recomputed forward, which
 * skips down_proj (x_{l+1} is kept; only its LoRA u = x·Aᵀ is redone); the backward: input
 * gradients through every frozen linear but layer 0's q/k/v (nothing below them trains), and per
 * LoRA module gB, du, gA and its input gradient (again not for layer 0's q/k/v); attention
 * backward counted as twice its forward; the LM head forward and backward.
 */
export function stepFlops(c: ModelConfig, B: number, S: number, r: number): number {
  const T = B * S;
  const attn = 2 * B * c.numHeads * S * S * c.headDim; // QKᵀ and PV, causal half of 4·S²·Dh, per layer
  let total = 0;
  for (let l = 0; l < c.numLayers; l++) {
    for (const t of LORA_TARGETS) {
      const [out, inF] = targetShape(c, t);
      const linear = 2 * T * out * inF;
      const project = 2 * T * r * inF; // u = x·Aᵀ
      const expand = 2 * T * r * out; // y += s·u·Bᵀ
      const firstQkv = l === 0 && (t === 'q_proj' || t === 'k_proj' || t === 'v_proj');
      total += linear + project + expand; // forward
      total += t === 'down_proj' ? project : linear + project + expand; // recompute
      total += (firstQkv ? 0 : linear) + expand /* gB */ + expand /* du */ + project /* gA */ + (firstQkv ? 0 : project); // backward
    }
    total += 2 * attn + 2 * attn; // forward + recompute, backward
  }
  return total + 2 * 2 * T * c.hiddenSize * c.vocabSize; // head forward and backward
}

/**
 * The bytes a step must hold at least: the frozen base as stored (4-bit linears with their
 * absmax, f32 embeddings, norms and RoPE table), LoRA parameters + gradients + Adam m and v
 * (4 × P f32), the checkpointed layer inputs ((N+1)·T·D f32), one layer's forward intermediates
 * and backward gradients, and nothing else (no logits chunk, no LoRA u, no scratch).
 */
export function analyticMinimum(c: ModelConfig, B: number, S: number, loraParams: number, baseBytes: number): number {
  const T = B * S;
  const D = c.hiddenSize;
  const F = c.intermediateSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const checkpoints = (c.numLayers + 1) * T * D * 4;
  const layer = T * (4 * D + 2 * qd + 2 * kvd + 3 * F + c.numHeads) * 4;
  const backward = T * (2 * D + F + 2 * qd + 2 * kvd) * 4;
  return baseBytes + 4 * loraParams * 4 + checkpoints + layer + backward;
}

/**
 * The best matmul rate this runtime reaches at one shape, measured here so the training ratio
 * has an honest reference even when the kernel benches did not run: the general gemm, the
 * register-tiled f32 kernel and the fused NF4 kernel (the fastest of the three sets the bar).
 */
async function bestMatmul(rt: GpuRuntime, quick: boolean): Promise<BenchResult[]> {
  const [M, K, N] = quick ? [128, 512, 512] : [256, 1024, 1024];
  const ops = productOperands(rt, M, N, K);
  const { x, w, y } = ops;
  const lin = ops.nf4();
  const repeats = quick ? 3 : 5;
  const shape = `${M}x${K}x${N}`;
  const out: BenchResult[] = [];
  for (const [name, run] of [
    ['f32 matmul (gemm, x·Wᵀ)', () => gemm(rt, x, w, y, { M, N, K, transB: true })],
    ['f32 matmul (register tile, x·Wᵀ)', () => matmulF32(rt, x, w, M, N, K, { out: y })],
    ['NF4 fused matmul (x·Wᵀ)', () => lin.matmul(rt, x, M, y)],
  ] as const) {
    const t = await timeGpu(rt, run, { repeats });
    out.push({ name, shape, ms: t.ms, gflops: matmulGflops(M, K, N, t.ms), timing: t.method });
  }
  ops.destroy();
  return out;
}

/** Operands of a bench product y[M,N] = x[M,K]·Wᵀ on the GPU: x, W (f32), y, and W as NF4 on first use. */
function productOperands(rt: GpuRuntime, M: number, N: number, K: number) {
  const x = rt.upload(new Float32Array(M * K).map((_, i) => Math.sin(i)));
  const wData = new Float32Array(N * K).map((_, i) => 0.02 * Math.cos(i * 0.37));
  const w = rt.upload(wData);
  const y = rt.create(M * N * 4);
  let lin: Linear4 | null = null;
  return {
    x,
    w,
    y,
    nf4(): Linear4 {
      if (!lin) {
        const q = quantize4bit(wData, { type: 'nf4', blocksize: 64 });
        lin = Linear4.upload(rt, { type: 'nf4', blocksize: 64, shape: [N, K], packed: q.packed, absmax: q.absmax, nested: null });
      }
      return lin;
    },
    destroy(): void {
      lin?.destroy();
      [x, w, y].forEach((b) => b.destroy());
    },
  };
}

/** One matrix product of a forward pass: y[M,N] = x[M,K]·Wᵀ, `count` times per pass. */
export interface ForwardProduct {
  what: string;
  M: number;
  N: number;
  K: number;
  frozen: boolean;
  count: number;
}

/**
 * The matrix products of one forward pass (T tokens, LoRA rank r on all seven linears): per
 * distinct shape, the frozen linear x·Wᵀ and the LoRA projection x·Aᵀ and expansion u·Bᵀ, and the
 * LM head. The backward runs the same sizes transposed.
 */
export function forwardProducts(c: ModelConfig, T: number, r: number): ForwardProduct[] {
  const byShape = new Map<string, ForwardProduct>();
  const add = (p: Omit<ForwardProduct, 'count'>) => {
    const k = `${p.frozen}:${p.M}x${p.N}x${p.K}`;
    const seen = byShape.get(k);
    if (seen) seen.count += c.numLayers;
    else byShape.set(k, { ...p, count: c.numLayers });
  };
  for (const t of LORA_TARGETS) {
    const [out, inF] = targetShape(c, t);
    add({ what: `${t} x·Wᵀ`, M: T, N: out, K: inF, frozen: true });
    add({ what: `${t} LoRA x·Aᵀ`, M: T, N: r, K: inF, frozen: false });
    add({ what: `${t} LoRA u·Bᵀ`, M: T, N: out, K: r, frozen: false });
  }
  return [...byShape.values(), { what: 'LM head', M: T, N: c.vocabSize, K: c.hiddenSize, frozen: false, count: 1 }];
}

/**
 * The rate the forward pass's own products reach, each timed alone at its exact shape: the frozen
 * linears with the fused NF4 kernel (a QLoRA step must multiply by the 4-bit weights), the LoRA
 * products and the head with the faster of the register-tiled f32 kernel and gemm; total FLOPs
 * over total time. Attention, norms and the optimizer only add time, so a step of this model is not
 * to be expected above this rate on this runtime (the LoRA epilogues fused into the 4-bit products
 * are the one way a step can beat a product timed alone).
 */
async function productsCeiling(rt: GpuRuntime, c: ModelConfig, T: number, r: number, quick: boolean): Promise<number> {
  let flops = 0;
  let ms = 0;
  for (const p of forwardProducts(c, T, r)) {
    const { M, N, K } = p;
    const ops = productOperands(rt, M, N, K);
    const { x, w, y } = ops;
    const runs: (() => void)[] = [];
    if (p.frozen) {
      const lin = ops.nf4();
      runs.push(() => lin.matmul(rt, x, M, y));
    } else {
      runs.push(() => gemm(rt, x, w, y, { M, N, K, transB: true }), () => matmulF32(rt, x, w, M, N, K, { out: y }));
    }
    let best = Infinity;
    for (const run of runs) best = Math.min(best, (await timeGpu(rt, run, { repeats: quick ? 2 : 3, targetMs: quick ? 30 : 60 })).ms);
    flops += 2 * M * N * K * p.count;
    ms += best * p.count;
    ops.destroy();
  }
  return flops / (ms * 1e6);
}

export async function benchTrain(rt: GpuRuntime, cases: TrainBenchCase[], opts: { quick: boolean; matmulGflops?: number }): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const mms = await bestMatmul(rt, opts.quick);
  const best = Math.max(...mms.map((m) => m.gflops!), opts.matmulGflops ?? 0);
  out.push(...mms);
  out[out.length - 1] = { ...out[out.length - 1]!, note: `reference rate for the training ratio: ${best.toFixed(2)} GFLOP/s (best matmul in this run)` };
  for (const cs of cases) {
    rt.resetPeak();
    const base = rt.memory.live;
    const { model, config } = await loadGpuModel(rt, cs.files, { quant: 'nf4', maxPositions: cs.S });
    const weights4 = model.weightBytes;
    const lora = LoraAdapter.init(rt, config, { r: cs.rank, alpha: 2 * cs.rank, dropout: 0.05, useRslora: false, targetModules: LORA_TARGETS, seed: 1 });
    const trainer = new Trainer(rt, model, lora, {
      lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0.3, schedule: 'constant', warmupSteps: 0, totalSteps: 100,
    });
    const ids = Array.from({ length: cs.B }, (_, b) => Array.from({ length: cs.S }, (_, s) => (b * 977 + s * 131 + 7) % config.vocabSize));
    const batch = makeBatch({ inputIds: ids });
    // Warm-up: pipelines, buffers, and the parameter blocks that change every step, whose buffers
    // are recycled only after a few submits (see gpu/uniforms.ts). With one warm-up step an
    // H100's first case timed 3× its steady state.
    for (let i = 0; i < 3; i++) await trainer.trainStep([batch]);
    const times: number[] = [];
    for (let i = 0; i < (opts.quick ? 2 : 4); i++) times.push((await trainer.trainStep([batch])).ms);
    const ms = median(times);
    const flops = stepFlops(config, cs.B, cs.S, cs.rank);
    const gflops = flops / (ms * 1e6);
    const peak = rt.memory.peak - base;
    const min = analyticMinimum(config, cs.B, cs.S, lora.parameterCount, weights4);
    const ceiling = await productsCeiling(rt, config, cs.B * cs.S, cs.rank, opts.quick);
    out.push({
      name: `QLoRA training step, ${cs.name}`,
      shape: `B=${cs.B} S=${cs.S} r=${cs.rank}`,
      ms,
      gflops,
      ratio: gflops / best,
      ratioOf: 'best matmul GFLOP/s in this run',
      goal: '≥ 0.5× the matmul rate',
      met: gflops / best >= 0.5,
      timing: 'wall',
      extra: {
        tokensPerSecond: Math.round(((cs.B * cs.S * 1000) / ms) * 10) / 10,
        stepGflop: Math.round(flops / 1e7) / 100,
        peakBytes: peak,
        minimumBytes: min,
        peakOverMinimum: Math.round((peak / min) * 100) / 100,
        memoryGoal: '≤ 1.3×',
        productsCeilingGflops: Math.round(ceiling * 100) / 100,
        productsCeilingRatio: Math.round((ceiling / best) * 100) / 100,
      },
    });
    trainer.destroy();
    lora.destroy();
    model.destroy();
  }
  return out;
}
