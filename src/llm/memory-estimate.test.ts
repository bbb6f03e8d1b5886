// The memory estimate: parameter counts of real models (the numbers the Hub shows), 4-bit sizes,
// the verdict at budgets around the estimate, buffer limits, parameter counts from safetensors
// headers, and — on the GPU — the estimate against the engine's own accounting (rt.memory.peak
// around real training steps), within 10%.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { parseModelConfig } from '../model/config.ts';
import type { ModelFiles } from '../model/model-files.ts';
import { LORA_TARGETS } from '../model/names.ts';
import { modelFolder } from '../node/model-folder.ts';
import { sharedPath } from '../node/shared.ts';
import { syntheticLlama } from '../bench/train.bench.ts';
import { makeBatch } from './batch.ts';
import { LLAMA32_1B, QWEN25_05B, SMOLLM2_135M, TINYLLAMA } from './known-dims.ts';
import { loadGpuModel } from './load.ts';
import { LoraAdapter } from './lora.ts';
import { Trainer } from './trainer.ts';
import {
  defaultGpuBudget,
  dimsFromConfig,
  estimateMemory,
  logitsChunkRows,
  paramCounts,
  paramsFromSafetensorsHeaders,
  quant4Bytes,
  weightBytes,
} from './memory-estimate.ts';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

const ALL = LORA_TARGETS;

describe('parameter counts', () => {
  it('match the counts the Hub reports for real models', () => {
    expect(paramCounts(SMOLLM2_135M).total).toBe(134_515_008);
    expect(paramCounts(QWEN25_05B).total).toBe(494_032_768);
    expect(paramCounts(LLAMA32_1B).total).toBe(1_235_814_400);
    expect(paramCounts(TINYLLAMA).total).toBe(1_100_048_384);
  });

  it('come from safetensors headers too, 4-bit packed weights counted two per byte', () => {
    const header = {
      __metadata__: { format: 'pt' },
      'model.embed_tokens.weight': { dtype: 'BF16', shape: [100, 8], data_offsets: [0, 1600] },
      'model.layers.0.self_attn.q_proj.weight': { dtype: 'U8', shape: [32, 1], data_offsets: [0, 32] },
      'model.layers.0.self_attn.q_proj.weight.absmax': { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      'model.layers.0.self_attn.q_proj.weight.quant_map': { dtype: 'F32', shape: [16], data_offsets: [0, 64] },
      'model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4': { dtype: 'U8', shape: [90], data_offsets: [0, 90] },
      'model.norm.weight': { dtype: 'BF16', shape: [8], data_offsets: [0, 16] },
    };
    expect(paramsFromSafetensorsHeaders([header])).toBe(800 + 64 + 8);
  });

  it('from the real stories260K header equal the count from its config', () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const buf = readFileSync(join(dir, 'model.safetensors'));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
    const config = parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    expect(paramsFromSafetensorsHeaders([header])).toBe(paramCounts(dimsFromConfig(config)).total);
  });
});

describe('weight bytes', () => {
  it('4-bit: half a byte per weight plus the absmax (f32 per 64, or a byte per 64 with double quant)', () => {
    const n = 4096 * 4096;
    expect(quant4Bytes(n, false)).toBe(n / 2 + (n / 64) * 4);
    expect(quant4Bytes(n, true)).toBe(n / 2 + n / 64 + (n / 64 / 256) * 4 + 1024);
    // bits per parameter: 4.5 without, ~4.127 with double quant (the QLoRA paper's 0.5 → 0.127)
    expect((quant4Bytes(n, false) * 8) / n).toBeCloseTo(4.5, 5);
    expect((quant4Bytes(n, true) * 8) / n).toBeCloseTo(4.127, 2);
  });

  it('orders the formats and keeps the non-linear weights f32 in the formats the engine runs', () => {
    const w = ['fp32', 'fp16', 'int8', 'nf4', 'nf4-dq'].map((f) => weightBytes(LLAMA32_1B, f as never).linear);
    for (let i = 1; i < w.length; i++) expect(w[i]).toBeLessThan(w[i - 1]!);
    const p = paramCounts(LLAMA32_1B);
    expect(weightBytes(LLAMA32_1B, 'fp16').total).toBe(p.total * 2);
    expect(weightBytes(LLAMA32_1B, 'nf4-dq').other).toBeGreaterThanOrEqual(p.other * 4);
    expect(weightBytes(LLAMA32_1B, 'nf4-dq').engine).toBe(true);
    expect(weightBytes(LLAMA32_1B, 'int8').engine).toBe(false);
  });
});

describe('verdict', () => {
  const base = { model: SMOLLM2_135M, lora: { r: 16, targetModules: ALL }, batchSize: 1, seqLen: 512 } as const;

  it('fits when the step is within the budget, with the numbers in the reason', () => {
    const e = estimateMemory({ ...base, budget: 4 * GiB });
    expect(e.verdict).toBe('fits');
    expect(e.total).toBe(e.base.total + e.training.params + e.training.grads + e.training.adam + e.training.activations + e.training.scratch);
    expect(e.training.params).toBe(e.training.loraParams * 4);
    expect(e.training.adam).toBe(e.training.loraParams * 8);
    expect(e.reason).toMatch(/of the 4 GiB budget/);
    // 512 rows of 49152 logits would be 96 MiB; the chunk is no larger than one layer's MLP
    // activation (512·1536 floats = 16 rows), but at least 64 rows
    expect(e.training.logitsChunk).toBe(64 * 49152 * 4);
  });

  it('sizes the logits chunk by the largest layer activation, at least 64 rows, under 64 MiB', () => {
    const d = { hiddenSize: 64, intermediateSize: 172, vocabSize: 512 };
    expect(logitsChunkRows(512, d)).toBe(172); // 512·172 floats, the MLP activation
    expect(logitsChunkRows(40, d)).toBe(40); // fewer rows than 64: all of them
    expect(logitsChunkRows(100_000, { hiddenSize: 4096, intermediateSize: 14336, vocabSize: 128256 })).toBe(130); // 64 MiB cap
  });

  it('fits with paging between the paged minimum and the total, too large below it', () => {
    const big = { ...base, lora: { r: 256, targetModules: ALL } };
    const e = estimateMemory({ ...big, budget: 8 * GiB });
    expect(e.minimumWithPaging).toBeLessThan(e.total);
    const mid = Math.floor((e.minimumWithPaging + e.total) / 2);
    expect(estimateMemory({ ...big, budget: mid }).verdict).toBe('paging');
    const low = estimateMemory({ ...big, budget: e.minimumWithPaging - 1 });
    expect(low.verdict).toBe('too-large');
    expect(low.reason).toMatch(/lower the sequence length/);
  });

  it('is too large when one buffer exceeds what the adapter can bind, naming it', () => {
    const e = estimateMemory({ ...base, model: LLAMA32_1B, budget: 64 * GiB, limits: { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 512 * MiB } });
    expect(e.largestBuffer.what).toMatch(/embedding/);
    expect(e.largestBuffer.bytes).toBe(128256 * 2048 * 4);
    expect(e.verdict).toBe('too-large');
    expect(e.reason).toMatch(/at most 512 MiB per buffer/);
  });

  it('grows activations with batch × sequence length, and the default budget follows the buffer limit', () => {
    const a = estimateMemory({ ...base, seqLen: 256 }).training.activations;
    const b = estimateMemory({ ...base, seqLen: 1024 }).training.activations;
    expect(b).toBeGreaterThan(2 * a); // ×4 tokens; the logits chunk is capped
    expect(defaultGpuBudget({ maxBufferSize: 2 * GiB })).toBe(2 * GiB);
    expect(defaultGpuBudget({ maxBufferSize: 64 * MiB })).toBe(256 * MiB);
    expect(defaultGpuBudget({ maxBufferSize: 64 * GiB })).toBe(4 * GiB);
    expect(defaultGpuBudget()).toBe(2 * GiB);
  });
});

describe('against the engine’s own accounting (GPU)', () => {
  let rt: GpuRuntime;
  beforeAll(async () => {
    rt = await createNodeRuntime();
  });
  afterAll(() => rt?.destroy());

  async function measure(files: ModelFiles, B: number, S: number, r: number) {
    rt.resetPeak();
    const before = rt.memory.live;
    const { model, config } = await loadGpuModel(rt, files, { quant: 'nf4', maxPositions: S });
    const lora = LoraAdapter.init(rt, config, { r, alpha: 2 * r, dropout: 0.05, useRslora: false, targetModules: LORA_TARGETS, seed: 1 });
    const trainer = new Trainer(rt, model, lora, {
      lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0.3, schedule: 'constant', warmupSteps: 0, totalSteps: 10,
    });
    const ids = Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => (b * 977 + s * 131 + 7) % config.vocabSize));
    await trainer.trainStep([makeBatch({ inputIds: ids })]);
    await trainer.trainStep([makeBatch({ inputIds: ids })]);
    const peak = rt.memory.peak - before;
    const weights = model.weightBytes;
    trainer.destroy();
    lora.destroy();
    model.destroy();
    const est = estimateMemory({ model: dimsFromConfig(config), lora: { r, targetModules: LORA_TARGETS }, batchSize: B, seqLen: S });
    return { peak, weights, est };
  }

  it('stories260K (B=4, S=64, r=16): the estimate is within 10% of the measured peak', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const { peak, weights, est } = await measure(modelFolder(dir), 4, 64, 16);
    console.log(`stories260K: estimate ${est.total} B, measured peak ${peak} B (×${(est.total / peak).toFixed(3)})`);
    expect(est.base.total).toBe(weights);
    expect(Math.abs(est.total - peak) / peak).toBeLessThan(0.1);
  });

  it('a synthetic Llama (hidden 512, 4 layers, vocab 4096; B=1, S=128, r=16): within 10%', async () => {
    const { peak, weights, est } = await measure(syntheticLlama(), 1, 128, 16);
    console.log(`synthetic Llama: estimate ${est.total} B, measured peak ${peak} B (×${(est.total / peak).toFixed(3)})`);
    expect(est.base.total).toBe(weights);
    expect(Math.abs(est.total - peak) / peak).toBeLessThan(0.1);
  });
});
