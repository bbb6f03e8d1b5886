// One optimizer step at a time over a GpuModel + LoraAdapter: gradient accumulation over
// micro-batches (the loss is the mean over every counted token of the accumulated batch, as
// transformers does with num_items_in_batch), global-norm clipping and AdamW on the GPU, the
// learning-rate schedule, and eval loss on held-out batches. A step is recorded as one command
// stream; the only readback is the step's loss and grad norm, after the update.
// Same seed + same batches → the same adapter bit for bit (LoRA init and dropout masks come
// from the counter RNG keyed by seed and micro-step).

import type { GpuRuntime } from '../gpu/runtime.ts';
import { add, fill } from '../nn/elementwise.ts';
import { AdamW, GpuOptimizerStore, type OptimizerStore } from '../train/adamw.ts';
import { GRAD_NORM, GradNorm } from '../train/grad-norm.ts';
import { learningRate } from '../train/schedule.ts';
import type { ScheduleKind } from '../train/train-config.ts';
import type { Batch } from './batch.ts';
import type { LoraAdapter } from './lora.ts';
import type { GpuModel } from './model.ts';

export interface OptimConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number;
  schedule: ScheduleKind;
  /** Warmup optimizer steps (already resolved from a ratio if needed). */
  warmupSteps: number;
  /** Total optimizer steps (for the linear / cosine schedules). */
  totalSteps: number;
}

export interface StepStats {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens fed through the model (padding excluded) and counted targets. */
  tokens: number;
  targets: number;
  ms: number;
  tokensPerSecond: number;
}

export class Trainer {
  readonly store: OptimizerStore;
  readonly optimizer: AdamW;
  private readonly gradNorm: GradNorm;
  private readonly lossAcc: GPUBuffer;
  private readonly ownsStore: boolean;

  constructor(
    private readonly rt: GpuRuntime,
    readonly model: GpuModel,
    readonly lora: LoraAdapter,
    readonly cfg: OptimConfig,
    store?: OptimizerStore,
  ) {
    if (store) {
      this.store = store;
      this.ownsStore = false;
    } else {
      const s = new GpuOptimizerStore(rt);
      for (const m of lora.modules.values()) s.add(`${m.layer}.${m.target}`, m.params, m.grads, m.size);
      this.store = s;
      this.ownsStore = true;
    }
    this.optimizer = new AdamW(rt, this.store, { beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay });
    this.gradNorm = new GradNorm(rt, [...lora.modules.values()].map((m) => ({ buffer: m.grads, length: m.size })));
    this.lossAcc = rt.create(16, 'trainer.loss');
  }

  /** Optimizer steps taken so far. */
  get step(): number {
    return this.optimizer.stepCount;
  }

  /** The learning rate the next step uses. */
  get nextLr(): number {
    return learningRate(this.step, this.cfg.totalSteps, {
      lr: this.cfg.lr,
      schedule: this.cfg.schedule,
      warmupSteps: this.cfg.warmupSteps,
    });
  }

  /** One optimizer step over `micro` micro-batches (gradient accumulation). */
  async trainStep(micro: Batch[]): Promise<StepStats> {
    if (!micro.length) throw new Error('trainStep: no micro-batches');
    const t0 = now();
    const rt = this.rt;
    const count = micro.reduce((s, b) => s + b.count, 0);
    const lr = this.nextLr;
    const step = this.step;
    this.lora.zeroGrads(rt);
    fill(rt, this.lossAcc, 4, 0);
    micro.forEach((batch, i) => {
      this.model.trainStep(batch, this.lora, step * micro.length + i, count);
      add(rt, this.lossAcc, this.model.lossStats, 4); // [_, Σ loss, Σ count, _]
    });
    this.gradNorm.record(this.cfg.maxGradNorm);
    await this.optimizer.step(lr, { buffer: this.gradNorm.result, index: GRAD_NORM.coef });
    const [acc, gn] = await Promise.all([rt.readF32(this.lossAcc, 4), this.gradNorm.read()]);
    rt.check();
    const ms = now() - t0;
    const tokens = micro.reduce((s, b) => s + realTokens(b), 0);
    const loss = acc[2]! > 0 ? acc[1]! / acc[2]! : 0;
    if (!Number.isFinite(gn.norm) || !Number.isFinite(loss)) {
      throw new Error(`step ${step + 1}: the loss or gradient norm is not finite (loss ${loss}, grad norm ${gn.norm}); lower the learning rate`);
    }
    return { step: step + 1, loss, lr, gradNorm: gn.norm, tokens, targets: count, ms, tokensPerSecond: (tokens * 1000) / ms };
  }

  /** Mean loss over every counted target of `batches` (no dropout, no gradients). */
  async evaluate(batches: Batch[]): Promise<number> {
    const rt = this.rt;
    fill(rt, this.lossAcc, 4, 0);
    for (const b of batches) {
      this.model.evalStep(b, this.lora);
      add(rt, this.lossAcc, this.model.lossStats, 4);
    }
    const acc = await rt.readF32(this.lossAcc, 4);
    return acc[2]! > 0 ? acc[1]! / acc[2]! : NaN;
  }

  destroy(): void {
    this.optimizer.destroy();
    this.gradNorm.destroy();
    this.lossAcc.destroy();
    if (this.ownsStore) (this.store as GpuOptimizerStore).destroy();
  }
}

function realTokens(b: Batch): number {
  let n = 0;
  for (const s of b.segments) if (s !== 0) n++;
  return n;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
