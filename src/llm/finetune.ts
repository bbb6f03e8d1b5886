// A whole fine-tuning run over prepared data: epochs of shuffled micro-batches grouped into
// optimizer steps (gradient accumulation), eval loss on the held-out split every `evalEvery`
// steps and at the end, a callback per step (return false to stop). The same code drives the
// CLI and the studio's worker. With a store and a run id it checkpoints every N steps and on
// stop (checkpoint.ts) and can resume exactly; with a GPU budget Adam m/v page (paged-store.ts).

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { PreparedData } from '../data/pipeline.ts';
import { warmupStepsFor, type TrainConfig } from '../train/train-config.ts';
import { fromDataBatch, type Batch } from './batch.ts';
import type { LoraAdapter } from './lora.ts';
import type { GpuModel } from './model.ts';
import { Trainer, type StepStats } from './trainer.ts';
import type { ByteStore } from '../storage/store.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import { PagedOptimizerStore, type PagingStats } from '../train/paged-store.ts';
import { CheckpointError, configDifferences, pageKey, resumeRun, runPrefix, saveCheckpoint, type CheckpointInfo, type RunState } from './checkpoint.ts';

export interface StepEvent extends StepStats {
  totalSteps: number;
  epoch: number;
  /** Eval loss when this step ran an evaluation. */
  evalLoss?: number;
}

export interface FinetuneOptions {
  train: TrainConfig;
  /** Evaluate every N optimizer steps (0: only at the end). */
  evalEvery?: number;
  onStep?: (e: StepEvent) => boolean | void;
  /** Checkpoints (and paged optimizer state) go here, under v1/runs/<runId>/. */
  store?: ByteStore;
  runId?: string;
  /** Checkpoint every N optimizer steps (0: only on stop and at the end); needs store + runId. */
  checkpointEvery?: number;
  /** Checkpoints kept (default 2). */
  keepCheckpoints?: number;
  /** Continue the run `runId` from its newest intact checkpoint (none: start fresh). */
  resume?: boolean;
  /** Polled after every step: true pauses the run (a checkpoint is written first). */
  shouldStop?: () => boolean;
  /** Recorded in checkpoints and compared on resume. */
  meta?: { modelId?: string; options?: Record<string, unknown> };
  /** Bytes of Adam m/v allowed on the GPU: pages beyond it live in `pageStore` (default: store, else memory). */
  gpuBudget?: number;
  pageStore?: ByteStore;
  onCheckpoint?: (info: CheckpointInfo) => void;
  /** Notes about resuming (checkpoints skipped and why). */
  onMessage?: (msg: string) => void;
}

export interface FinetuneResult {
  steps: number;
  history: StepEvent[];
  evalLoss: number | null;
  /** Eval loss before the first step (the base model with the initial adapter, B = 0). */
  initialEvalLoss: number | null;
  /** True when stopped early (onStep returned false or shouldStop()). */
  stopped: boolean;
  /** The step the run resumed from (undefined: started fresh). */
  resumedFrom?: number;
  checkpoint?: CheckpointInfo;
  paging?: PagingStats;
}

export async function finetune(rt: GpuRuntime, model: GpuModel, lora: LoraAdapter, data: PreparedData, opts: FinetuneOptions): Promise<FinetuneResult> {
  const cfg = opts.train;
  const perEpoch = Math.ceil(data.train.examples > 0 ? countBatches(data, cfg) / cfg.gradAccum : 0);
  if (perEpoch === 0) throw new Error('no training batches: the training split is empty');
  const total = cfg.maxSteps > 0 ? cfg.maxSteps : Math.max(1, cfg.epochs * perEpoch);
  const runId = opts.runId;
  if ((opts.resume || opts.checkpointEvery) && !(opts.store && runId)) throw new Error('checkpoints and resume need a store and a run id');
  const paged = opts.gpuBudget === undefined ? undefined : new PagedOptimizerStore(rt, {
    store: opts.pageStore ?? opts.store ?? new MemoryStore('optimizer pages', { share: true }),
    prefix: runId ? `${runPrefix(runId)}pages/` : `v1/scratch/${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}/pages/`,
    budget: opts.gpuBudget,
  });
  for (const m of paged ? lora.modules.values() : []) paged!.add(pageKey(m.layer, m.target), m.params, m.grads, m.size);
  const warmupSteps = warmupStepsFor(cfg, total);
  const trainer = new Trainer(rt, model, lora, {
    lr: cfg.lr,
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
    weightDecay: cfg.weightDecay,
    maxGradNorm: cfg.maxGradNorm,
    schedule: cfg.schedule,
    warmupSteps,
    totalSteps: total,
  }, paged);
  const evalBatches = [...data.eval.batches({ batchSize: cfg.batchSize })].map(fromDataBatch);
  const evaluate = async () => (evalBatches.length ? trainer.evaluate(evalBatches) : null);
  let history: StepEvent[] = [];
  const config = { modelId: opts.meta?.modelId ?? '', lora: { ...lora.settings, targetModules: [...lora.settings.targetModules] }, train: cfg, options: opts.meta?.options ?? {} };
  const fingerprint = { trainExamples: data.train.examples, evalExamples: data.eval.examples, tokens: data.stats.tokens };
  let checkpoint: CheckpointInfo | undefined;
  let resumedFrom: number | undefined;
  try {
    let epoch = 0;
    let skip = 0;
    let initialEvalLoss: number | null;
    const resumed = opts.resume
      ? await resumeRun(rt, opts.store!, runId!, { lora, optimizer: trainer.store, setStep: (n) => (trainer.optimizer.stepCount = n) }, opts.onMessage)
      : null;
    if (resumed) {
      const st = resumed.state;
      const diffs = configDifferences({ config: st.config, data: st.data, totalSteps: st.totalSteps }, { config, data: fingerprint, totalSteps: total });
      if (diffs.length) throw new CheckpointError(`run ${runId} cannot resume with a different setup:\n- ${diffs.join('\n- ')}`);
      history = st.history;
      initialEvalLoss = st.initialEvalLoss;
      ({ epoch, batch: skip } = st.cursor);
      resumedFrom = st.step;
      opts.onMessage?.(`run ${runId}: resumed from checkpoint ${resumed.name} at step ${st.step}/${total}`);
    } else {
      if (opts.resume) opts.onMessage?.(`run ${runId}: no checkpoint yet; starting from step 0`);
      initialEvalLoss = await evaluate();
    }
    let evalLoss = resumed ? resumed.state.evalLoss : initialEvalLoss;
    let stopped = false;
    const save = async (cursor: { epoch: number; batch: number }, microSteps: number) => {
      if (!opts.store || !runId) return;
      await paged?.drain();
      const last = history[history.length - 1];
      const state: RunState = {
        version: 1, runId, config, step: trainer.step, totalSteps: total, warmupSteps, microSteps, cursor,
        seeds: { lora: lora.settings.seed, data: cfg.seed }, data: fingerprint, history, initialEvalLoss,
        evalLoss: last?.evalLoss ?? evalLoss, finished: trainer.step >= total, written: 0,
      };
      checkpoint = await saveCheckpoint(rt, opts.store, state, lora, trainer.store, { keep: opts.keepCheckpoints });
      opts.onCheckpoint?.(checkpoint);
    };
    let micro = resumed?.state.microSteps ?? 0;
    while (!stopped && trainer.step < total) {
      let group: Batch[] = [];
      let index = 0;
      for (const b of data.train.batches({ epoch, batchSize: cfg.batchSize })) {
        if (index++ < skip) continue; // resumed: micro-batches already consumed
        group.push(fromDataBatch(b));
        if (group.length < cfg.gradAccum) continue;
        stopped = await runStep(group, { epoch, batch: index });
        group = [];
        if (stopped || trainer.step >= total) break;
      }
      skip = 0;
      if (!stopped && group.length && trainer.step < total) stopped = await runStep(group, { epoch, batch: index });
      epoch++;
    }
    if (history.length && history[history.length - 1]!.evalLoss === undefined) evalLoss = await evaluate();
    else if (history.length) evalLoss = history[history.length - 1]!.evalLoss ?? evalLoss;
    return { steps: trainer.step, history, evalLoss, initialEvalLoss, stopped, resumedFrom, checkpoint, paging: paged?.stats };

    async function runStep(group: Batch[], cursor: { epoch: number; batch: number }): Promise<boolean> {
      const s = await trainer.trainStep(group);
      micro += group.length;
      const e: StepEvent = { ...s, totalSteps: total, epoch };
      const every = opts.evalEvery ?? 0;
      if ((every > 0 && s.step % every === 0) || s.step === total) {
        const l = await evaluate();
        if (l !== null) e.evalLoss = l;
      }
      history.push(e);
      const stop = opts.onStep?.(e) === false || opts.shouldStop?.() === true;
      const ckEvery = opts.checkpointEvery ?? 0;
      if (stop || s.step === total || (ckEvery > 0 && s.step % ckEvery === 0)) await save(cursor, micro);
      return stop;
    }
  } finally {
    trainer.destroy();
    await paged?.clear().catch(() => undefined);
  }
}

function countBatches(data: PreparedData, cfg: TrainConfig): number {
  return Math.ceil(data.train.examples > 0 ? data.train.sequences(0).length / cfg.batchSize : 0);
}
