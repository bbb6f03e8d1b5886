// PEFT adapter folders: save → load gives the same tensors and the same logits; the files have
// PEFT's names, shapes and config keys.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { openSafetensors } from '../formats/safetensors.ts';
import { bytesSource } from '../formats/byte-source.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { parseModelConfig } from '../model/config.ts';
import { tinyConfigJson, randomWeights, randomLoraTensors } from '../model/tiny-model.ts';
import { LORA_TARGETS, modelTensorShapes, peftLoraName } from '../model/names.ts';
import { loadGpuModel } from './load.ts';
import { LoraAdapter } from './lora.ts';
import { makeBatch } from './batch.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, saveAdapter } from './adapter-io.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

describe('PEFT adapter save/load', () => {
  it('round trips to identical tensors and logits, with PEFT names, shapes and config keys', async () => {
    const json = tinyConfigJson('qwen2');
    const config = parseModelConfig(json);
    const weights = randomWeights(config, 3);
    const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
    const st = writeSafetensors([...weights].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
    const { model } = await loadGpuModel(rt, memoryModelFiles({ 'config.json': JSON.stringify(json), 'model.safetensors': st }), { quant: 'nf4' });
    const targets = ['q_proj', 'v_proj', 'down_proj'] as const;
    const tensors = randomLoraTensors(config, 8, targets, { seed: 4 });
    const settings = { r: 8, alpha: 16, dropout: 0.05, useRslora: true, targetModules: targets, seed: 1 };
    const lora = LoraAdapter.fromTensors(rt, config, settings, (l, t) => ({ a: tensors.get(peftLoraName(l, t, 'A'))!, b: tensors.get(peftLoraName(l, t, 'B'))! }));
    const files = await saveAdapter(rt, lora, 'Qwen/Qwen2.5-0.5B-Instruct');

    const cfg = JSON.parse(files[ADAPTER_CONFIG] as string);
    expect(cfg.peft_type).toBe('LORA');
    expect(cfg.task_type).toBe('CAUSAL_LM');
    expect(cfg.r).toBe(8);
    expect(cfg.lora_alpha).toBe(16);
    expect(cfg.lora_dropout).toBe(0.05);
    expect(cfg.use_rslora).toBe(true);
    expect(cfg.bias).toBe('none');
    expect(cfg.fan_in_fan_out).toBe(false);
    expect(cfg.inference_mode).toBe(true);
    expect(cfg.base_model_name_or_path).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(cfg.target_modules).toEqual(['down_proj', 'q_proj', 'v_proj']);

    const reader = await openSafetensors(bytesSource(files[ADAPTER_WEIGHTS] as Uint8Array, ADAPTER_WEIGHTS));
    expect(reader.names()).toHaveLength(config.numLayers * targets.length * 2);
    expect(reader.info('base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight').shape).toEqual([8, 32]);
    expect(reader.info('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight').shape).toEqual([16, 8]);
    expect(reader.info('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')).toMatchObject({ dtype: 'F32', shape: [8, 48] });
    expect(reader.header.metadata).toEqual({ format: 'pt' });

    const back = await loadAdapter(rt, memoryModelFiles(files), config);
    expect(back.baseModel).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(back.adapter.settings).toMatchObject({ r: 8, alpha: 16, useRslora: true });
    const [a, b] = [await lora.read(rt), await back.adapter.read(rt)];
    for (const [name, t] of a) expect(b.get(name)!.data).toEqual(t.data);

    const batch = makeBatch({ inputIds: [[1, 5, 9, 2, 7]] });
    const l1 = await model.logits(batch, lora);
    const l2 = await model.logits(batch, back.adapter);
    expect(l2).toEqual(l1);
    const base = await model.logits(batch, null);
    expect(base).not.toEqual(l1);
    for (const t of LORA_TARGETS) expect(back.adapter.get(0, t) !== undefined).toBe((targets as readonly string[]).includes(t));
    lora.destroy();
    back.adapter.destroy();
    model.destroy();
  });
});
