// Merged export: the merged model alone (quant none, no adapter) gives the logits of base + adapter,
// from an f32 base and from an NF4 base (merged into the dequantized weights); the CPU merge agrees
// with the GPU one; F16 output is the F32 merge rounded to f16; shards come with a valid index.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { openSafetensors, writeSafetensors } from '../formats/safetensors.ts';
import { parseIndex, INDEX_FILE } from '../formats/safetensors-index.ts';
import { bytesSource } from '../formats/byte-source.ts';
import { f16ToF32 } from '../formats/dtypes.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { openCheckpoint } from '../model/weights.ts';
import { tinyConfigJson, randomWeights, randomLoraTensors } from '../model/tiny-model.ts';
import { parseModelConfig } from '../model/config.ts';
import { LORA_TARGETS, modelTensorShapes, peftLoraName, weightName } from '../model/names.ts';
import { loadGpuModel, type QuantChoice } from '../llm/load.ts';
import { LoraAdapter } from '../llm/lora.ts';
import { makeBatch } from '../llm/batch.ts';
import { unzipSync } from 'fflate';
import { collectZip, memorySink } from './sink.ts';
import { addLoraDelta, mergeOnCpu, mergeOnGpu, planShards } from './merge.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const R = 4;
const ALPHA = 8;
const batch = makeBatch({ inputIds: [[3, 17, 5, 9, 22, 41, 8], [7, 1, 33, 2, 12, 4, 19]] });

function tinyFolder(family: 'qwen2' | 'llama', extra: Record<string, unknown> = {}) {
  const json = { ...tinyConfigJson(family), _name_or_path: '/home/me/models/tiny', ...extra };
  const config = parseModelConfig(json);
  const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
  const weights = randomWeights(config, 5);
  const st = writeSafetensors([...weights].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
  const files = memoryModelFiles({
    'config.json': JSON.stringify(json),
    'model.safetensors': st,
    'tokenizer.json': '{"fake": true}',
    'tokenizer_config.json': '{"chat_template": "x"}',
    'README.md': '# base model card, not carried over',
  });
  return { json, config, files };
}

function adapterFor(config: ReturnType<typeof parseModelConfig>, useRslora = false) {
  const tensors = randomLoraTensors(config, R, LORA_TARGETS, { seed: 9, std: 0.2 });
  const settings = { r: R, alpha: ALPHA, dropout: 0, useRslora, targetModules: LORA_TARGETS, seed: 0 };
  const lora = LoraAdapter.fromTensors(rt, config, settings, (l, t) => ({ a: tensors.get(peftLoraName(l, t, 'A'))!, b: tensors.get(peftLoraName(l, t, 'B'))! }));
  const adapterTensors = new Map([...tensors].map(([n, d]) => [n, { shape: [0, 0], data: d }]));
  return { lora, settings, adapterTensors };
}

function expectClose(a: Float32Array, b: Float32Array, tol: number) {
  expect(a.length).toBe(b.length);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  expect(worst / scale).toBeLessThan(tol);
}

async function mergedLogits(files: Map<string, Uint8Array>) {
  const { model } = await loadGpuModel(rt, memoryModelFiles(files), { quant: 'none' });
  try {
    return await model.logits(batch, null);
  } finally {
    model.destroy();
  }
}

describe('merged export', () => {
  it('f32 base: merged logits (no adapter) equal base + adapter logits; config and tokenizer files', async () => {
    const { config, files } = tinyFolder('qwen2');
    const { model } = await loadGpuModel(rt, files, { quant: 'none' });
    const { lora } = adapterFor(config, true);
    const want = await model.logits(batch, lora);
    const base = await model.logits(batch, null);
    const sink = memorySink();
    const res = await mergeOnGpu(rt, model, lora, await openCheckpoint(files), sink, { dtype: 'f32', files });
    expect(res).toMatchObject({ merged: config.numLayers * 7, shards: 1, dtype: 'f32', tensors: modelTensorShapes(config).length });
    expect(res.files).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const cfg = JSON.parse(new TextDecoder().decode(sink.files.get('config.json')!));
    expect(cfg.torch_dtype).toBe('float32');
    expect(cfg._name_or_path).toBeUndefined(); // a local path is dropped
    expect(cfg.hidden_size).toBe(32);
    const got = await mergedLogits(sink.files);
    expectClose(got, want, 2e-5);
    let moved = 0;
    for (let i = 0; i < base.length; i++) moved = Math.max(moved, Math.abs(base[i]! - want[i]!));
    expect(moved).toBeGreaterThan(1e-2); // the adapter matters
    const st = await openSafetensors(bytesSource(sink.files.get('model.safetensors')!));
    expect(st.header.metadata).toEqual({ format: 'pt' });
    expect(st.info(weightName(0, 'q_proj'))).toMatchObject({ dtype: 'F32', shape: [32, 32] });
    expect(st.has('model.layers.0.self_attn.q_proj.bias')).toBe(true);
    lora.destroy();
    model.destroy();
  });

  it('NF4 base: merged into the dequantized weights; CPU merge agrees; F16 is the F32 merge rounded', async () => {
    const { config, files } = tinyFolder('llama', { quantization_config: { quant_method: 'none-really' } });
    const quant: QuantChoice = 'nf4';
    const { model } = await loadGpuModel(rt, files, { quant });
    const { lora, settings, adapterTensors } = adapterFor(config);
    const want = await model.logits(batch, lora);
    const ckpt = await openCheckpoint(files);
    const f32 = memorySink();
    await mergeOnGpu(rt, model, lora, ckpt, f32, { dtype: 'f32' });
    expect(JSON.parse(new TextDecoder().decode(f32.files.get('config.json')!)).quantization_config).toBeUndefined();
    expectClose(await mergedLogits(f32.files), want, 2e-5);

    // the CPU path (quantize + dequantize + s·B·A on the CPU) writes the same weights
    const cpu = memorySink();
    await mergeOnCpu(config, ckpt, { config: settings, tensors: adapterTensors }, cpu, { dtype: 'f32', quant: 'nf4' });
    const [g, c] = [await openCheckpoint(memoryModelFiles(f32.files)), await openCheckpoint(memoryModelFiles(cpu.files))];
    for (const name of g.names()) expectClose(await c.readFloat32(name), await g.readFloat32(name), 1e-6);

    // F16: every value the F32 merge rounded to half precision; logits close
    const f16 = memorySink();
    await mergeOnGpu(rt, model, lora, ckpt, f16, { dtype: 'f16' });
    const h = await openSafetensors(bytesSource(f16.files.get('model.safetensors')!));
    expect(JSON.parse(new TextDecoder().decode(f16.files.get('config.json')!)).torch_dtype).toBe('float16');
    for (const name of h.names()) {
      expect(h.info(name).dtype).toBe('F16');
      const ref = await g.readFloat32(name);
      const raw = await h.readBytes(name);
      const halves = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      for (let i = 0; i < ref.length; i++) {
        expect(Math.abs(f16ToF32(halves[i]!) - ref[i]!)).toBeLessThanOrEqual(Math.max(Math.abs(ref[i]!) * 2 ** -11, 2 ** -25));
      }
    }
    expectClose(await mergedLogits(f16.files), want, 2e-2);
    lora.destroy();
    model.destroy();
  });

  it('shards past maxShardBytes with a valid model.safetensors.index.json that loads', async () => {
    const { config, files } = tinyFolder('qwen2');
    const { model } = await loadGpuModel(rt, files, { quant: 'nf4' });
    const { lora } = adapterFor(config);
    const want = await model.logits(batch, lora);
    const sink = memorySink();
    const res = await mergeOnGpu(rt, model, lora, await openCheckpoint(files), sink, { dtype: 'f32', maxShardBytes: 10_000 });
    expect(res.shards).toBeGreaterThan(2);
    expect(res.files).toContain(INDEX_FILE);
    expect(sink.files.has('model.safetensors')).toBe(false);
    const index = parseIndex(new TextDecoder().decode(sink.files.get(INDEX_FILE)!));
    expect(index.shards).toHaveLength(res.shards);
    expect(index.shards[0]).toBe(`model-00001-of-${String(res.shards).padStart(5, '0')}.safetensors`);
    expect([...index.weightMap.keys()].sort()).toEqual(modelTensorShapes(config).map((t) => t.name).sort());
    let total = 0;
    for (const shard of index.shards) {
      const st = await openSafetensors(bytesSource(sink.files.get(shard)!, shard));
      expect(st.header.dataLength).toBeLessThanOrEqual(Math.max(10_000, ...st.header.tensors.map((t) => t.end - t.begin)));
      for (const n of st.names()) expect(index.weightMap.get(n)).toBe(shard);
      total += st.header.dataLength;
    }
    expect(index.totalSize).toBe(total);
    expect(index.totalParameters).toBe(total / 4);
    expectClose(await mergedLogits(sink.files), want, 2e-5);
    // streamed into a zip instead: the same files
    const zip = collectZip();
    await mergeOnGpu(rt, model, lora, await openCheckpoint(files), zip, { dtype: 'f32', maxShardBytes: 10_000 });
    const unzipped = unzipSync(await zip.finish());
    expect(Object.keys(unzipped)).toEqual(res.files);
    for (const [name, bytes] of sink.files) expect(unzipped[name], name).toEqual(bytes);
    // tensors too big for one GPU binding are merged on the CPU, to the same values
    const viaCpu = memorySink();
    await mergeOnGpu(rt, model, lora, await openCheckpoint(files), viaCpu, { dtype: 'f32', gpuTensorLimit: 0 });
    const [g, c] = [await openCheckpoint(memoryModelFiles(sink.files)), await openCheckpoint(memoryModelFiles(viaCpu.files))];
    for (const name of g.names()) expectClose(await c.readFloat32(name), await g.readFloat32(name), 1e-6);
    lora.destroy();
    model.destroy();
  });
});

describe('merge helpers', () => {
  it('planShards groups in order and gives big tensors their own shard', () => {
    const specs = [
      { name: 'a', dtype: 'F32' as const, shape: [10] },
      { name: 'b', dtype: 'F32' as const, shape: [100] },
      { name: 'c', dtype: 'F32' as const, shape: [5] },
      { name: 'd', dtype: 'F32' as const, shape: [5] },
    ];
    expect(planShards(specs, 1e9).map((s) => s.file)).toEqual(['model.safetensors']);
    const shards = planShards(specs, 100);
    expect(shards.map((s) => s.plan.tensors.map((t) => t.name))).toEqual([['a'], ['b'], ['c', 'd']]);
  });

  it('addLoraDelta is W + s·B·A', () => {
    const w = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
    const a = new Float32Array([1, 0, 2, 0, 1, 1]); // [2, 3]
    const b = new Float32Array([1, 2, 3, 4]); // [2, 2]
    addLoraDelta(w, a, b, 2, 3, 2, 0.5);
    // B·A = [[1, 2, 4], [3, 4, 10]]
    expect([...w]).toEqual([1.5, 3, 5, 5.5, 7, 11]);
  });
});
