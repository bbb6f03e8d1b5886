// A whole fine-tuning run over prepared data: epochs of shuffled micro-batches grouped into
// optimizer steps (gradient accumulation), eval loss on the held-out split every `evalEvery`
// steps and at the end, a callback per step (return false to stop). The same code drives the
// CLI and the studio's worker.

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { PreparedData } from '../data/pipeline.ts';
import { warmupStepsFor, type TrainConfig } from '../train/train-config.ts';
import { fromDataBatch, type Batch } from './batch.ts';
import type { LoraAdapter } from './lora.ts';
import type { GpuModel } from './model.ts';
import { Trainer, type StepStats } from './trainer.ts';

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
}

export interface FinetuneResult {
  steps: number;
  history: StepEvent[];
  evalLoss: number | null;
  /** Eval loss before the first step (the base model with the initial adapter, B = 0). */
  initialEvalLoss: number | null;
}

export async function finetune(rt: GpuRuntime, model: GpuModel, lora: LoraAdapter, data: PreparedData, opts: FinetuneOptions): Promise<FinetuneResult> {
  const cfg = opts.train;
  const perEpoch = Math.ceil(data.train.examples > 0 ? countBatches(data, cfg) / cfg.gradAccum : 0);
  if (perEpoch === 0) throw new Error('no training batches: the training split is empty');
  const total = cfg.maxSteps > 0 ? cfg.maxSteps : Math.max(1, cfg.epochs * perEpoch);
  const trainer = new Trainer(rt, model, lora, {
    lr: cfg.lr,
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
    weightDecay: cfg.weightDecay,
    maxGradNorm: cfg.maxGradNorm,
    schedule: cfg.schedule,
    warmupSteps: warmupStepsFor(cfg, total),
    totalSteps: total,
  });
  const evalBatches = [...data.eval.batches({ batchSize: cfg.batchSize })].map(fromDataBatch);
  const evaluate = async () => (evalBatches.length ? trainer.evaluate(evalBatches) : null);
  const history: StepEvent[] = [];
  try {
    const initialEvalLoss = await evaluate();
    let evalLoss = initialEvalLoss;
    let epoch = 0;
    let stopped = false;
    while (!stopped && trainer.step < total) {
      let group: Batch[] = [];
      for (const b of data.train.batches({ epoch, batchSize: cfg.batchSize })) {
        group.push(fromDataBatch(b));
        if (group.length < cfg.gradAccum) continue;
        stopped = await runStep(group);
        group = [];
        if (stopped || trainer.step >= total) break;
      }
      if (!stopped && group.length && trainer.step < total) stopped = await runStep(group);
      epoch++;
    }
    if (history.length && history[history.length - 1]!.evalLoss === undefined) evalLoss = await evaluate();
    else if (history.length) evalLoss = history[history.length - 1]!.evalLoss ?? evalLoss;
    return { steps: trainer.step, history, evalLoss, initialEvalLoss };

    async function runStep(group: Batch[]): Promise<boolean> {
      const s = await trainer.trainStep(group);
      const e: StepEvent = { ...s, totalSteps: total, epoch };
      const every = opts.evalEvery ?? 0;
      if ((every > 0 && s.step % every === 0) || s.step === total) {
        const l = await evaluate();
        if (l !== null) e.evalLoss = l;
      }
      history.push(e);
      return opts.onStep?.(e) === false;
    }
  } finally {
    trainer.destroy();
  }
}

function countBatches(data: PreparedData, cfg: TrainConfig): number {
  return Math.ceil(data.train.examples > 0 ? data.train.sequences(0).length / cfg.batchSize : 0);
}
