// The engine session as the worker runs it, in Node on the real GPU runtime with an in-memory
// store: a model folder given as File objects (as <input webkitdirectory> gives them) imported
// into the cache, the shipped sample dataset, a run with pause / resume and stop, events for every
// step (memory, paging traffic), generation with the trained adapter, the runs list, and a run
// resumed by a fresh session on the same store (what a reloaded tab does).

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { REPO_ROOT, sharedPath } from '../node/shared.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import { makeLoraConfig } from '../train/lora-config.ts';
import { makeTrainConfig } from '../train/train-config.ts';
import type { DataOptions, DataSpec, EngineEvent, TrainArgs } from './protocol.ts';
import { EngineSession } from './session.ts';

const SAMPLE = join(REPO_ROOT, 'public/samples/plant-care-chat.jsonl');

function folderFiles(dir: string): File[] {
  return readdirSync(dir).map((name) => new File([readFileSync(join(dir, name))], name));
}

type Step = Extract<EngineEvent, { kind: 'train-step' }>;
const stepsOf = (events: EngineEvent[]) => events.filter((e): e is Step => e.kind === 'train-step');
const statesOf = (events: EngineEvent[]) => events.filter((e) => e.kind === 'train-state').map((e) => (e as { state: string }).state);

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const options: DataOptions = { format: 'auto', labelMode: 'assistant', maxLength: 128, packing: false, evalSplit: 4, seed: 0, batchSize: 1 };

function trainArgs(spec: DataSpec, runId: string, over: Partial<TrainArgs> = {}): TrainArgs {
  return {
    data: spec,
    dataOptions: options,
    lora: makeLoraConfig({ r: 4, alpha: 8, dropout: 0 }),
    train: makeTrainConfig({ lr: 3e-3, maxSteps: 4, gradAccum: 1, batchSize: 1, seqLen: 128, warmupSteps: 0, warmupRatio: 0, evalSplit: 4 }),
    evalEvery: 0,
    checkpointEvery: 0,
    optimizerBudget: null,
    runId,
    label: 'test run',
    ...over,
  };
}

describe('engine session (worker side)', () => {
  it('imports a folder, loads it, prepares the sample, trains with pause/resume and paging, generates, lists and resumes runs', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const store = new MemoryStore('test store');
    const events: EngineEvent[] = [];
    const s = new EngineSession({ emit: (e) => events.push(e), store, storage: null });

    // inspect the picked files, then import them into the cache and load from there
    const files = folderFiles(dir);
    const ins = await s.inspectModel({ kind: 'files', name: 'stories260K', files });
    expect(ins).toMatchObject({ modelType: 'llama', cached: null, chatTemplate: null });
    expect(ins.dims.numLayers).toBe(5);
    expect(ins.files.map((f) => f.name)).toContain('model.safetensors');
    const imported = await s.importModel({ downloadId: 'i1', name: 'stories260K', files });
    expect(imported).toEqual({ repo: 'local/stories260K', revision: 'local' });
    expect(events.some((e) => e.kind === 'download-progress')).toBe(true);
    const cache = await s.listCache();
    expect(cache.map((c) => [c.repo, c.complete])).toEqual([['local/stories260K', true]]);
    const info = await s.loadModel(rt, { source: { kind: 'cache', ...imported }, quant: 'nf4' });
    expect(info).toMatchObject({ quant: 'nf4', templateIsFallback: true, cached: imported, name: 'stories260K' });
    expect(events.filter((e) => e.kind === 'load-progress').length).toBeGreaterThan(10);

    const spec: DataSpec = { kind: 'text', name: 'plant-care-chat.jsonl', text: readFileSync(SAMPLE, 'utf8') };
    const data = await s.prepareData({ spec, options });
    expect(data).toMatchObject({ format: 'messages', detected: true });
    expect(data.stats.rows).toBe(40);
    expect(data.stats.eval.examples).toBe(4);
    const runs = data.previews[0]!.runs;
    expect(runs.some((r) => r.trained && r.text.includes('Happy growing!'))).toBe(true);
    expect(runs.some((r) => !r.trained)).toBe(true);

    // a run with paging (one page of Adam state on the GPU), paused after its first step
    events.length = 0;
    // stories260K's largest LoRA module at r=4 is down_proj: 4·(172 + 64) params, 8 bytes of m+v each
    const running = s.train(trainArgs(spec, 'r1', { optimizerBudget: 8 * 4 * (172 + 64) }));
    await until(() => stepsOf(events).length > 0);
    expect(s.pauseTraining()).toMatch(/pausing|paused/);
    await until(() => statesOf(events).includes('paused'));
    const stepsWhenPaused = stepsOf(events).length;
    await new Promise((r) => setTimeout(r, 200));
    expect(stepsOf(events).length).toBe(stepsWhenPaused);
    // the GPU is free while paused: the base model generates
    const g0 = await s.generate({ requestId: 'g0', prompt: 'Once upon a time', chat: false, adapter: false, maxNewTokens: 8 });
    expect(g0.tokens).toBeGreaterThan(0);
    expect(s.resumeTraining()).toBe('running');
    const summary = await running;
    expect(summary).toMatchObject({ state: 'done', steps: 4, totalSteps: 4 });
    const steps = stepsOf(events);
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4]);
    for (const e of steps) {
      expect(Number.isFinite(e.loss)).toBe(true);
      expect(e.memory.live).toBeGreaterThan(info.weightBytes);
    }
    expect(steps[3]!.paging!.pagesOut).toBeGreaterThan(0);
    expect(steps[3]!.paging!.bytesIn).toBeGreaterThan(0);
    expect(summary.paging!.pagesIn).toBeGreaterThan(0);
    expect(steps[3]!.evalLoss).toBeGreaterThan(0);
    expect(events.some((e) => e.kind === 'train-eval' && e.step === 0)).toBe(true);
    expect(events.some((e) => e.kind === 'checkpoint')).toBe(true);
    expect(statesOf(events)).toEqual(['preparing', 'running', 'pausing', 'paused', 'running', 'done']);

    // generation with the adapter streams tokens whose concatenation is the text
    events.length = 0;
    const g = await s.generate({ requestId: 'g1', prompt: 'How often should I water a cactus?', chat: true, adapter: true, maxNewTokens: 12 });
    const streamed = events.filter((e) => e.kind === 'token').map((e) => (e as { text: string }).text).join('');
    expect(streamed).toBe(g.text);

    // a second run, stopped after its second step (checkpoint on stop)
    events.length = 0;
    const second = s.train(trainArgs(spec, 'r2', { train: makeTrainConfig({ lr: 3e-3, maxSteps: 6, gradAccum: 1, batchSize: 1, seqLen: 128, warmupSteps: 0, warmupRatio: 0, evalSplit: 4 }) }));
    await until(() => stepsOf(events).length >= 2);
    s.stopTraining();
    const stopped = await second;
    expect(stopped.state).toBe('stopped');
    const stoppedAt = stopped.steps;
    expect(stoppedAt).toBeLessThan(6);

    const listed = await s.listRuns();
    expect(listed.map((r) => r.record.runId).sort()).toEqual(['r1', 'r2']);
    const r2 = listed.find((r) => r.record.runId === 'r2')!;
    expect(r2).toMatchObject({ step: stoppedAt, totalSteps: 6, finished: false });
    expect(r2.record.data.kind).toBe('stored'); // the pasted text is kept with the run
    expect(r2.record.model).toEqual({ repo: 'local/stories260K', revision: 'local', name: 'stories260K' });
    expect(r2.history.map((h) => h.step)).toEqual(Array.from({ length: stoppedAt }, (_, i) => i + 1));
    s.unload();

    // a reloaded tab: a fresh session on the same store loads the cached model and resumes r2
    const events2: EngineEvent[] = [];
    const s2 = new EngineSession({ emit: (e) => events2.push(e), store, storage: null });
    await s2.loadModel(rt, { source: { kind: 'cache', repo: 'local/stories260K', revision: 'local' } });
    const resumed = await s2.train({ ...trainArgs({ kind: 'url', name: 'unused', url: 'unused' }, 'r2'), resume: true });
    expect(resumed).toMatchObject({ state: 'done', steps: 6, resumedFrom: stoppedAt });
    expect(stepsOf(events2).map((e) => e.step)).toEqual(Array.from({ length: 6 - stoppedAt }, (_, i) => stoppedAt + i + 1));
    expect(events2.some((e) => e.kind === 'train-note' && /resumed/.test(e.message))).toBe(true);

    expect(await s2.deleteRun('r1')).toBe(true);
    expect((await s2.listRuns()).map((r) => r.record.runId)).toEqual(['r2']);
    expect(await s2.deleteCached('local/stories260K')).toBe(1);
    expect(await s2.listCache()).toEqual([]);
  });

  it('explains what is wrong with a folder that is not a model', async () => {
    const s = new EngineSession({ emit: () => {}, store: new MemoryStore() });
    await expect(s.inspectModel({ kind: 'files', name: 'photos', files: [new File(['x'], 'cat.jpg')] })).rejects.toThrow(/no config.json/);
    const bad = new File([JSON.stringify({ model_type: 'gpt2', n_embd: 8 })], 'config.json');
    await expect(s.inspectModel({ kind: 'files', name: 'gpt2', files: [bad] })).rejects.toThrow(/not supported/);
    await expect(s.inspectModel({ kind: 'cache', repo: 'a/b' })).rejects.toThrow(/not in the cache/);
    await expect(s.prepareData({ spec: { kind: 'text', name: 'x', text: 'a' }, options })).rejects.toThrow(/Pick a model first/);
  });
});

async function until(cond: () => boolean, ms = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
