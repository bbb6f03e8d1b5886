// The studio's model / data / training state against a scripted engine (no worker, no GPU): what is
// preselected, the estimate before anything is downloaded, download → load → data preparation,
// errors in words (a refused token, a full quota, a paused download), a run's events becoming the
// dashboard's numbers, paging when the budget is small, and resuming a kept run after a reload.

import { describe, expect, it, vi } from 'vitest';
import type { AdapterReport } from '../gpu/runtime.ts';
import type { CommandArgs, CommandName, CommandResult, EngineEvent, ModelInfo, RunListing } from '../worker/protocol.ts';
import { DEFAULT_REPO } from './catalog.ts';
import { EngineError, type EngineApi } from './engine-client.ts';
import { errorInfo } from './errors.ts';
import { endpointProblem } from './hub-settings.ts';
import { dataOptions, dataSpec } from './state/data.ts';
import { cachedToLoad } from './state/model.ts';
import { currentEstimate, gpuBudget, matchesPreset, optimizerBudgetFor } from './state/train.ts';
import { createStudioStore } from './store.ts';

const adapter: AdapterReport = {
  vendor: 'google', architecture: 'swiftshader', device: '', description: '', backend: 'browser', isFallbackAdapter: true, features: [],
  limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 },
};

const dims = { numLayers: 5, hiddenSize: 64, intermediateSize: 172, numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512, tieWordEmbeddings: true, maxPositionEmbeddings: 512 };

const modelInfo = (over: Partial<ModelInfo> = {}): ModelInfo => ({
  name: 'test/stories260K', cached: { repo: 'test/stories260K', revision: 'main' }, modelType: 'llama', dims, params: 260_000, prequantized: false,
  files: [], bytes: 1_000_000, hasTokenizer: true, chatTemplate: null, quant: 'nf4', weightBytes: 300_000, gpuBytes: 400_000, loadMs: 20,
  vocabSize: 512, bosToken: '<s>', eosToken: '</s>', template: 'fallback', templateIsFallback: true, ...over,
});

type Handler<K extends CommandName> = (args: CommandArgs<K>) => Promise<CommandResult<K>> | CommandResult<K>;

/** An engine whose commands are scripted per test; `emit` plays worker events. */
function scriptedEngine(handlers: { [K in CommandName]?: Handler<K> }) {
  const events = new Set<(e: EngineEvent) => void>();
  const calls: Array<{ command: CommandName; args: unknown }> = [];
  const engine: EngineApi & { emit(e: EngineEvent): void; calls: typeof calls } = {
    calls,
    probe: async () => ({ available: true, adapter }),
    selftest: vi.fn(),
    call: (async (command: CommandName, args: unknown) => {
      calls.push({ command, args });
      const h = handlers[command] as ((a: unknown) => unknown) | undefined;
      if (!h) throw new EngineError(`no handler for ${command}`, 'Error', command);
      return h(args);
    }) as EngineApi['call'],
    onError: () => () => {},
    onEvent: (l) => {
      events.add(l);
      return () => events.delete(l);
    },
    emit: (e) => events.forEach((l) => l(e)),
  };
  return engine;
}

async function readyStore(handlers: Parameters<typeof scriptedEngine>[0]) {
  const store = createStudioStore();
  const engine = scriptedEngine(handlers);
  store.getState().attachEngine(engine);
  await store.getState().checkGpu(null);
  return { store, engine };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('first visit', () => {
  it('preselects a small Hub model, the sample dataset and Quick try, with an estimate before any download', async () => {
    const { store } = await readyStore({});
    const s = store.getState();
    expect(s.hubRepo).toBe(DEFAULT_REPO);
    expect(s.modelOrigin).toBe('hub');
    expect(s.dataChoice).toBe('sample');
    expect(s.presetId).toBe('quick-try');
    expect(matchesPreset(s)).toBe(true);
    expect(dataSpec(s)).toMatchObject({ kind: 'url', name: 'plant-care-chat.jsonl' });
    expect(dataOptions(s)).toMatchObject({ format: 'auto', labelMode: 'assistant', maxLength: 256 });
    const est = currentEstimate(s)!;
    expect(est.params.total).toBe(134_515_008);
    expect(est.verdict).toBe('fits');
    expect(gpuBudget(s)).toBe(2 ** 30); // the adapter's maxBufferSize
    s.setTrain({ seqLen: 512 });
    expect(matchesPreset(store.getState())).toBe(false);
  });
});

describe('models', () => {
  it('downloads, loads, then prepares the chosen data; progress events land in the state', async () => {
    let downloadId = '';
    const { store, engine } = await readyStore({
      download: async (a) => {
        downloadId = a.downloadId;
        engine.emit({ kind: 'download-progress', downloadId: a.downloadId, progress: { repo: a.repo, revision: 'main', files: [], total: { size: 100, bytes: 40, fetched: 40, rate: 10, eta: 6, files: 5, filesDone: 2 } } });
        expect(a).toMatchObject({ quantize: 'nf4', keepOriginal: false }); // a 4-bit copy is stored as it lands
        return { repo: a.repo, revision: 'main', loadRevision: 'main+nf4', droppedOriginal: true, fetched: 100, resumed: 0, restarts: 0, elapsedMs: 5, persisted: true };
      },
      loadModel: async (a) => {
        engine.emit({ kind: 'load-progress', done: 3, total: 10, name: 'x' });
        expect(store.getState().load.progress).toEqual({ done: 3, total: 10, name: 'x' });
        expect(a.source).toEqual({ kind: 'cache', repo: DEFAULT_REPO, revision: 'main+nf4' });
        return modelInfo({ name: DEFAULT_REPO, cached: { repo: DEFAULT_REPO, revision: 'main+nf4' }, prequantized: true });
      },
      prepareData: async (a) => {
        expect(a.spec.kind).toBe('url');
        return { name: 'sample', format: 'messages', detected: true, stats: { rows: 40 } as never, previews: [], ms: 3 };
      },
      listCache: async () => [],
      storageInfo: async () => ({ store: 'memory', quota: null, usage: null, persisted: null }),
    });
    await store.getState().loadSelectedModel();
    const s = store.getState();
    expect(s.download).toMatchObject({ id: downloadId, status: 'done', progress: { total: { bytes: 40 } } });
    expect(s.load.error?.message ?? null).toBeNull();
    expect(s.load.status).toBe('ready');
    await flush();
    expect(store.getState().data.status).toBe('ready');
    expect(engine.calls.map((c) => c.command)).toEqual(expect.arrayContaining(['download', 'loadModel', 'prepareData']));
  });

  it('loads a complete 4-bit copy from the cache without downloading again', async () => {
    const entry = (revision: string, complete = true) => ({ repo: DEFAULT_REPO, revision, source: 'hub' as const, complete, files: 5, filesDone: 5, bytes: 1, partialBytes: 0, size: 1, updated: 1, prefix: '' });
    expect(cachedToLoad([entry('main'), entry('main+nf4')], DEFAULT_REPO, 'main', 'nf4')).toBe('main+nf4');
    expect(cachedToLoad([entry('main'), entry('main+nf4')], DEFAULT_REPO, 'main', 'none')).toBe('main');
    expect(cachedToLoad([entry('main+nf4', false)], DEFAULT_REPO, 'main', 'nf4')).toBeNull();
    const { store, engine } = await readyStore({
      listCache: async () => [entry('main+nf4')],
      storageInfo: async () => ({ store: 'm', quota: null, usage: null, persisted: null }),
      loadModel: async (a) => modelInfo({ cached: a.source.kind === 'cache' ? { repo: a.source.repo, revision: a.source.revision! } : null }),
      prepareData: async () => ({ name: 's', format: 'messages', detected: true, stats: {} as never, previews: [], ms: 1 }),
    });
    await store.getState().loadSelectedModel();
    expect(engine.calls.map((c) => c.command)).not.toContain('download');
    expect(engine.calls.find((c) => c.command === 'loadModel')!.args).toMatchObject({ source: { revision: 'main+nf4' } });
  });

  it('says when the Hub refuses the token, and a paused download is not an error', async () => {
    const refused = Object.assign(new EngineError('HTTP 401 (unauthorized): the access token was refused', 'HubError', 'download', undefined, 'auth'));
    const { store } = await readyStore({ download: async () => Promise.reject(refused), listCache: async () => [], storageInfo: async () => ({ store: 'm', quota: null, usage: null, persisted: null }) });
    await store.getState().loadSelectedModel();
    expect(store.getState().download?.error).toMatchObject({ kind: 'auth', title: 'The Hub refused access' });
    expect(store.getState().load.status).toBe('error');

    const paused = new EngineError('download cancelled (what was fetched is kept; download again to resume)', 'HubError', 'download', undefined, 'aborted');
    const { store: s2 } = await readyStore({ download: async () => Promise.reject(paused), listCache: async () => [], storageInfo: async () => ({ store: 'm', quota: null, usage: null, persisted: null }) });
    await s2.getState().loadSelectedModel();
    expect(s2.getState().download).toMatchObject({ status: 'paused', error: null });
    expect(s2.getState().load).toMatchObject({ status: 'idle', error: null });
  });

  it('a picked folder is inspected, copied into the cache, and loaded from there; with no room it loads from the files', async () => {
    const files = [new File(['{}'], 'config.json')];
    const quota = new EngineError('not enough storage for local/m: it needs 1 MiB', 'HubError', 'importModel', undefined, 'quota');
    let importFails = false;
    const { store, engine } = await readyStore({
      inspectModel: async () => modelInfo({ name: 'm', cached: null }),
      importModel: async (a) => (importFails ? Promise.reject(quota) : { repo: `local/${a.name}`, revision: 'local' }),
      loadModel: async (a) => modelInfo({ name: 'm', cached: a.source.kind === 'cache' ? { repo: a.source.repo, revision: a.source.revision ?? 'main' } : null }),
      prepareData: async () => ({ name: 's', format: 'messages', detected: true, stats: {} as never, previews: [], ms: 1 }),
      listCache: async () => [],
      storageInfo: async () => ({ store: 'm', quota: null, usage: null, persisted: null }),
    });
    await store.getState().pickLocalFolder(files, 'm');
    expect(store.getState()).toMatchObject({ modelOrigin: 'local', localInspection: { status: 'ready' } });
    await store.getState().loadSelectedModel();
    expect(engine.calls.find((c) => c.command === 'loadModel')!.args).toMatchObject({ source: { kind: 'cache', repo: 'local/m', revision: 'local' } });
    importFails = true;
    await store.getState().loadSelectedModel();
    expect(engine.calls.filter((c) => c.command === 'loadModel')[1]!.args).toMatchObject({ source: { kind: 'files', name: 'm' } });
    expect(store.getState().load.status).toBe('ready');
  });
});

describe('training', () => {
  async function loadedStore(extra: Parameters<typeof scriptedEngine>[0] = {}) {
    const r = await readyStore({
      loadModel: async () => modelInfo(),
      prepareData: async () => ({ name: 's', format: 'messages', detected: true, stats: {} as never, previews: [], ms: 1 }),
      listRuns: async () => [],
      ...extra,
    });
    await r.store.getState().loadCachedModel('test/stories260K', 'main');
    return r;
  }

  it('turns the run’s events into the dashboard’s numbers', async () => {
    let finish!: () => void;
    const { store, engine } = await loadedStore({
      train: (a) =>
        new Promise((res) => {
          finish = () => res({ runId: a.runId, state: 'done', steps: 2, totalSteps: 2, initialEvalLoss: 4, evalLoss: 3, ms: 10 });
        }),
    });
    const running = store.getState().startTraining();
    await flush();
    const args = engine.calls.find((c) => c.command === 'train')!.args as CommandArgs<'train'>;
    expect(args).toMatchObject({ optimizerBudget: null, lora: { r: 8 }, train: { maxSteps: 100, seqLen: 256 }, data: { kind: 'url' } });
    const runId = args.runId;
    const step = (n: number, loss: number, extra: object = {}) =>
      engine.emit({ kind: 'train-step', runId, step: n, totalSteps: 2, epoch: 0, loss, lr: 3e-4, gradNorm: 1, tokens: 10, ms: 5, tokensPerSecond: 2000, elapsedMs: n * 5, memory: { live: 5e5, peak: 6e5 }, ...extra });
    engine.emit({ kind: 'train-state', runId, state: 'running' });
    step(1, 3.5);
    engine.emit({ kind: 'checkpoint', runId, step: 1, bytes: 1000, ms: 2 });
    step(2, 3.1, { evalLoss: 3.0 });
    engine.emit({ kind: 'train-eval', runId, step: 0, evalLoss: 4.0 });
    engine.emit({ kind: 'train-state', runId, state: 'done' });
    finish();
    await running;
    const run = store.getState().run!;
    expect(run.state).toBe('done');
    expect(run.points.map((p) => [p.step, p.loss])).toEqual([[1, 3.5], [2, 3.1]]);
    expect(run.evals).toEqual([{ step: 0, loss: 4 }, { step: 2, loss: 3 }]);
    expect(run.last?.memory.live).toBe(5e5);
    expect(run.checkpoint).toEqual({ step: 1, bytes: 1000 });
    expect(run.summary?.evalLoss).toBe(3);
  });

  it('pages the optimizer state when the budget is smaller than a step needs', async () => {
    const { store, engine } = await loadedStore({ train: async (a) => ({ runId: a.runId, state: 'done', steps: 1, totalSteps: 1, initialEvalLoss: null, evalLoss: null, ms: 1 }) });
    const est = currentEstimate(store.getState())!;
    const budget = est.total - Math.floor(est.training.adam / 2);
    store.getState().setBudget(budget);
    expect(currentEstimate(store.getState())!.verdict).toBe('paging');
    await store.getState().startTraining();
    const args = engine.calls.find((c) => c.command === 'train')!.args as CommandArgs<'train'>;
    expect(args.optimizerBudget).toBe(optimizerBudgetFor(currentEstimate(store.getState()), budget));
    expect(args.optimizerBudget!).toBeLessThan(est.training.adam);
    expect(args.optimizerBudget!).toBeGreaterThan(0);
  });

  it('a failed run says what happened in words', async () => {
    const { store } = await loadedStore({ train: async () => Promise.reject(new EngineError('GPU device lost (unknown): gone', 'GpuError', 'train')) });
    await store.getState().startTraining();
    expect(store.getState().run).toMatchObject({ state: 'error', error: { kind: 'device-lost', title: 'The GPU was lost' } });
  });

  it('resumes a kept run after a reload: loads its cached model, restores the curve, continues', async () => {
    const listing: RunListing = {
      record: {
        runId: 'r1', label: 'kept', created: 1, model: { repo: 'test/other', revision: 'main', name: 'test/other' },
        data: { kind: 'stored', name: 'd.jsonl', key: 'v1/runs/r1/dataset' },
        dataOptions: { format: 'auto', labelMode: 'assistant', maxLength: 64, packing: false, evalSplit: 2, seed: 0, batchSize: 1 },
        lora: { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj'], useRslora: false, seed: 0 },
        train: { maxSteps: 6 } as never, evalEvery: 0, checkpointEvery: 1, optimizerBudget: null,
      },
      step: 2, totalSteps: 6, finished: false,
      history: [{ step: 1, loss: 4, lr: 1, gradNorm: 1, tokensPerSecond: 1 }, { step: 2, loss: 3.5, lr: 1, gradNorm: 1, tokensPerSecond: 1 }],
      initialEvalLoss: 4.2, evalLoss: null, updated: 2,
    };
    const { store, engine } = await loadedStore({
      listRuns: async () => [listing],
      train: async (a) => ({ runId: a.runId, state: 'done', steps: 6, totalSteps: 6, initialEvalLoss: 4.2, evalLoss: 3, ms: 1, resumedFrom: 2 }),
    });
    await store.getState().refreshRuns();
    await store.getState().resumeRun('r1');
    const loads = engine.calls.filter((c) => c.command === 'loadModel');
    expect(loads[loads.length - 1]!.args).toMatchObject({ source: { kind: 'cache', repo: 'test/other', revision: 'main' } });
    const train = engine.calls.find((c) => c.command === 'train')!.args as CommandArgs<'train'>;
    expect(train).toMatchObject({ runId: 'r1', resume: true, data: { kind: 'stored' }, lora: { r: 4 } });
    const run = store.getState().run!;
    expect(run).toMatchObject({ state: 'done', resumedFrom: 2 });
    expect(run.points.map((p) => p.step)).toEqual([1, 2]);
    expect(run.evals).toEqual([{ step: 0, loss: 4.2 }]);
  });
});

describe('words', () => {
  it('classifies the errors people meet', () => {
    expect(errorInfo(new EngineError('x', 'HubError', 'download', undefined, 'quota')).kind).toBe('quota');
    expect(errorInfo(new EngineError('not enough storage for a/b', 'HubError')).kind).toBe('quota');
    expect(errorInfo(new EngineError('HTTP 404 (not found)', 'HubError', null, undefined, 'not-found')).kind).toBe('not-found');
    expect(errorInfo(new EngineError('network error', 'HubError', null, undefined, 'network')).title).toBe('The download failed');
    expect(errorInfo(new EngineError('This model is not supported: model_type "gpt2"', 'UnsupportedModel')).kind).toBe('unsupported');
    expect(errorInfo(new EngineError('no usable examples in 3 rows', 'DataError')).kind).toBe('data');
    expect(errorInfo(new Error('GPU device lost (destroyed)')).kind).toBe('device-lost');
    expect(errorInfo(new Error('boom')).message).toBe('Boom.');
  });

  it('checks a typed Hub endpoint', () => {
    expect(endpointProblem('https://huggingface.co')).toBeNull();
    expect(endpointProblem('http://127.0.0.1:8080')).toBeNull();
    expect(endpointProblem('hf.co')).toMatch(/Not a URL/);
    expect(endpointProblem('https://user:hf_x@hf.co')).toMatch(/token field/);
    expect(endpointProblem('ftp://x')).toMatch(/http/);
  });
});
