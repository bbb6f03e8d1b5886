// The adapter download: the zip unpacks to a PEFT folder the engine reloads to identical logits,
// with PEFT's tensor names and shapes for every target module, every adapter_config.json key with
// PEFT's types, a Hub id (never a local path) as base model, a model card, the training config and
// the loss history.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unzipSync } from 'fflate';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { openSafetensors, writeSafetensors } from '../formats/safetensors.ts';
import { bytesSource } from '../formats/byte-source.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { parseModelConfig } from '../model/config.ts';
import { tinyConfigJson, randomWeights, randomLoraTensors } from '../model/tiny-model.ts';
import { LORA_TARGETS, modelTensorShapes, peftLoraName, targetShape } from '../model/names.ts';
import { loadGpuModel } from '../llm/load.ts';
import { LoraAdapter } from '../llm/lora.ts';
import { makeBatch } from '../llm/batch.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, saveAdapter } from '../llm/adapter-io.ts';
import { RefError } from '../share/refs.ts';
import {
  adapterZip,
  lossHistoryCsv,
  modelCard,
  parseTrainingRecord,
  streamAdapterZip,
  trainingConfigJson,
  withBaseModel,
  type TrainingRecord,
} from './adapter-zip.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const BASE = 'Qwen/Qwen2.5-0.5B-Instruct';

const record: TrainingRecord = {
  baseModel: BASE,
  dataset: '/home/me/private/pirate-chat.jsonl',
  quant: 'nf4',
  lora: { r: 4, alpha: 8, dropout: 0.05, targetModules: [...LORA_TARGETS], useRslora: true, seed: 1 },
  train: { lr: 2e-4, batchSize: 2, gradAccum: 4, seqLen: 128, schedule: 'cosine', warmupSteps: 2, maxSteps: 3, maxGradNorm: 0.3, weightDecay: 0, seed: 0 },
  data: { format: 'chatml-messages', stats: { tokens: 1234, trainedTokens: 600, path: '/home/me/x' } },
  result: {
    steps: 3,
    initialEvalLoss: 3.5,
    evalLoss: 2.75,
    history: [
      { step: 1, loss: 3.4, lr: 1e-4, gradNorm: 1.5, tokensPerSecond: 100.5 },
      { step: 2, loss: 3.1, lr: 2e-4, gradNorm: 1.25, tokensPerSecond: 101 },
      { step: 3, loss: 2.9, evalLoss: 2.75, lr: 1.5e-4, gradNorm: 1, tokensPerSecond: 99 },
    ],
  },
};

/** adapter_config.json keys PEFT 0.18.1 writes, with the JSON type of our values. */
const PEFT_KEYS: Record<string, string> = {
  alora_invocation_tokens: 'null', alpha_pattern: 'object', arrow_config: 'null', auto_mapping: 'null',
  base_model_name_or_path: 'string', bias: 'string', corda_config: 'null', ensure_weight_tying: 'boolean',
  eva_config: 'null', exclude_modules: 'null', fan_in_fan_out: 'boolean', inference_mode: 'boolean',
  init_lora_weights: 'boolean', layer_replication: 'null', layers_pattern: 'null', layers_to_transform: 'null',
  loftq_config: 'object', lora_alpha: 'number', lora_bias: 'boolean', lora_dropout: 'number', megatron_config: 'null',
  megatron_core: 'string', modules_to_save: 'null', peft_type: 'string', peft_version: 'string', qalora_group_size: 'number',
  r: 'number', rank_pattern: 'object', revision: 'null', target_modules: 'array', target_parameters: 'null',
  task_type: 'string', trainable_token_indices: 'null', use_dora: 'boolean', use_qalora: 'boolean', use_rslora: 'boolean',
};
const jsonType = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

describe('adapter zip (PEFT format)', () => {
  it('unpacks to a PEFT folder that reloads to identical logits, with PEFT names, shapes and config keys', async () => {
    const json = tinyConfigJson('qwen2');
    const config = parseModelConfig(json);
    const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
    const st = writeSafetensors([...randomWeights(config, 3)].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
    const { model } = await loadGpuModel(rt, memoryModelFiles({ 'config.json': JSON.stringify(json), 'model.safetensors': st }), { quant: 'nf4' });
    const tensors = randomLoraTensors(config, 4, LORA_TARGETS, { seed: 4, std: 0.2 });
    const lora = LoraAdapter.fromTensors(rt, config, { r: 4, alpha: 8, dropout: 0.05, useRslora: true, targetModules: LORA_TARGETS, seed: 1 }, (l, t) => ({
      a: tensors.get(peftLoraName(l, t, 'A'))!,
      b: tensors.get(peftLoraName(l, t, 'B'))!,
    }));
    // saved with a local path as the base (what a run on a local folder would record)
    const files = await saveAdapter(rt, lora, '/home/me/models/qwen2.5-0.5b');
    await expect(adapterZip({ files })).rejects.toThrow(RefError);
    await expect(adapterZip({ files })).rejects.toThrow(/is a local path .*Hub repo id/);
    await expect(adapterZip({ files, baseModel: './models/qwen' })).rejects.toThrow(/the base model is a local path \("\.\/models\/qwen"\)/);

    const zip = await adapterZip({ files, record, title: 'Pirate *chat*' });
    const parts: Uint8Array[] = [];
    await streamAdapterZip({ files, record, title: 'Pirate *chat*' }, (c) => void parts.push(c));
    expect(Buffer.concat(parts)).toEqual(Buffer.from(zip)); // streaming = in memory, reproducible
    const unzipped = unzipSync(zip);
    expect(Object.keys(unzipped)).toEqual([ADAPTER_CONFIG, ADAPTER_WEIGHTS, 'README.md', 'training_config.json', 'loss_history.csv']);
    const everything = Object.values(unzipped).map((b) => new TextDecoder().decode(b)).join('\n');
    expect(everything).not.toContain('/home/me');

    // reloads to the same adapter and the same logits
    const back = await loadAdapter(rt, memoryModelFiles(unzipped), config);
    expect(back.baseModel).toBe(BASE);
    const batch = makeBatch({ inputIds: [[1, 5, 9, 2, 7, 30]] });
    expect(await model.logits(batch, back.adapter)).toEqual(await model.logits(batch, lora));
    const [a, b] = [await lora.read(rt), await back.adapter.read(rt)];
    for (const [name, t] of a) expect(b.get(name)!.data).toEqual(t.data);

    // tensor names and shapes: PEFT's, for every target module of every layer
    const reader = await openSafetensors(bytesSource(unzipped[ADAPTER_WEIGHTS]!, ADAPTER_WEIGHTS));
    expect(reader.header.metadata).toEqual({ format: 'pt' });
    expect(reader.names()).toHaveLength(config.numLayers * LORA_TARGETS.length * 2);
    for (let l = 0; l < config.numLayers; l++) {
      for (const t of LORA_TARGETS) {
        const [out, inF] = targetShape(config, t);
        const block = ['gate_proj', 'up_proj', 'down_proj'].includes(t) ? 'mlp' : 'self_attn';
        expect(reader.info(`base_model.model.model.layers.${l}.${block}.${t}.lora_A.weight`)).toMatchObject({ dtype: 'F32', shape: [4, inF] });
        expect(reader.info(`base_model.model.model.layers.${l}.${block}.${t}.lora_B.weight`)).toMatchObject({ dtype: 'F32', shape: [out, 4] });
      }
    }

    // adapter_config.json: every PEFT key with PEFT's types, the base model as its Hub id
    const cfgText = new TextDecoder().decode(unzipped[ADAPTER_CONFIG]);
    const cfg = JSON.parse(cfgText);
    expect(Object.keys(cfg).sort()).toEqual(Object.keys(PEFT_KEYS).sort());
    for (const [k, type] of Object.entries(PEFT_KEYS)) expect(jsonType(cfg[k]), k).toBe(type);
    expect(cfg).toMatchObject({ base_model_name_or_path: BASE, peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, bias: 'none', use_rslora: true, inference_mode: true });
    expect(cfg.target_modules).toEqual([...LORA_TARGETS].sort());
    expect(Number.isInteger(cfg.r) && Number.isInteger(cfg.qalora_group_size)).toBe(true);
    expect(cfgText).toContain('"lora_dropout": 0.05,');
    expect(cfgText).toBe(withBaseModel(files[ADAPTER_CONFIG] as string, BASE)); // only the base changed

    // model card
    const card = new TextDecoder().decode(unzipped['README.md']);
    expect(card.startsWith(`---\nbase_model: ${BASE}\nlibrary_name: peft\n`)).toBe(true);
    expect(card).toContain('# Pirate \\*chat\\*');
    expect(card).toContain('`pirate-chat.jsonl` (a local file, not published)');
    expect(card).toContain('- Optimizer steps: 3');
    expect(card).toContain('- Final train loss: 2.9000 (step 3)');
    expect(card).toContain('- Eval loss: 3.5000 before training → 2.7500');
    expect(card).toContain('| LoRA rank `r` | 4 |');
    expect(card).toContain('| scaling | alpha/√r = 4 (rsLoRA) |');
    expect(card).toContain('| batch | 2 × 4 accumulation = 8 sequences per step |');
    expect(card).toContain(`PeftModel.from_pretrained(base, "path/to/this/folder")`);
    expect(card).toContain(`bnb_4bit_quant_type="nf4"`);
    expect(card).toContain(`python convert_lora_to_gguf.py path/to/this/folder --base-model-id ${BASE} --outfile adapter.gguf`);
    expect(card).toContain('--lora-scaled adapter.gguf 2'); // rsLoRA in llama.cpp: √r
    expect(card).toContain('"num_layers": 2,');
    expect(card).toContain('"lora_parameters": {"rank": 4, "scale": 4, "dropout": 0.0, "keys": ["self_attn.q_proj","self_attn.k_proj"');
    expect(card).toContain(`mlx_lm.generate --model ${BASE} --adapter-path mlx_adapter`);

    // training config and loss history
    const tc = JSON.parse(new TextDecoder().decode(unzipped['training_config.json']));
    expect(tc).toMatchObject({
      format: 'qlora-studio/training-config',
      baseModel: BASE,
      dataset: { name: 'pirate-chat.jsonl' },
      lora: { r: 4, alpha: 8, useRslora: true },
      train: { lr: 2e-4, schedule: 'cosine', gradAccum: 4 },
      data: { format: 'chatml-messages', stats: { tokens: 1234, trainedTokens: 600 } },
      result: { steps: 3, finalTrainLoss: 2.9, initialEvalLoss: 3.5, finalEvalLoss: 2.75 },
    });
    expect(new TextDecoder().decode(unzipped['loss_history.csv'])).toBe(
      'step,loss,eval_loss,lr,grad_norm,tokens_per_s\n1,3.4,,0.0001,1.5,100.5\n2,3.1,,0.0002,1.25,101\n3,2.9,2.75,0.00015,1,99\n',
    );

    back.adapter.destroy();
    lora.destroy();
    model.destroy();
  });

  it('training_log.json is read leniently; loss history, config and card stand alone', () => {
    const rec = parseTrainingRecord(JSON.stringify({ ...record, lora: { r: 'x', alpha: 16 }, result: { history: [{ step: 1, loss: 2 }, { step: 'bad' }] } }));
    expect(rec.lora).toEqual({ alpha: 16 });
    expect(rec.result?.history).toHaveLength(1);
    expect(lossHistoryCsv(rec.result!.history!)).toBe('step,loss,eval_loss,lr,grad_norm,tokens_per_s\n1,2,,,,\n');
    expect(() => parseTrainingRecord('[1]')).toThrow(/expected a JSON object/);
    expect(() => trainingConfigJson({ baseModel: '/abs/path' })).toThrow(/local path/);
    expect(JSON.parse(trainingConfigJson({ baseModel: 'a/b', dataset: 'tatsu-lab/alpaca' })).dataset).toEqual({ hub: 'tatsu-lab/alpaca' });
    const card = modelCard({ baseModel: 'a/b', lora: { r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false }, numLayers: 4, dataset: { hub: 'tatsu-lab/alpaca' } });
    expect(card).toContain('datasets:\n- tatsu-lab/alpaca\n---');
    expect(card).toContain('Training statistics were not recorded.');
    expect(card).not.toContain('--lora-scaled');
    expect(card).toContain('"scale": 2,');
  });
});
