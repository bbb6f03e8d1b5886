import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { modelFolder } from '../node/model-folder.ts';
import type { ModelConfig } from './config.ts';
import { LORA_TARGETS, peftLoraName, targetShape, weightName } from './names.ts';
import { crossEntropy, forward, generateGreedy, loss, ropeInvFreq, type LoraSpec } from './reference.ts';
import { randomLoraTensors, randomWeights, tinyConfig } from './tiny-model.ts';
import { createTokenizer } from './tokenizer.ts';
import { loadModel } from './weights.ts';

const SHARED = fileURLToPath(new URL('../../../shared', import.meta.url));
const STORIES = `${SHARED}/models/stories260K`;
const HAVE = existsSync(`${STORIES}/model.safetensors`);
if (!HAVE) console.warn(`stories260K reference tests skipped: ${STORIES} is absent`);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const randomIds = (n: number, vocab: number, seed: number) => range(n).map((i) => (i * 7919 + seed * 104729) % vocab);

describe.skipIf(!HAVE)('reference on stories260K', () => {
  it('greedy decoding from BOS tells the Lily story', async () => {
    const files = modelFolder(STORIES);
    const { config, weights } = await loadModel(files);
    const tok = createTokenizer(await files.text('tokenizer.json'), await files.text('tokenizer_config.json'), config);
    const ids = generateGreedy(weights, config, [tok.bosId!], { maxNewTokens: 60, stopIds: tok.eosIds });
    const text = tok.decode(ids, { skipSpecial: true });
    console.log(`stories260K greedy, ${ids.length} tokens: ${JSON.stringify(text)}`);
    expect(text.startsWith('Once upon a time, there was a little girl named Lily. She loved to play outside in the park.')).toBe(true);
    // Streaming the generated ids gives the same text.
    const d = tok.createDecoder();
    expect(ids.map((i) => d.push(i)).join('') + d.flush()).toBe(text);
    // The model finds its own continuation likely: low loss on it, high loss on shuffled ids.
    const seq = [tok.bosId!, ...ids];
    const own = loss(weights, config, { inputIds: [seq], labels: [seq] });
    const shuffled = [seq[0], ...seq.slice(1).reverse()];
    const other = loss(weights, config, { inputIds: [shuffled], labels: [shuffled] });
    expect(own).toBeLessThan(1);
    expect(other).toBeGreaterThan(3);
  });
});

function checkFinite(c: ModelConfig, seed: number) {
  const w = randomWeights(c, seed);
  const logits = forward(w, c, { inputIds: [randomIds(9, c.vocabSize, 1), randomIds(9, c.vocabSize, 2)] });
  expect([logits.batch, logits.seqLen, logits.vocab]).toEqual([2, 9, c.vocabSize]);
  expect(logits.data.every(Number.isFinite)).toBe(true);
  const spread = Math.max(...logits.row(1, 8)) - Math.min(...logits.row(1, 8));
  expect(spread).toBeGreaterThan(0.1);
  return { w, logits };
}

describe('reference on tiny random models', () => {
  it('runs a Qwen2-style model (q/k/v bias, GQA, untied head) without NaN', () => {
    const c = tinyConfig('qwen2');
    expect([c.attentionBias, c.attentionOutBias, c.tieWordEmbeddings, c.numHeads / c.numKvHeads]).toEqual([true, false, false, 2]);
    const { w, logits } = checkFinite(c, 11);
    // The biases matter.
    const w2 = new Map(w);
    w2.set('model.layers.0.self_attn.v_proj.bias', new Float32Array(16));
    expect(maxAbsDiff(forward(w2, c, { inputIds: [randomIds(9, c.vocabSize, 1)] }).data, logits.data.subarray(0, 9 * c.vocabSize))).toBeGreaterThan(1e-4);
  });

  it('runs a Llama-3 model with llama3 RoPE scaling without NaN', () => {
    const c = tinyConfig('llama3', { head_dim: 16, num_attention_heads: 4, num_key_value_heads: 1 });
    checkFinite(c, 12);
    const inv = ropeInvFreq(c);
    const base = range(8).map((j) => 1 / Math.pow(500000, (2 * j) / 16));
    const wl = base.map((f) => (2 * Math.PI) / f); // low wavelen 64, high wavelen 16
    for (let j = 0; j < 8; j++) {
      if (wl[j] < 16) expect(inv[j]).toBe(base[j]);
      else if (wl[j] > 64) expect(inv[j]).toBeCloseTo(base[j] / 32, 15);
      else expect(inv[j]).toBeGreaterThanOrEqual(base[j] / 32);
    }
    expect(wl.some((x) => x < 16) && wl.some((x) => x > 64)).toBe(true);
  });

  it('depends only on relative positions (RoPE) and runs each row independently', () => {
    const c = tinyConfig('llama');
    const w = randomWeights(c, 5);
    const ids = randomIds(7, c.vocabSize, 3);
    const a = forward(w, c, { inputIds: [ids] });
    const shifted = forward(w, c, { inputIds: [ids], positionIds: [range(7, 40)] });
    expect(maxAbsDiff(a.data, shifted.data)).toBeLessThan(1e-9);
    const linear = tinyConfig('llama', { rope_scaling: { type: 'linear', factor: 4 } });
    expect(maxAbsDiff(a.data, forward(w, linear, { inputIds: [ids] }).data)).toBeGreaterThan(1e-6);
    const both = forward(w, c, { inputIds: [randomIds(7, c.vocabSize, 9), ids] });
    expect(maxAbsDiff(both.data.subarray(7 * c.vocabSize), a.data)).toBe(0);
  });

  it('packs sequences with segment ids exactly like separate forwards', () => {
    const c = tinyConfig('qwen2');
    const w = randomWeights(c, 6);
    const s1 = randomIds(5, c.vocabSize, 4);
    const s2 = randomIds(4, c.vocabSize, 5);
    const packed = forward(w, c, {
      inputIds: [[...s1, ...s2, 0, 0]], positionIds: [[...range(5), ...range(4), 0, 0]], segmentIds: [[1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0]],
    });
    const V = c.vocabSize;
    expect(maxAbsDiff(packed.data.subarray(0, 5 * V), forward(w, c, { inputIds: [s1] }).data)).toBeLessThan(1e-12);
    expect(maxAbsDiff(packed.data.subarray(5 * V, 9 * V), forward(w, c, { inputIds: [s2] }).data)).toBeLessThan(1e-12);
    // Loss: cross-segment and padding pairs do not count.
    const labels = [[...s1, ...s2, -100, -100]];
    const l = crossEntropy(packed, labels, [[1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0]]);
    expect(l.count).toBe(4 + 3);
    const sep1 = crossEntropy(forward(w, c, { inputIds: [s1] }), [s1]);
    const sep2 = crossEntropy(forward(w, c, { inputIds: [s2] }), [s2]);
    expect(l.sum).toBeCloseTo(sep1.sum + sep2.sum, 10);
  });

  it('maps query heads to KV heads like repeat_kv', () => {
    const c = tinyConfig('llama'); // 4 heads, 2 KV heads, head_dim 8
    const w = randomWeights(c, 8);
    const mha = { ...c, numKvHeads: 4 };
    const w2 = new Map(w);
    for (let l = 0; l < c.numLayers; l++) {
      for (const t of ['k_proj', 'v_proj'] as const) {
        const src = w.get(weightName(l, t))!;
        const dst = new Float32Array(4 * 8 * 32);
        for (let h = 0; h < 4; h++) dst.set(src.subarray(Math.floor(h / 2) * 8 * 32, (Math.floor(h / 2) + 1) * 8 * 32), h * 8 * 32);
        w2.set(weightName(l, t), dst);
      }
    }
    const ids = randomIds(6, c.vocabSize, 1);
    expect(maxAbsDiff(forward(w, c, { inputIds: [ids] }).data, forward(w2, mha, { inputIds: [ids] }).data)).toBeLessThan(1e-12);
  });

  it('takes HF-style unshifted labels: mean CE over labels ≠ −100', () => {
    const c = tinyConfig('llama');
    const w = randomWeights(c, 9);
    const ids = [randomIds(6, c.vocabSize, 1), randomIds(6, c.vocabSize, 2)];
    const labels = [[-100, 5, -100, -100, 7, -100], [-100, -100, -100, 3, -100, -100]];
    const logits = forward(w, c, { inputIds: ids });
    const ce = (b: number, t: number, y: number) => {
      const z = logits.row(b, t);
      return Math.log(z.reduce((s, v) => s + Math.exp(v), 0)) - z[y];
    };
    const want = (ce(0, 0, 5) + ce(0, 3, 7) + ce(1, 2, 3)) / 3;
    expect(loss(w, c, { inputIds: ids, labels })).toBeCloseTo(want, 12);
    const none = crossEntropy(logits, labels.map((r) => r.map(() => -100)));
    expect(none.count).toBe(0);
    expect(none.loss).toBeNaN();
    // Label at position 0 is never used (nothing predicts it).
    expect(crossEntropy(logits, [[9, ...labels[0].slice(1)], labels[1]]).loss).toBe(crossEntropy(logits, labels).loss);
    expect(() => crossEntropy(logits, [[0, 0, 0, 0, 0, c.vocabSize], labels[1]])).toThrow(/not a token id/);
  });

  it('LoRA with B = 0 gives the base logits exactly', () => {
    const c = tinyConfig('qwen2');
    const w = randomWeights(c, 10);
    const ids = [randomIds(8, c.vocabSize, 3)];
    const lora: LoraSpec = { alpha: 16, tensors: randomLoraTensors(c, 4, LORA_TARGETS, { zeroB: true }) };
    expect(forward(w, c, { inputIds: ids }, lora).data).toEqual(forward(w, c, { inputIds: ids }).data);
  });

  for (const useRslora of [false, true]) {
    it(`LoRA equals the merged weight W + s·B·A (${useRslora ? 'rsLoRA α/√r' : 'α/r'})`, () => {
      const c = tinyConfig('qwen2');
      const w = randomWeights(c, 10);
      const r = 4;
      const targets = ['q_proj', 'v_proj', 'o_proj', 'down_proj'] as const;
      const tensors = randomLoraTensors(c, r, targets, { seed: 3 });
      const s = useRslora ? 16 / Math.sqrt(r) : 16 / r;
      const merged = new Map(w);
      for (let l = 0; l < c.numLayers; l++) {
        for (const t of targets) {
          const [out, inp] = targetShape(c, t);
          const A = tensors.get(peftLoraName(l, t, 'A'))!;
          const B = tensors.get(peftLoraName(l, t, 'B'))!;
          const W = Float64Array.from(w.get(weightName(l, t))!);
          for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) for (let j = 0; j < r; j++) W[o * inp + i] += s * B[o * r + j] * A[j * inp + i];
          merged.set(weightName(l, t), W as unknown as Float32Array);
        }
      }
      const ids = [randomIds(8, c.vocabSize, 3)];
      const withLora = forward(w, c, { inputIds: ids }, { alpha: 16, useRslora, tensors });
      const base = forward(w, c, { inputIds: ids });
      expect(maxAbsDiff(withLora.data, base.data)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(withLora.data, forward(merged, c, { inputIds: ids }).data)).toBeLessThan(1e-10);
    });
  }

  it('rejects bad inputs and half LoRA pairs with clear messages', () => {
    const c = tinyConfig('llama');
    const w = randomWeights(c, 1);
    expect(() => forward(w, c, { inputIds: [[1, 2], [3]] })).toThrow('inputIds[1] has length 1, expected 2');
    expect(() => forward(w, c, { inputIds: [[1, c.vocabSize]] })).toThrow('inputIds[0][1] = 50 is out of range');
    const half = new Map([[peftLoraName(0, 'q_proj', 'A'), new Float32Array(4 * 32)]]);
    expect(() => forward(w, c, { inputIds: [[1]] }, { alpha: 8, tensors: half })).toThrow(/lora_A\.weight but not .*lora_B\.weight/);
    const noEmbed = new Map(w);
    noEmbed.delete('model.embed_tokens.weight');
    expect(() => forward(noEmbed, c, { inputIds: [[1]] })).toThrow('missing tensor model.embed_tokens.weight');
  });

  it('greedy generation stops at a stop id', () => {
    const c = tinyConfig('llama');
    const w = randomWeights(c, 2);
    const free = generateGreedy(w, c, [1, 2, 3], { maxNewTokens: 6 });
    expect(free).toHaveLength(6);
    const stopped = generateGreedy(w, c, [1, 2, 3], { maxNewTokens: 6, stopIds: [free[2]] });
    expect(stopped).toEqual(free.slice(0, free.indexOf(free[2]) + 1));
  });
});
