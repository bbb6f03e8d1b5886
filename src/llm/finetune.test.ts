// A real fine-tune of the pretrained stories260K model on Shakespeare: a few optimizer steps of
// QLoRA (NF4 base, LoRA with dropout on all linears) clearly lower the held-out loss, and the
// same seed and data give a bit-identical adapter.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { modelFolder } from '../node/model-folder.ts';
import { sharedPath } from '../node/shared.ts';
import { prepareData } from '../data/pipeline.ts';
import { createDataTokenizer } from '../data/tokenize.ts';
import { chatTemplateFromConfig } from '../data/template.ts';
import { makeTrainConfig } from '../train/train-config.ts';
import { LORA_TARGETS } from '../model/names.ts';
import { loadGpuModel } from './load.ts';
import { LoraAdapter } from './lora.ts';
import { finetune } from './finetune.ts';
import { saveAdapter } from './adapter-io.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

async function run(dir: string, text: string, steps: number) {
  const cfgText = readFileSync(join(dir, 'tokenizer_config.json'), 'utf8');
  const tok = createDataTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), JSON.parse(cfgText));
  const tpl = chatTemplateFromConfig(JSON.parse(cfgText), {});
  const data = await prepareData(
    { kind: 'rows', name: 'shakespeare', rows: text.split(/\n\n+/).map((t) => ({ text: t })) },
    { format: 'text', maxLength: 64, evalSplit: 6, seed: 1, batchSize: 2, padding: 'longest', labelMode: 'all' },
    tok,
    tpl,
  );
  const { model, config } = await loadGpuModel(rt, modelFolder(dir), { quant: 'nf4', maxPositions: 64 });
  const lora = LoraAdapter.init(rt, config, { r: 8, alpha: 16, dropout: 0.05, useRslora: false, targetModules: LORA_TARGETS, seed: 3 });
  const train = makeTrainConfig({ lr: 3e-3, maxSteps: steps, warmupSteps: 1, batchSize: 2, gradAccum: 2, seqLen: 64, maxGradNorm: 1 });
  const result = await finetune(rt, model, lora, data, { train });
  const files = await saveAdapter(rt, lora, 'stories260K');
  lora.destroy();
  model.destroy();
  return { result, weights: files['adapter_model.safetensors'] as Uint8Array };
}

describe('fine-tuning stories260K on Shakespeare', () => {
  it('lowers the eval loss clearly, and is bit-identical for the same seed', async () => {
    const dir = sharedPath('models/stories260K');
    const corpus = sharedPath('corpora/tinyshakespeare.txt');
    if (!dir || !corpus) return;
    const text = readFileSync(corpus, 'utf8').slice(0, 8000);
    const a = await run(dir, text, 8);
    const before = a.result.initialEvalLoss!;
    const after = a.result.evalLoss!;
    console.log(`eval loss ${before.toFixed(4)} → ${after.toFixed(4)} in ${a.result.steps} steps; train losses ${a.result.history.map((h) => h.loss.toFixed(3)).join(' ')}`);
    expect(a.result.steps).toBe(8);
    expect(after).toBeLessThan(before - 0.3);
    const b = await run(dir, text, 8);
    expect(b.result.history.map((h) => h.loss)).toEqual(a.result.history.map((h) => h.loss));
    expect(Buffer.from(b.weights).equals(Buffer.from(a.weights))).toBe(true);
  });
});
