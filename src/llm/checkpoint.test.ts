// Checkpoints and exact resume on a tiny random Llama (NF4 base, LoRA with dropout on every linear,
// cosine schedule, gradient accumulation, more than one epoch): a run killed between checkpoints and
// resumed on a fresh runtime ends with the same adapter, bit for bit, and the same loss history as an
// uninterrupted run (with Adam m/v paged in the interrupted run); a torn checkpoint (crash before the
// pointer switch) and a damaged latest checkpoint fall back to the last good one with a clear message;
// resuming with a different setup is refused.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { parseModelConfig } from '../model/config.ts';
import { LORA_TARGETS, modelTensorShapes } from '../model/names.ts';
import { randomWeights, tinyConfigJson } from '../model/tiny-model.ts';
import { prepareData } from '../data/pipeline.ts';
import { createDataTokenizer } from '../data/tokenize.ts';
import { chatTemplateFromConfig } from '../data/template.ts';
import { byteTokenizerJson, LLAMA2_CONFIG, SP_SPECIALS } from '../data/test-fixtures.ts';
import { makeTrainConfig } from '../train/train-config.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import type { ByteStore } from '../storage/store.ts';
import { loadGpuModel } from './load.ts';
import { LoraAdapter } from './lora.ts';
import { finetune, type FinetuneOptions, type FinetuneResult } from './finetune.ts';
import { saveAdapter } from './adapter-io.ts';
import { CheckpointError, loadCheckpoint } from './checkpoint.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const MODEL_JSON = tinyConfigJson('llama', { vocab_size: 272, max_position_embeddings: 64 });
const MODEL_CONFIG = parseModelConfig(MODEL_JSON);
const SHAPES = new Map(modelTensorShapes(MODEL_CONFIG).map((t) => [t.name, t.shape]));
const WEIGHTS = writeSafetensors([...randomWeights(MODEL_CONFIG, 4)].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: SHAPES.get(name)!, data })));
const TOK_CFG = JSON.parse(LLAMA2_CONFIG) as Record<string, unknown>;
const TEXTS = [
  'Once upon a time there was a cat.', 'The cat sat on a mat.', 'A dog ran in the park.', 'Lily liked to read books.',
  'The sun was hot and bright.', 'Tom had a red ball.', 'They played all day long.', 'The bird sang a song.',
  'Mom made a big cake.', 'It was a happy day.', 'The fish swam fast.', 'Ben saw a tall tree.',
];
// 10 train examples in micro-batches of 2, 2 per step: 3 steps an epoch (the last one short), so 5 steps cross an epoch.
const TRAIN = makeTrainConfig({ lr: 1e-2, maxSteps: 5, warmupSteps: 1, schedule: 'cosine', batchSize: 2, gradAccum: 2, seqLen: 24, seed: 3, maxGradNorm: 1, weightDecay: 0.01 });
const RUN = 'test-run';

async function run(runtime: GpuRuntime, opts: Partial<FinetuneOptions> = {}): Promise<{ result: FinetuneResult; weights: Uint8Array }> {
  const tok = createDataTokenizer(byteTokenizerJson(SP_SPECIALS), TOK_CFG);
  const data = await prepareData(
    { kind: 'rows', name: 'tiny', rows: TEXTS.map((text) => ({ text })) },
    { format: 'text', maxLength: 24, evalSplit: 2, seed: 3, batchSize: 2, padding: 'longest', labelMode: 'all' },
    tok,
    chatTemplateFromConfig(TOK_CFG, {}),
  );
  const files = memoryModelFiles({ 'config.json': JSON.stringify(MODEL_JSON), 'model.safetensors': WEIGHTS });
  const { model, config } = await loadGpuModel(runtime, files, { quant: 'nf4', maxPositions: 24 });
  const lora = LoraAdapter.init(runtime, config, { r: 4, alpha: 8, dropout: 0.1, useRslora: false, targetModules: LORA_TARGETS, seed: 9 });
  try {
    const result = await finetune(runtime, model, lora, data, { train: TRAIN, evalEvery: 2, meta: { modelId: 'tiny', options: { data: 'tiny' } }, ...opts });
    const files = await saveAdapter(runtime, lora, 'tiny');
    return { result, weights: files['adapter_model.safetensors'] as Uint8Array };
  } finally {
    lora.destroy();
    model.destroy();
  }
}

/** The numbers of a loss history (not the timings). */
const numbers = (r: FinetuneResult) => r.history.map((h) => [h.step, h.epoch, h.loss, h.lr, h.gradNorm, h.evalLoss ?? null]);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/** A store whose put of a key matching `failOn` throws (a crash at that point). */
class CrashingStore extends MemoryStore {
  failOn: ((key: string) => boolean) | null = null;
  override async put(key: string, value: Uint8Array): Promise<void> {
    if (this.failOn?.(key)) throw new Error(`simulated crash before writing ${key}`);
    return super.put(key, value);
  }
}

async function corrupt(store: ByteStore, key: string, at: number): Promise<void> {
  const b = (await store.get(key))!;
  b[at] = b[at]! ^ 0xff;
  await store.put(key, b);
}

let reference: { result: FinetuneResult; weights: Uint8Array };

describe('checkpoints and exact resume', () => {
  it('a run killed between checkpoints and resumed on a fresh runtime equals the uninterrupted run bit for bit', async () => {
    reference = await run(rt);
    expect(reference.result.steps).toBe(5);
    expect(new Set(reference.result.history.map((h) => h.epoch))).toEqual(new Set([0, 1]));

    const store = new MemoryStore('disk');
    const killed = run(rt, {
      store, runId: RUN, checkpointEvery: 2, gpuBudget: 6000,
      onStep: (e) => {
        if (e.step === 3) throw new Error('killed'); // after the step-2 checkpoint, before the next one
      },
    });
    await expect(killed).rejects.toThrow('killed');
    const ckpts = (await store.list(`v1/runs/${RUN}/checkpoints/`)).map((e) => e.key);
    expect(ckpts.some((k) => /step-0000002-.*\/tensors\.bin$/.test(k))).toBe(true);

    // A new process: new runtime, model and adapter; only the store survives.
    const rt2 = await createNodeRuntime();
    const messages: string[] = [];
    try {
      const resumed = await run(rt2, { store, runId: RUN, resume: true, checkpointEvery: 2, gpuBudget: 6000, onMessage: (m) => messages.push(m) });
      expect(resumed.result.resumedFrom).toBe(2);
      expect(messages.join('\n')).toMatch(/resumed from checkpoint step-0000002-\S+ at step 2\/5/);
      expect(resumed.result.steps).toBe(5);
      expect(numbers(resumed.result)).toEqual(numbers(reference.result));
      expect(resumed.result.initialEvalLoss).toBe(reference.result.initialEvalLoss);
      expect(resumed.result.evalLoss).toBe(reference.result.evalLoss);
      expect(resumed.result.paging!.pagesIn).toBeGreaterThan(0);
      expect(same(resumed.weights, reference.weights)).toBe(true);
    } finally {
      rt2.destroy();
    }
    // The final checkpoint plus one before it are kept; the live optimizer pages are gone.
    const left = new Set((await store.list(`v1/runs/${RUN}/`)).map((e) => e.key.split('/').slice(3, 5).join('/')));
    expect([...left].filter((k) => k.startsWith('checkpoints/'))).toHaveLength(2);
    expect([...left].some((k) => k.startsWith('pages/'))).toBe(false);
  });

  it('a torn checkpoint (crash before the pointer switch) and a damaged latest one fall back to the last good one', async () => {
    const store = new CrashingStore('disk');
    let latestPuts = 0;
    store.failOn = (key) => key.endsWith('/latest') && ++latestPuts === 3;
    await expect(run(rt, { store, runId: RUN, checkpointEvery: 1 })).rejects.toThrow(/simulated crash before writing v1\/runs\/test-run\/latest/);
    store.failOn = null;
    const messages: string[] = [];
    const ck = await loadCheckpoint(store, RUN, (m) => messages.push(m));
    expect(ck!.state.step).toBe(2);
    expect(messages.join('\n')).toMatch(/ignoring checkpoint step-0000003-\S+ \(step 3\): it was never completed/);

    // Resuming from the torn state still reproduces the uninterrupted run, and cleans the torn checkpoint up.
    const resumed = await run(rt, { store, runId: RUN, resume: true, checkpointEvery: 1 });
    expect(resumed.result.resumedFrom).toBe(2);
    expect(numbers(resumed.result)).toEqual(numbers(reference.result));
    expect(same(resumed.weights, reference.weights)).toBe(true);

    // Damaged latest (a flipped byte in its tensors): back to step 4, naming the page.
    const [five] = (await store.list(`v1/runs/${RUN}/checkpoints/step-0000005-`)).filter((e) => e.key.endsWith('tensors.bin'));
    await corrupt(store, five!.key, 100);
    messages.length = 0;
    expect((await loadCheckpoint(store, RUN, (m) => messages.push(m)))!.state.step).toBe(4);
    expect(messages.join('\n')).toMatch(/checkpoint step-0000005-\S+ \(step 5\) is damaged: page 0\.q_proj fails its checksum; falling back to step-0000004-\S+ \(step 4\)/);

    // Unreadable state of step 4 too: nothing intact is left.
    const [four] = (await store.list(`v1/runs/${RUN}/checkpoints/step-0000004-`)).filter((e) => e.key.endsWith('state.json'));
    await store.put(four!.key, new TextEncoder().encode('{"state": {'));
    messages.length = 0;
    await expect(loadCheckpoint(store, RUN, (m) => messages.push(m))).rejects.toThrow(CheckpointError);
    expect(messages.join('\n')).toMatch(/step-0000004-\S+ \(step 4\) is damaged: state\.json is not valid JSON/);
  });

  it('refuses to resume with a different setup, naming what changed', async () => {
    const store = new MemoryStore();
    await run(rt, { store, runId: 'short', checkpointEvery: 0, onStep: () => false });
    const other = { ...TRAIN, lr: 2e-2 };
    await expect(run(rt, { store, runId: 'short', resume: true, train: other })).rejects.toThrow(/cannot resume with a different setup:\n- config\.train\.lr: 0\.01 then, 0\.02 now/);
  });
});
