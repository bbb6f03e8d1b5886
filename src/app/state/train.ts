// The training part of the studio's state: presets and every hyperparameter, the live run (state,
// loss and eval points, the last step's numbers, checkpoints), and the runs kept in the browser
// (listed after a reload, with resume).

import { newRunId } from '../../llm/checkpoint.ts';
import { defaultGpuBudget, estimateMemory, type MemoryEstimate } from '../../llm/memory-estimate.ts';
import { DEFAULT_LORA_CONFIG, type LoraConfig } from '../../train/lora-config.ts';
import { DEFAULT_TRAIN_CONFIG, TRAIN_PRESETS, type TrainConfig } from '../../train/train-config.ts';
import type { EngineEvent, RunListing, StepReport, TrainState, TrainSummary } from '../../worker/protocol.ts';
import { errorInfo, type ErrorInfo } from '../errors.ts';
import type { GetState, SetState, StudioState } from '../store.ts';
import { dataKey, dataOptions, dataSpec, SAMPLES } from './data.ts';
import { selectedDims } from './model.ts';

export interface StepPoint {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
}

export interface RunView {
  runId: string;
  label: string;
  state: TrainState;
  message: string | null;
  totalSteps: number | null;
  points: StepPoint[];
  evals: Array<{ step: number; loss: number }>;
  last: StepReport | null;
  summary: TrainSummary | null;
  error: ErrorInfo | null;
  notes: string[];
  checkpoint: { step: number; bytes: number } | null;
  /** GPU bytes the run may use (the budget shown beside the memory in use). */
  budget: number;
  /** Adam m/v bytes allowed on the GPU when paging, else null. */
  optimizerBudget: number | null;
  /** The step a resumed run started from. */
  resumedFrom: number | null;
}

export interface TrainSlice {
  presetId: string | null;
  lora: LoraConfig;
  train: TrainConfig;
  packing: boolean;
  evalEvery: number;
  checkpointEvery: number;
  /** The user's GPU budget in bytes, or null for the default from the adapter's limits. */
  budget: number | null;
  run: RunView | null;
  runs: { list: RunListing[]; loading: boolean; error: string | null };

  applyPreset(id: string): void;
  setLora(p: Partial<LoraConfig>): void;
  setTrain(p: Partial<TrainConfig>): void;
  setPacking(on: boolean): void;
  setEvalEvery(n: number): void;
  setCheckpointEvery(n: number): void;
  setBudget(bytes: number | null): void;
  startTraining(): Promise<void>;
  pauseTraining(): Promise<void>;
  resumeTraining(): Promise<void>;
  stopTraining(): Promise<void>;
  /** Continues a kept run from its newest checkpoint (after a reload or a lost GPU). */
  resumeRun(runId: string): Promise<void>;
  refreshRuns(): Promise<void>;
  deleteRun(runId: string): Promise<void>;
}

export const DEFAULT_PRESET = 'quick-try';

export function presetConfig(id: string): { train: TrainConfig; lora: LoraConfig } {
  const p = TRAIN_PRESETS.find((x) => x.id === id) ?? TRAIN_PRESETS[0]!;
  return {
    train: { ...DEFAULT_TRAIN_CONFIG, ...p.train },
    lora: { ...DEFAULT_LORA_CONFIG, targetModules: [...DEFAULT_LORA_CONFIG.targetModules], ...p.lora },
  };
}

/** Whether the settings still equal the preset's. */
export function matchesPreset(s: Pick<TrainSlice, 'presetId' | 'train' | 'lora'>): boolean {
  if (!s.presetId) return false;
  const p = presetConfig(s.presetId);
  return JSON.stringify(p.train) === JSON.stringify(s.train) && JSON.stringify(p.lora) === JSON.stringify(s.lora);
}

/** The GPU budget in force: the user's, else the default from the adapter's limits. */
export function gpuBudget(s: StudioState): number {
  return s.budget ?? defaultGpuBudget(s.gpu.adapter?.limits);
}

/** The memory estimate for the selected model and the current settings, or null without its numbers. */
export function currentEstimate(s: StudioState): MemoryEstimate | null {
  const dims = selectedDims(s);
  if (!dims) return null;
  return estimateMemory({
    model: dims,
    lora: { r: s.lora.r, targetModules: s.lora.targetModules },
    batchSize: s.train.batchSize,
    seqLen: s.train.seqLen,
    quant: s.quant,
    limits: s.gpu.adapter?.limits,
    budget: gpuBudget(s),
  });
}

/** Adam m/v bytes to keep on the GPU so a step stays in budget, or null when all fits. */
export function optimizerBudgetFor(est: MemoryEstimate | null, budget: number): number | null {
  if (!est || est.total <= budget) return null;
  const rest = est.total - est.training.adam;
  const onePage = est.minimumWithPaging - rest; // the paging layer needs room for the largest page
  return Math.max(onePage, Math.floor(budget - rest));
}

export function isRunActive(run: RunView | null): boolean {
  return !!run && !['done', 'stopped', 'error'].includes(run.state);
}

function emptyRun(runId: string, label: string, budget: number, optimizerBudget: number | null): RunView {
  return {
    runId, label, state: 'preparing', message: null, totalSteps: null, points: [], evals: [], last: null, summary: null,
    error: null, notes: [], checkpoint: null, budget, optimizerBudget, resumedFrom: null,
  };
}

export function createTrainSlice(set: SetState, get: GetState): TrainSlice {
  const initial = presetConfig(DEFAULT_PRESET);

  const updateRun = (runId: string, f: (r: RunView) => Partial<RunView>) =>
    set((s) => (s.run && s.run.runId === runId ? { run: { ...s.run, ...f(s.run) } } : {}));

  const execute = async (runId: string, call: () => Promise<TrainSummary>) => {
    try {
      const summary = await call();
      updateRun(runId, () => ({ summary, state: summary.state, totalSteps: summary.totalSteps }));
    } catch (err) {
      updateRun(runId, () => ({ state: 'error', error: errorInfo(err) }));
    }
    void get().refreshRuns();
  };

  return {
    presetId: DEFAULT_PRESET,
    lora: initial.lora,
    train: initial.train,
    packing: false,
    evalEvery: 10,
    checkpointEvery: 10,
    budget: null,
    run: null,
    runs: { list: [], loading: false, error: null },

    applyPreset(id) {
      const p = presetConfig(id);
      set({ presetId: id, train: p.train, lora: p.lora });
    },
    setLora(p) {
      set((s) => ({ lora: { ...s.lora, ...p } }));
    },
    setTrain(p) {
      set((s) => ({ train: { ...s.train, ...p } }));
    },
    setPacking(packing) {
      set({ packing });
    },
    setEvalEvery(evalEvery) {
      set({ evalEvery });
    },
    setCheckpointEvery(checkpointEvery) {
      set({ checkpointEvery });
    },
    setBudget(budget) {
      set({ budget });
    },

    async startTraining() {
      const s = get();
      const engine = s.engine;
      const spec = dataSpec(s);
      if (!engine || !spec || s.load.status !== 'ready' || !s.load.info || isRunActive(s.run)) return;
      const est = currentEstimate(s);
      const budget = gpuBudget(s);
      const optimizerBudget = optimizerBudgetFor(est, budget);
      const runId = newRunId();
      const dataName = s.dataChoice === 'sample' ? (SAMPLES.find((x) => x.id === s.sampleId)?.name ?? 'sample') : s.dataChoice === 'file' ? (s.dataFile?.name ?? 'file') : s.dataChoice === 'paste' ? 'pasted text' : s.hfDataset.dataset;
      const preset = s.presetId && TRAIN_PRESETS.find((p) => p.id === s.presetId);
      const label = `${s.load.info.name} · ${dataName}${preset ? ` · ${preset.name}` : ''}`;
      set({ run: emptyRun(runId, label, budget, optimizerBudget) });
      // The preview follows the settings the run uses.
      if (s.data.key !== dataKey(s)) void s.prepareData();
      await execute(runId, () =>
        engine.call('train', {
          data: spec,
          dataOptions: dataOptions(s),
          lora: s.lora,
          train: s.train,
          evalEvery: s.evalEvery,
          checkpointEvery: s.checkpointEvery,
          optimizerBudget,
          runId,
          label,
          hubToken: s.hub.token || undefined,
        }),
      );
    },

    async pauseTraining() {
      const engine = get().engine;
      if (engine && isRunActive(get().run)) await engine.call('pauseTraining', {}).catch(() => undefined);
    },
    async resumeTraining() {
      const engine = get().engine;
      if (engine && get().run) await engine.call('resumeTraining', {}).catch(() => undefined);
    },
    async stopTraining() {
      const engine = get().engine;
      if (engine && isRunActive(get().run)) await engine.call('stopTraining', {}).catch(() => undefined);
    },

    async resumeRun(runId) {
      const s = get();
      const engine = s.engine;
      if (!engine || isRunActive(s.run)) return;
      const listing = s.runs.list.find((r) => r.record.runId === runId);
      if (!listing) return;
      const rec = listing.record;
      const run = emptyRun(runId, rec.label, gpuBudget(s), rec.optimizerBudget);
      run.points = listing.history.map((h) => ({ step: h.step, loss: h.loss, lr: h.lr, gradNorm: h.gradNorm, tokensPerSecond: h.tokensPerSecond }));
      run.evals = [
        ...(listing.initialEvalLoss !== null ? [{ step: 0, loss: listing.initialEvalLoss }] : []),
        ...listing.history.filter((h) => h.evalLoss !== undefined).map((h) => ({ step: h.step, loss: h.evalLoss! })),
      ];
      run.totalSteps = listing.totalSteps;
      run.resumedFrom = listing.step;
      set({ run, lora: rec.lora, train: rec.train, evalEvery: rec.evalEvery, checkpointEvery: rec.checkpointEvery, presetId: null });
      const info = get().load.info;
      const loaded = get().load.status === 'ready' && info?.cached?.repo === rec.model.repo && info.cached.revision === rec.model.revision;
      if (!loaded) {
        updateRun(runId, () => ({ message: `Loading ${rec.model.name}…` }));
        const ok = await get().loadCachedModel(rec.model.repo, rec.model.revision);
        if (!ok) {
          updateRun(runId, () => ({ state: 'error', error: get().load.error ?? errorInfo(new Error(`Could not load ${rec.model.name}.`)) }));
          return;
        }
      }
      await execute(runId, () =>
        engine.call('train', {
          data: rec.data,
          dataOptions: rec.dataOptions,
          lora: rec.lora,
          train: rec.train,
          evalEvery: rec.evalEvery,
          checkpointEvery: rec.checkpointEvery,
          optimizerBudget: rec.optimizerBudget,
          runId,
          label: rec.label,
          resume: true,
          hubToken: get().hub.token || undefined,
        }),
      );
    },

    async refreshRuns() {
      const engine = get().engine;
      if (!engine) return;
      set((s) => ({ runs: { ...s.runs, loading: true } }));
      try {
        const list = await engine.call('listRuns', {});
        set({ runs: { list, loading: false, error: null } });
      } catch (err) {
        set((s) => ({ runs: { ...s.runs, loading: false, error: errorInfo(err).message } }));
      }
    },

    async deleteRun(runId) {
      const engine = get().engine;
      if (!engine) return;
      try {
        await engine.call('deleteRun', { runId });
      } catch (err) {
        set((s) => ({ runs: { ...s.runs, error: errorInfo(err).message } }));
      }
      await get().refreshRuns();
    },
  };
}

/** Routes the engine's training events into the live run. */
export function trainEvent(e: EngineEvent, set: SetState): void {
  const update = (runId: string, f: (r: RunView) => Partial<RunView>) =>
    set((s) => (s.run && s.run.runId === runId ? { run: { ...s.run, ...f(s.run) } } : {}));
  switch (e.kind) {
    case 'train-state':
      update(e.runId, (r) => ({
        state: e.state,
        message: e.message ?? null,
        ...(e.state === 'error' && e.message && !r.error ? { error: errorInfo(new Error(e.message)) } : {}),
      }));
      break;
    case 'train-step': {
      const { runId, kind: _kind, ...report } = e;
      void _kind;
      update(runId, (r) => ({
        last: report,
        totalSteps: report.totalSteps,
        points: [...r.points.filter((p) => p.step < report.step), { step: report.step, loss: report.loss, lr: report.lr, gradNorm: report.gradNorm, tokensPerSecond: report.tokensPerSecond }],
        evals: report.evalLoss !== undefined ? mergeEval(r.evals, report.step, report.evalLoss) : r.evals,
      }));
      break;
    }
    case 'train-eval':
      update(e.runId, (r) => ({ evals: mergeEval(r.evals, e.step, e.evalLoss) }));
      break;
    case 'train-note':
      update(e.runId, (r) => ({ notes: [...r.notes, e.message].slice(-5) }));
      break;
    case 'checkpoint':
      update(e.runId, () => ({ checkpoint: { step: e.step, bytes: e.bytes } }));
      break;
  }
}

function mergeEval(evals: RunView['evals'], step: number, loss: number): RunView['evals'] {
  return [...evals.filter((x) => x.step !== step), { step, loss }].sort((a, b) => a.step - b.step);
}
