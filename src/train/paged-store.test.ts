// Paged optimizer state: training a tiny random Llama with Adam m/v paged to a store under a GPU budget
// smaller than the optimizer state gives the same adapter and the same m/v, bit for bit, as training with
// everything resident (both sweep orders: zigzag, and fixed, which exercises the other write-back path);
// pages really move and the statistics say so; evicted pages' buffers are reused.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { parseModelConfig } from '../model/config.ts';
import { LORA_TARGETS, modelTensorShapes } from '../model/names.ts';
import { randomWeights, tinyConfigJson } from '../model/tiny-model.ts';
import { loadGpuModel } from '../llm/load.ts';
import { LoraAdapter } from '../llm/lora.ts';
import { makeBatch } from '../llm/batch.ts';
import { Trainer, type OptimConfig } from '../llm/trainer.ts';
import type { GpuModel } from '../llm/model.ts';
import type { ModelConfig } from '../model/config.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import type { OptimizerStore } from './adamw.ts';
import { PagedOptimizerStore } from './paged-store.ts';

let rt: GpuRuntime;
let model: GpuModel;
let config: ModelConfig;
beforeAll(async () => {
  rt = await createNodeRuntime();
  const json = tinyConfigJson('llama');
  config = parseModelConfig(json);
  const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
  const st = writeSafetensors([...randomWeights(config, 3)].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
  ({ model } = await loadGpuModel(rt, memoryModelFiles({ 'config.json': JSON.stringify(json), 'model.safetensors': st }), { quant: 'nf4' }));
});
afterAll(() => {
  model?.destroy();
  rt?.destroy();
});

const OPTIM: OptimConfig = { lr: 5e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 0.5, schedule: 'cosine', warmupSteps: 1, totalSteps: 5 };

function batches(step: number) {
  return [0, 1].map((i) => makeBatch({ inputIds: [0, 1].map((b) => Array.from({ length: 12 }, (_, s) => (step * 31 + i * 17 + b * 7 + s * 13 + 1) % config.vocabSize)) }));
}

async function train(paged?: { budget: number; order: 'zigzag' | 'fixed' }) {
  const lora = LoraAdapter.init(rt, config, { r: 4, alpha: 8, dropout: 0.1, useRslora: false, targetModules: LORA_TARGETS, seed: 5 });
  let store: PagedOptimizerStore | undefined;
  if (paged) {
    store = new PagedOptimizerStore(rt, { store: new MemoryStore(), prefix: 'v1/runs/test/pages', budget: paged.budget, order: paged.order });
    for (const m of lora.modules.values()) store.add(`${m.layer}.${m.target}`, m.params, m.grads, m.size);
  }
  const trainer = new Trainer(rt, model, lora, OPTIM, store);
  const losses: number[] = [];
  const made: number[] = [];
  const pagesIn: number[] = [];
  for (let s = 0; s < OPTIM.totalSteps; s++) {
    losses.push((await trainer.trainStep(batches(s))).loss);
    made.push(store?.stats.buffersMade ?? 0);
    pagesIn.push(store?.stats.pagesIn ?? 0);
  }
  const params: Uint8Array[] = [];
  const state: Uint8Array[] = [];
  for (const m of lora.modules.values()) {
    params.push(new Uint8Array(await rt.read(m.params, m.size * 4)));
    const { m: mm, v } = await readState(trainer.store, `${m.layer}.${m.target}`);
    state.push(new Uint8Array(mm.buffer), new Uint8Array(v.buffer));
  }
  const stats = store?.stats;
  const stateBytes = [...lora.modules.values()].reduce((n, m) => n + m.size * 8, 0);
  trainer.destroy();
  await store?.clear();
  lora.destroy();
  return { losses, params, state, stats, stateBytes, made, pagesIn };
}

async function readState(store: OptimizerStore, key: string) {
  if (store instanceof PagedOptimizerStore) return store.readState(key);
  const p = await store.acquire(key);
  const out = { m: await rt.readF32(p.m, p.length), v: await rt.readF32(p.v, p.length) };
  store.release(key);
  return out;
}

const same = (a: Uint8Array[], b: Uint8Array[]) => a.length === b.length && a.every((x, i) => Buffer.from(x).equals(Buffer.from(b[i]!)));

describe('PagedOptimizerStore', () => {
  it('trains bit-identically to resident optimizer state under a budget below the state, and reports its traffic', async () => {
    const ref = await train();
    const budget = Math.floor(ref.stateBytes * 0.4);
    const pagesIn: Record<string, number> = {};
    for (const order of ['zigzag', 'fixed'] as const) {
      const got = await train({ budget, order });
      const s = got.stats!;
      console.log(`${order}: budget ${budget} of ${ref.stateBytes} bytes; pages in ${s.pagesIn} out ${s.pagesOut}, ${s.bytesIn} B in, ${s.bytesOut} B out, waited ${s.waitMs.toFixed(1)} ms; buffers made after each step ${got.made.join(', ')}`);
      expect(got.losses).toEqual(ref.losses);
      expect(same(got.params, ref.params)).toBe(true);
      expect(same(got.state, ref.state)).toBe(true);
      expect(s.pagesIn).toBeGreaterThan(0);
      expect(s.pagesOut).toBeGreaterThan(0);
      expect(s.bytesIn).toBeGreaterThan(0);
      expect(s.peakResidentBytes).toBeLessThanOrEqual(budget);
      pagesIn[order] = s.pagesIn;
      // Evicted pages' buffers (and write-back staging) are reused: after the first steps, far fewer
      // buffers are made than pages come in (making new ones took two per page and one per batch).
      const last = got.made.length - 1;
      expect(got.made[last]! - got.made[1]!).toBeLessThan((got.pagesIn[last]! - got.pagesIn[1]!) / 2);
    }
    // A fixed order misses every page every step under LRU; zigzag only the pages beyond the budget.
    expect(pagesIn.zigzag).toBeLessThan(pagesIn.fixed!);
  });

  it('stays bit-identical under a budget of one page or little more (pages move into larger pooled buffers)', async () => {
    const ref = await train();
    const lora = LoraAdapter.init(rt, config, { r: 4, alpha: 8, dropout: 0.1, useRslora: false, targetModules: LORA_TARGETS, seed: 5 });
    const sizes = [...lora.modules.values()].map((m) => m.size * 8);
    lora.destroy();
    for (const budget of [Math.max(...sizes), Math.max(...sizes) + Math.min(...sizes) - 8]) {
      const got = await train({ budget, order: 'zigzag' });
      expect(got.losses).toEqual(ref.losses);
      expect(same(got.params, ref.params)).toBe(true);
      expect(same(got.state, ref.state)).toBe(true);
      expect(got.stats!.peakResidentBytes).toBeLessThanOrEqual(budget);
    }
  });

  it('refuses a budget smaller than one page, naming the page', () => {
    const s = new PagedOptimizerStore(rt, { store: new MemoryStore(), prefix: 'p', budget: 100 });
    const buf = rt.create(64);
    expect(() => s.add('0.q_proj', buf, buf, 16)).toThrow(/budget of 100 bytes is smaller than the optimizer state of one page \("0.q_proj": 128 bytes/);
    buf.destroy();
  });
});
