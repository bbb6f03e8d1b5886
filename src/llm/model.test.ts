// The GPU model against the float64 CPU reference: logits, loss and every LoRA gradient (the
// latter also against central finite differences of the reference loss), on tiny random
// Llama / Llama-3 / Qwen2 models with padding and packed segments.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime, KernelStyle } from '../gpu/runtime.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { tinyConfigJson, randomWeights, randomLoraTensors } from '../model/tiny-model.ts';
import { parseModelConfig } from '../model/config.ts';
import { forward as refForward, loss as refLoss, type LoraSpec } from '../model/reference.ts';
import { LORA_TARGETS, peftLoraName, type LoraTarget } from '../model/names.ts';
import { dequantizeLinear, quantizeLinear } from '../quant/bnb-tensors.ts';
import { targetShape, weightName } from '../model/names.ts';
import { loadGpuModel, type QuantChoice } from './load.ts';
import { dropoutKeep, dropoutKey, dropoutThreshold } from '../train/rng.ts';
import { LoraAdapter } from './lora.ts';
import { makeBatch, type BatchRows } from './batch.ts';

// Every test runs twice: with this adapter's kernel shapes (CPU ones on SwiftShader) and with the
// GPU shapes forced (workgroup reductions, scalar gemm, flash attention, GPU tiles), so the path a
// real GPU takes is checked end to end here too.
const runtimes: Partial<Record<KernelStyle | 'adapter', GpuRuntime>> = {};
let rt: GpuRuntime;
beforeAll(async () => {
  runtimes.adapter = await createNodeRuntime();
  runtimes.gpu = await createNodeRuntime({ kernels: 'gpu' });
  rt = runtimes.adapter;
});
afterAll(() => {
  runtimes.adapter?.destroy();
  runtimes.gpu?.destroy();
});

type Family = 'llama' | 'llama3' | 'qwen2';

function tinyFiles(family: Family, seed = 1) {
  const json = tinyConfigJson(family);
  const config = parseModelConfig(json);
  const weights = randomWeights(config, seed);
  const st = writeSafetensors([...weights].map(([name, data]) => {
    const shape = shapeOf(config, name, data.length);
    return { name, dtype: 'F32' as const, shape, data };
  }));
  return { config, weights, files: memoryModelFiles({ 'config.json': JSON.stringify(json), 'model.safetensors': st }) };
}

function shapeOf(config: ReturnType<typeof parseModelConfig>, name: string, n: number): number[] {
  for (const t of LORA_TARGETS) {
    for (let l = 0; l < config.numLayers; l++) if (name === weightName(l, t)) return targetShape(config, t);
  }
  if (name.endsWith('embed_tokens.weight') || name === 'lm_head.weight') return [config.vocabSize, config.hiddenSize];
  return [n];
}

const R = 4;
const ALPHA = 8;

function loraFor(config: ReturnType<typeof parseModelConfig>, targets: readonly LoraTarget[] = LORA_TARGETS) {
  const tensors = randomLoraTensors(config, R, targets, { seed: 11, std: 0.2 });
  const spec: LoraSpec = { tensors, alpha: ALPHA };
  const adapter = LoraAdapter.fromTensors(
    rt,
    config,
    { r: R, alpha: ALPHA, dropout: 0, useRslora: false, targetModules: targets, seed: 0 },
    (l, t) => ({ a: tensors.get(peftLoraName(l, t, 'A'))!, b: tensors.get(peftLoraName(l, t, 'B'))! }),
  );
  return { spec, adapter, tensors };
}

// Two rows: a full one and a padded one, plus a row with two packed examples.
const ROWS: BatchRows = {
  inputIds: [
    [3, 17, 5, 9, 22, 41, 8],
    [7, 1, 33, 0, 0, 0, 0],
    [12, 4, 19, 2, 30, 6, 11],
  ],
  segmentIds: [
    [1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 0, 0, 0, 0],
    [1, 1, 1, 2, 2, 2, 2],
  ],
  labels: [
    [3, 17, 5, 9, 22, 41, 8],
    [-100, 1, 33, -100, -100, -100, -100],
    [12, -100, 19, 2, -100, 6, 11],
  ],
};

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return num / Math.max(den, 1e-30);
}

async function gpuModel(family: Family, quant: QuantChoice = 'none') {
  const t = tinyFiles(family);
  const loaded = await loadGpuModel(rt, t.files, { quant });
  return { ...t, model: loaded.model };
}

for (const style of ['adapter', 'gpu'] as const)
describe(`GPU model vs float64 reference (${style === 'adapter' ? "this adapter's kernel shapes" : 'GPU kernel shapes forced'})`, () => {
  beforeAll(() => {
    rt = runtimes[style]!;
  });
  afterAll(() => {
    rt = runtimes.adapter!;
  });

  for (const family of ['llama', 'llama3', 'qwen2'] as const) {
    it(`${family}: logits with LoRA on all modules, padding and packing`, async () => {
      const { config, weights, model } = await gpuModel(family);
      const { spec, adapter } = loraFor(config);
      const batch = makeBatch(ROWS);
      const got = await model.logits(batch, adapter);
      const ref = refForward(weights, config, { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds }, spec);
      const V = config.vocabSize;
      for (let b = 0; b < 3; b++) {
        for (let s = 0; s < 7; s++) {
          if (ROWS.segmentIds![b]![s] === 0) continue; // padding: logits unused
          const t = b * 7 + s;
          expect(maxRelErr(got.subarray(t * V, (t + 1) * V), ref.row(b, s))).toBeLessThan(2e-5);
        }
      }
      adapter.destroy();
      model.destroy();
    });
  }

  it('loss and every LoRA gradient match the reference (finite differences), with and without checkpointing', async () => {
    for (const family of ['llama', 'qwen2'] as const) {
      const { config, weights, model } = await gpuModel(family);
      const { spec, adapter, tensors } = loraFor(config);
      const batch = makeBatch(ROWS);
      const refBatch = { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds, labels: ROWS.labels! };
      const L0 = refLoss(weights, config, refBatch, spec);

      adapter.zeroGrads(rt);
      model.trainStep(batch, adapter, 0);
      const loss = await model.readLoss();
      expect(loss.count).toBe(batch.count);
      expect(Math.abs(loss.mean - L0) / L0).toBeLessThan(1e-5);
      const grads = await adapter.readGrads(rt);

      // Without checkpointing the same numbers come out (same kernels, same order).
      model.checkpointing = false;
      adapter.zeroGrads(rt);
      model.trainStep(batch, adapter, 0);
      const grads2 = await adapter.readGrads(rt);
      for (const [name, g] of grads) expect(grads2.get(name)!.data).toEqual(g.data);

      // Central differences of the float64 reference on a sample of elements of every tensor.
      const h = 1e-4;
      let checked = 0;
      for (const [name, g] of grads) {
        const p = tensors.get(name)!;
        for (const i of [0, Math.floor(p.length / 3), p.length - 1]) {
          const orig = p[i]!;
          const bumped = (d: number) => {
            const copy = new Map(tensors);
            const q = Float64Array.from(p);
            q[i] = orig + d;
            copy.set(name, q as unknown as Float32Array);
            return refLoss(weights, config, refBatch, { ...spec, tensors: copy });
          };
          const fd = (bumped(h) - bumped(-h)) / (2 * h);
          expect(Math.abs(g.data[i]! - fd)).toBeLessThan(2e-5 + 2e-3 * Math.abs(fd));
          checked++;
        }
      }
      expect(checked).toBe(config.numLayers * 7 * 2 * 3);
      adapter.destroy();
      model.destroy();
    }
  });

  it('gradient accumulation over micro-batches equals one batch of all their rows', async () => {
    const { config, model } = await gpuModel('qwen2');
    const { adapter } = loraFor(config);
    const rows = (i: number) => ({
      inputIds: [ROWS.inputIds[i]!],
      segmentIds: [ROWS.segmentIds![i]!],
      labels: [ROWS.labels![i]!],
    });
    const all = makeBatch({ inputIds: [ROWS.inputIds[0]!, ROWS.inputIds[2]!], segmentIds: [ROWS.segmentIds![0]!, ROWS.segmentIds![2]!], labels: [ROWS.labels![0]!, ROWS.labels![2]!] });
    const [b0, b2] = [makeBatch(rows(0)), makeBatch(rows(2))];
    adapter.zeroGrads(rt);
    model.trainStep(all, adapter, 0);
    const whole = await adapter.readGrads(rt);
    adapter.zeroGrads(rt);
    // Same shape twice: the second micro-batch's token upload must not overtake the first's work.
    model.trainStep(b0, adapter, 0, all.count);
    model.trainStep(b2, adapter, 1, all.count);
    const acc = await adapter.readGrads(rt);
    for (const [name, g] of whole) expect(maxRelErr(acc.get(name)!.data, g.data)).toBeLessThan(1e-5);
    adapter.destroy();
    model.destroy();
  });

  for (const quant of ['none', 'nf4'] as const)
  it(`LoRA dropout (${quant === 'nf4' ? 'NF4 base, masks in the fused 4-bit epilogues' : 'f32 base'}): loss and gradients match the reference run with the same masks`, async () => {
    const { config, weights: exact, model } = await gpuModel('llama', quant);
    const weights = quant === 'nf4' ? dequantized(config, exact) : exact;
    const tensors = randomLoraTensors(config, R, LORA_TARGETS, { seed: 12, std: 0.2 });
    const p = 0.25;
    const seed = 77;
    const microStep = 3;
    const adapter = LoraAdapter.fromTensors(
      rt,
      config,
      { r: R, alpha: ALPHA, dropout: p, useRslora: false, targetModules: LORA_TARGETS, seed },
      (l, t) => ({ a: tensors.get(peftLoraName(l, t, 'A'))!, b: tensors.get(peftLoraName(l, t, 'B'))! }),
    );
    const thr = dropoutThreshold(p);
    const scale = Math.fround(1 / (1 - p));
    const spec: LoraSpec = {
      tensors,
      alpha: ALPHA,
      dropoutMask: (l, t, token, i) => {
        const inF = targetShape(config, t)[1];
        return dropoutKeep(dropoutKey(seed, microStep, l, t), token * inF + i, thr) ? scale : 0;
      },
    };
    const batch = makeBatch(ROWS);
    const refBatch = { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds, labels: ROWS.labels! };
    adapter.zeroGrads(rt);
    model.trainStep(batch, adapter, microStep);
    const loss = await model.readLoss();
    const L0 = refLoss(weights, config, refBatch, spec);
    expect(Math.abs(loss.mean - L0) / L0).toBeLessThan(1e-5);
    expect(Math.abs(L0 - refLoss(weights, config, refBatch, { tensors, alpha: ALPHA }))).toBeGreaterThan(1e-4);
    const grads = await adapter.readGrads(rt);
    const h = 1e-4;
    for (const name of [peftLoraName(0, 'q_proj', 'A'), peftLoraName(1, 'down_proj', 'A'), peftLoraName(1, 'up_proj', 'B')]) {
      const pt = tensors.get(name)!;
      for (const i of [1, Math.floor(pt.length / 2)]) {
        const bumped = (d: number) => {
          const copy = new Map(tensors);
          const q = Float64Array.from(pt);
          q[i] = pt[i]! + d;
          copy.set(name, q as unknown as Float32Array);
          return refLoss(weights, config, refBatch, { ...spec, tensors: copy });
        };
        const fd = (bumped(h) - bumped(-h)) / (2 * h);
        expect(Math.abs(grads.get(name)!.data[i]! - fd)).toBeLessThan(2e-5 + 2e-3 * Math.abs(fd));
      }
    }
    adapter.destroy();
    model.destroy();
  });

  it('an adapter after base-only batches of two shapes gets activations of its own rank', async () => {
    // The model keeps two activation sets (prefill and decode shapes); a set made for the base
    // alone (rank 0) must not be reused for an adapter's LoRA products.
    const { config, weights, model } = await gpuModel('llama');
    const { spec, adapter } = loraFor(config);
    const full = makeBatch(ROWS);
    const one = makeBatch({ inputIds: [[3]] });
    await model.logits(full, null); // as the playground does: base prefill, base decode,
    await model.logits(one, null);
    const got = await model.logits(full, adapter); // then the adapter's prefill and decode
    const gotOne = await model.logits(one, adapter);
    const ref = refForward(weights, config, { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds }, spec);
    const refOne = refForward(weights, config, { inputIds: [[3]] }, spec);
    const V = config.vocabSize;
    for (let s = 0; s < 7; s++) expect(maxRelErr(got.subarray(s * V, (s + 1) * V), ref.row(0, s))).toBeLessThan(2e-5);
    expect(maxRelErr(gotOne, refOne.row(0, 0))).toBeLessThan(2e-5);
    adapter.destroy();
    model.destroy();
  });

  /** The weights with every linear replaced by its NF4 (double-quantized) dequantization. */
  function dequantized(config: ReturnType<typeof parseModelConfig>, weights: Map<string, Float32Array>): Map<string, Float32Array> {
    const deq = new Map(weights);
    for (let l = 0; l < config.numLayers; l++) {
      for (const t of LORA_TARGETS) {
        const q = quantizeLinear(weights.get(weightName(l, t))!, targetShape(config, t), { type: 'nf4', doubleQuant: true });
        deq.set(weightName(l, t), dequantizeLinear(q));
      }
    }
    return deq;
  }

  it('NF4 + LoRA (expansion fused into the 4-bit forward where the device allows): logits, loss and gradients equal the reference on the dequantized weights', async () => {
    const { config, weights, model } = await gpuModel('qwen2', 'nf4'); // q/k/v biases too
    const deq = dequantized(config, weights);
    const { spec, adapter, tensors } = loraFor(config);
    const batch = makeBatch(ROWS);
    const got = await model.logits(batch, adapter);
    const ref = refForward(deq, config, { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds }, spec);
    const V = config.vocabSize;
    for (let s = 0; s < 7; s++) expect(maxRelErr(got.subarray(s * V, (s + 1) * V), ref.row(0, s))).toBeLessThan(2e-5);
    const refBatch = { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds, labels: ROWS.labels! };
    const L0 = refLoss(deq, config, refBatch, spec);
    adapter.zeroGrads(rt);
    model.trainStep(batch, adapter, 0);
    expect(Math.abs((await model.readLoss()).mean - L0) / L0).toBeLessThan(1e-5);
    const grads = await adapter.readGrads(rt);
    const h = 1e-4;
    for (const [name, g] of grads) {
      const p = tensors.get(name)!;
      for (const i of [Math.floor(p.length / 2), p.length - 1]) {
        const bumped = (d: number) => {
          const q = Float64Array.from(p);
          q[i] = p[i]! + d;
          return refLoss(deq, config, refBatch, { ...spec, tensors: new Map(tensors).set(name, q as unknown as Float32Array) });
        };
        const fd = (bumped(h) - bumped(-h)) / (2 * h);
        expect(Math.abs(g.data[i]! - fd)).toBeLessThan(2e-5 + 2e-3 * Math.abs(fd));
      }
    }
    adapter.destroy();
    model.destroy();
  });

  it('NF4: the GPU model equals the reference run on the dequantized weights', async () => {
    const { config, weights, model } = await gpuModel('llama', 'nf4');
    const deq = dequantized(config, weights);
    const batch = makeBatch(ROWS);
    const got = await model.logits(batch, null);
    const ref = refForward(deq, config, { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds });
    const exact = refForward(weights, config, { inputIds: ROWS.inputIds, segmentIds: ROWS.segmentIds });
    const V = config.vocabSize;
    let quantErr = 0;
    for (let s = 0; s < 7; s++) {
      expect(maxRelErr(got.subarray(s * V, (s + 1) * V), ref.row(0, s))).toBeLessThan(2e-5);
      quantErr = Math.max(quantErr, maxRelErr(ref.row(0, s), exact.row(0, s)));
    }
    // Quantization changes the logits visibly, so the comparison above is not vacuous.
    expect(quantErr).toBeGreaterThan(1e-3);
    model.destroy();
  });
});
