// Learning-rate schedules with linear warmup, formula for formula as in transformers'
// optimization.py (checked against huggingface/transformers src/transformers/optimization.py):
//   warmup (step < W):  lr · step / max(1, W)
//   constant            get_constant_schedule_with_warmup: lr
//   linear              get_linear_schedule_with_warmup:   lr · max(0, (T − step) / max(1, T − W))
//   cosine              get_cosine_schedule_with_warmup (num_cycles 0.5):
//                       progress = (step − W) / max(1, T − W)
//                       lr · max(0, 0.5 · (1 + cos(π · 0.5 · 2 · progress)))
// `step` is the index of the optimizer step about to be taken, starting at 0, as LambdaLR
// applies it (the first update uses lr_lambda(0), which is 0 when W > 0). HF's own "constant"
// (get_constant_schedule) ignores warmup; ours is the with-warmup variant (set W = 0 for HF's).

import type { ScheduleKind, TrainConfig } from './train-config.ts';
import { warmupStepsFor } from './train-config.ts';

export interface ScheduleParams {
  lr: number;
  schedule: ScheduleKind;
  /** Warmup steps W (already resolved from a ratio; see warmupStepsFor). */
  warmupSteps: number;
  /** cosine only: number of waves (HF default 0.5 = one half-cosine down to 0). */
  numCycles?: number;
}

/** The multiplier LambdaLR applies at optimizer step `step` (0-based) of `total`. */
export function lrLambda(step: number, total: number, p: Omit<ScheduleParams, 'lr'>): number {
  const w = p.warmupSteps;
  if (step < w) return step / Math.max(1, w);
  switch (p.schedule) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (total - step) / Math.max(1, total - w));
    case 'cosine': {
      const progress = (step - w) / Math.max(1, total - w);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (p.numCycles ?? 0.5) * 2 * progress)));
    }
  }
}

/**
 * Learning rate for optimizer step `step` (0-based) of `total`. Accepts resolved
 * ScheduleParams or a TrainConfig (whose warmupSteps/warmupRatio are resolved here).
 */
export function learningRate(step: number, total: number, cfg: ScheduleParams | TrainConfig): number {
  const p: ScheduleParams = 'warmupRatio' in cfg
    ? { lr: cfg.lr, schedule: cfg.schedule, warmupSteps: warmupStepsFor(cfg, total) }
    : cfg;
  return p.lr * lrLambda(step, total, p);
}
