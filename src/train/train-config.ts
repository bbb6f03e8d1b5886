// Training hyperparameters (optimizer, schedule, clipping, batch shape, run length) with the
// QLoRA paper's defaults, validation with readable messages, the step arithmetic shared with
// the trainer (total steps, warmup steps), and presets the UI shows as plain data.

export type ScheduleKind = 'constant' | 'linear' | 'cosine';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['constant', 'linear', 'cosine'];

export interface TrainConfig {
  /** Peak learning rate. */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled (AdamW) weight decay. */
  weightDecay: number;
  /** Global gradient-norm clip (torch clip_grad_norm_); 0 turns clipping off. */
  maxGradNorm: number;
  /** LR schedule after warmup; warmup is linear from 0 in every kind (see schedule.ts). */
  schedule: ScheduleKind;
  /** Warmup optimizer steps; when 0, ceil(total · warmupRatio) is used (HF TrainingArguments.get_warmup_steps). */
  warmupSteps: number;
  warmupRatio: number;
  /** Optimizer steps to run; when 0, `epochs` passes over the training split decide. */
  maxSteps: number;
  epochs: number;
  /** Sequences per micro-batch (one forward/backward). */
  batchSize: number;
  /** Micro-batches accumulated per optimizer step. */
  gradAccum: number;
  /** Tokens per sequence (longer examples are truncated). */
  seqLen: number;
  /** Examples held out for evaluation: a fraction in [0, 0.5], or a count ≥ 1. */
  evalSplit: number;
  /** Seed for data shuffling and the eval split. */
  seed: number;
}

/**
 * QLoRA defaults (artidoro/qlora qlora.py and finetune_guanaco_7b.sh; qlora-formats.md §5.2):
 * lr 2e-4, Adam β2 0.999, max_grad_norm 0.3, constant schedule, warmup_ratio 0.03,
 * batch 1 × 16 accumulation, 1875 steps, target length 512, seed 0. β1 0.9 and eps 1e-8 are
 * the HF TrainingArguments defaults (adam_beta1, adam_epsilon). weight_decay 0.0 is both the HF
 * default and qlora.py's ("use lora dropout instead for regularization").
 * Note: HF's "constant" scheduler ignores warmup; ours is get_constant_schedule_with_warmup
 * (see schedule.ts), so the 3% warmup here is applied. Set warmupRatio 0 to match HF exactly.
 */
export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  lr: 2e-4,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.0,
  maxGradNorm: 0.3,
  schedule: 'constant',
  warmupSteps: 0,
  warmupRatio: 0.03,
  maxSteps: 1875,
  epochs: 1,
  batchSize: 1,
  gradAccum: 16,
  seqLen: 512,
  evalSplit: 0.05,
  seed: 0,
});

export interface TrainPreset {
  id: string;
  name: string;
  /** One line for the UI. */
  description: string;
  /** Fields that differ from DEFAULT_TRAIN_CONFIG. */
  train: Partial<TrainConfig>;
  /** LoRA fields (see lora-config.ts) that differ from its defaults. */
  lora: { r?: number; alpha?: number; dropout?: number };
}

export const TRAIN_PRESETS: readonly TrainPreset[] = [
  {
    id: 'qlora-paper',
    name: 'QLoRA paper defaults',
    description: 'Guanaco 7B recipe: r=64, α=16, lr 2e-4 constant, clip 0.3, batch 1×16, 1875 steps of 512 tokens.',
    train: {},
    lora: {},
  },
  {
    id: 'quick-try',
    name: 'Quick try',
    description: 'A few minutes to see the loss move: r=8, α=16, lr 3e-4, batch 1×4, 100 steps of 256 tokens.',
    train: { lr: 3e-4, gradAccum: 4, maxSteps: 100, seqLen: 256, warmupRatio: 0.05 },
    lora: { r: 8, alpha: 16, dropout: 0.05 },
  },
  {
    id: 'low-memory',
    name: 'Low memory',
    description: 'For small GPUs: r=16, α=16, 256-token sequences, batch 1×16, so activations and adapter state stay small.',
    train: { seqLen: 256, batchSize: 1, gradAccum: 16 },
    lora: { r: 16, alpha: 16 },
  },
];

export class TrainConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainConfigError';
  }
}

/** A complete config (missing fields take the defaults), validated. */
export function makeTrainConfig(partial: Partial<TrainConfig> = {}): TrainConfig {
  const cfg: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...partial };
  validateTrainConfig(cfg);
  return cfg;
}

/** Throws a TrainConfigError naming every problem found (one per line). */
export function validateTrainConfig(cfg: TrainConfig): void {
  const p: string[] = [];
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const int = (name: keyof TrainConfig, min: number) => {
    const v = cfg[name];
    if (!Number.isInteger(v) || (v as number) < min) p.push(`${name} must be an integer ≥ ${min}, got ${String(v)}`);
  };
  if (!num(cfg.lr) || cfg.lr <= 0 || cfg.lr > 1) p.push(`lr must be in (0, 1], got ${String(cfg.lr)}`);
  if (!num(cfg.beta1) || cfg.beta1 < 0 || cfg.beta1 >= 1) p.push(`beta1 must be in [0, 1), got ${String(cfg.beta1)}`);
  if (!num(cfg.beta2) || cfg.beta2 < 0 || cfg.beta2 >= 1) p.push(`beta2 must be in [0, 1), got ${String(cfg.beta2)}`);
  if (!num(cfg.eps) || cfg.eps <= 0) p.push(`eps must be > 0, got ${String(cfg.eps)}`);
  if (!num(cfg.weightDecay) || cfg.weightDecay < 0) p.push(`weightDecay must be ≥ 0, got ${String(cfg.weightDecay)}`);
  else if (num(cfg.lr) && cfg.lr * cfg.weightDecay >= 1) p.push(`lr × weightDecay must be < 1 (got ${cfg.lr * cfg.weightDecay}): each step would flip the weights' sign`);
  if (!num(cfg.maxGradNorm) || cfg.maxGradNorm < 0) p.push(`maxGradNorm must be ≥ 0 (0 turns clipping off), got ${String(cfg.maxGradNorm)}`);
  if (!SCHEDULE_KINDS.includes(cfg.schedule)) p.push(`schedule must be one of ${SCHEDULE_KINDS.join(', ')}, got ${JSON.stringify(cfg.schedule)}`);
  int('warmupSteps', 0);
  if (!num(cfg.warmupRatio) || cfg.warmupRatio < 0 || cfg.warmupRatio > 1) p.push(`warmupRatio must be in [0, 1], got ${String(cfg.warmupRatio)}`);
  int('maxSteps', 0);
  int('epochs', 0);
  if (cfg.maxSteps === 0 && cfg.epochs === 0) p.push('set maxSteps or epochs (both are 0, so training would not run)');
  int('batchSize', 1);
  int('gradAccum', 1);
  int('seqLen', 2);
  const es = cfg.evalSplit;
  if (!num(es) || es < 0 || (es > 0.5 && (es < 1 || !Number.isInteger(es)))) {
    p.push(`evalSplit must be a fraction in [0, 0.5] or a whole number of examples, got ${String(es)}`);
  }
  if (!Number.isInteger(cfg.seed) || cfg.seed < 0 || cfg.seed > 0xffffffff) p.push(`seed must be an integer in [0, 2^32), got ${String(cfg.seed)}`);
  if (p.length) throw new TrainConfigError(`invalid training config:\n- ${p.join('\n- ')}`);
}

/**
 * Optimizer steps in the run: maxSteps when > 0, else epochs × ceil(trainExamples / (batch × accum))
 * (HF Trainer: update steps per epoch = ceil(batches / accum); a last partial accumulation still steps).
 */
export function totalSteps(cfg: TrainConfig, trainExamples: number): number {
  if (cfg.maxSteps > 0) return cfg.maxSteps;
  const batches = Math.ceil(trainExamples / cfg.batchSize);
  return cfg.epochs * Math.max(1, Math.ceil(batches / cfg.gradAccum));
}

/** Warmup steps: warmupSteps if > 0, else ceil(total × warmupRatio) (HF get_warmup_steps). */
export function warmupStepsFor(cfg: Pick<TrainConfig, 'warmupSteps' | 'warmupRatio'>, total: number): number {
  return cfg.warmupSteps > 0 ? cfg.warmupSteps : Math.ceil(total * cfg.warmupRatio);
}

/** Sequences per optimizer step. */
export function effectiveBatch(cfg: Pick<TrainConfig, 'batchSize' | 'gradAccum'>): number {
  return cfg.batchSize * cfg.gradAccum;
}
