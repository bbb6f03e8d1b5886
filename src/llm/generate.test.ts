// Generation with the KV cache: the real stories260K model reproduces its known story, and on a
// tiny random model with LoRA the cached decode picks the same tokens as the float64 reference.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { modelFolder } from '../node/model-folder.ts';
import { createTokenizer } from '../model/tokenizer.ts';
import { sharedPath } from '../node/shared.ts';
import { loadGpuModel } from './load.ts';
import { generate } from './generate.ts';
import { sampleToken } from './sampling.ts';
import { mulberry32 } from '../util/random.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const STORY = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';

describe('generate', () => {
  it('stories260K (f32) greedy from BOS tells the known story', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const { model } = await loadGpuModel(rt, modelFolder(dir), { quant: 'none' });
    const tok = createTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    const prompt = tok.encode('');
    expect(prompt).toEqual([tok.bosId]);
    const r = await generate(model, prompt, { maxNewTokens: 40, stopIds: tok.eosIds });
    const text = tok.decode(r.ids);
    console.log(`stories260K: ${JSON.stringify(text)} (${r.tokensPerSecond.toFixed(1)} tok/s)`);
    expect(text.startsWith(STORY.slice(0, 60))).toBe(true);
    model.destroy();
  });

  it('stories260K NF4 still tells a story that starts the same way', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const { model } = await loadGpuModel(rt, modelFolder(dir), { quant: 'nf4' });
    const tok = createTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    const r = await generate(model, tok.encode(''), { maxNewTokens: 12, stopIds: tok.eosIds });
    const text = tok.decode(r.ids);
    console.log(`stories260K NF4: ${JSON.stringify(text)}`);
    expect(text.startsWith('Once upon a time')).toBe(true);
    model.destroy();
  });

  it('stories260K NF4 with the GPU kernel shapes forced (decode matvec, flash attention) picks the same tokens', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const gpuRt = await createNodeRuntime({ kernels: 'gpu' });
    const tok = createTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    const ids: number[][] = [];
    for (const r of [rt, gpuRt]) {
      const { model } = await loadGpuModel(r, modelFolder(dir), { quant: 'nf4' });
      ids.push((await generate(model, tok.encode('Once upon a time'), { maxNewTokens: 16, stopIds: tok.eosIds })).ids);
      model.destroy();
    }
    expect(ids[1]).toEqual(ids[0]);
    gpuRt.destroy();
  });

  it('streams tokens, stops on EOS and at the limit', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const { model } = await loadGpuModel(rt, modelFolder(dir), { quant: 'none' });
    const seen: number[] = [];
    const r = await generate(model, [1], { maxNewTokens: 5, onToken: (id) => void seen.push(id) });
    expect(r.ids).toHaveLength(5);
    expect(seen).toEqual(r.ids);
    expect(r.finish).toBe('length');
    // Make the first greedy token a stop id: nothing is produced.
    const first = r.ids[0]!;
    const eos = await generate(model, [1], { maxNewTokens: 5, stopIds: [first] });
    expect(eos.ids).toEqual([]);
    expect(eos.finish).toBe('eos');
    // Sampling with a seed is reproducible.
    const a = await generate(model, [1], { maxNewTokens: 8, temperature: 0.9, topK: 40, topP: 0.9, seed: 5 });
    const b = await generate(model, [1], { maxNewTokens: 8, temperature: 0.9, topK: 40, topP: 0.9, seed: 5 });
    expect(a.ids).toEqual(b.ids);
    model.destroy();
  });
});

describe('sampling', () => {
  const logits = new Float32Array([1, 3, 2, -1, 0.5]);
  it('greedy picks the argmax', () => {
    expect(sampleToken(logits, [], {}, Math.random)).toBe(1);
  });
  it('top-k 1 is greedy at any temperature', () => {
    const r = mulberry32(1);
    for (let i = 0; i < 20; i++) expect(sampleToken(logits, [], { temperature: 5, topK: 1 }, r)).toBe(1);
  });
  it('repetition penalty divides positive and multiplies negative logits', () => {
    // token 1 (3 → 1.5) falls below token 2 (2) under penalty 2
    expect(sampleToken(logits, [1], { repetitionPenalty: 2 }, Math.random)).toBe(2);
  });
  it('top-p keeps the smallest prefix reaching p', () => {
    const r = mulberry32(2);
    const counts = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const id = sampleToken(logits, [], { temperature: 1, topP: 0.7 }, r);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    // softmax: p1 ≈ 0.61, p2 ≈ 0.22 → the prefix {1, 2} reaches 0.7; others never drawn
    expect([...counts.keys()].sort()).toEqual([1, 2]);
  });
});
