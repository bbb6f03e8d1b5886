// LoRA hyperparameters (which Llama linears get adapters, rank, alpha, dropout) with the
// QLoRA paper's defaults, the LoRA scaling factor, validation with readable messages, and
// the per-module shapes of the adapter matrices (PEFT layout, qlora-formats.md §4.2–4.3).

import { LORA_TARGETS, isLoraTarget, targetShape, type LoraTarget } from '../model/names.ts';

/** The seven linear layers of a Llama block that can carry a LoRA adapter, in block order (model/names.ts). */
export const LORA_MODULES = LORA_TARGETS;
export type LoraModule = LoraTarget;

export function isLoraModule(s: unknown): s is LoraModule {
  return typeof s === 'string' && isLoraTarget(s);
}

/** Index of a module in LORA_MODULES (0..6); used to derive RNG streams. */
export function loraModuleIndex(m: LoraModule): number {
  return LORA_MODULES.indexOf(m);
}

export interface LoraConfig {
  /** Rank r of A [r, in] and B [out, r]. */
  r: number;
  /** lora_alpha: the update is scaled by alpha/r (or alpha/√r with rsLoRA). */
  alpha: number;
  /** Dropout probability on the input of lora_A (PEFT's lora_dropout), in [0, 1). */
  dropout: number;
  /** Modules that get adapters, a subset of LORA_MODULES (kept in LORA_MODULES order). */
  targetModules: LoraModule[];
  /** Rank-stabilized LoRA: scaling alpha/√r instead of alpha/r (PEFT use_rslora). */
  useRslora: boolean;
  /** Seed for A's initialization and the dropout masks. */
  seed: number;
}

/**
 * QLoRA defaults (artidoro/qlora, qlora-formats.md §5.2):
 * - r = 64 and alpha = 16: qlora.py defaults and every finetune_guanaco_*.sh script.
 * - dropout = 0.05: finetune_guanaco_{13b,33b,65b}.sh and the paper's value for 33B/65B
 *   (the paper/model card say 0.1 for 7B/13B, and finetune_guanaco_7b.sh uses 0.1).
 * - all seven linear layers ("--lora_modules all", lm_head excluded by find_all_linear_names).
 * - use_rslora false (PEFT default); seed 0 (the scripts' --seed 0).
 */
export const DEFAULT_LORA_CONFIG: Readonly<LoraConfig> = Object.freeze({
  r: 64,
  alpha: 16,
  dropout: 0.05,
  targetModules: [...LORA_MODULES],
  useRslora: false,
  seed: 0,
});

/** A complete config from a partial one (missing fields take the QLoRA defaults), validated. */
export function makeLoraConfig(partial: Partial<LoraConfig> = {}): LoraConfig {
  const cfg: LoraConfig = {
    ...DEFAULT_LORA_CONFIG,
    ...partial,
    targetModules: [...(partial.targetModules ?? DEFAULT_LORA_CONFIG.targetModules)],
  };
  validateLoraConfig(cfg);
  cfg.targetModules = LORA_MODULES.filter((m) => cfg.targetModules.includes(m));
  return cfg;
}

/** The LoRA scaling factor: alpha/r, or alpha/√r with rsLoRA (PEFT lora/layer.py update_layer). */
export function loraScaling(cfg: Pick<LoraConfig, 'r' | 'alpha' | 'useRslora'>): number {
  return cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.r) : cfg.alpha / cfg.r;
}

export class LoraConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoraConfigError';
  }
}

/** Throws a LoraConfigError naming every problem found (one per line). */
export function validateLoraConfig(cfg: LoraConfig): void {
  const problems: string[] = [];
  if (!Number.isInteger(cfg.r) || cfg.r < 1) problems.push(`r must be an integer ≥ 1, got ${fmt(cfg.r)}`);
  else if (cfg.r > 4096) problems.push(`r = ${cfg.r} is unreasonably large (at most 4096)`);
  if (typeof cfg.alpha !== 'number' || !Number.isFinite(cfg.alpha) || cfg.alpha <= 0) {
    problems.push(`alpha must be a finite number > 0, got ${fmt(cfg.alpha)}`);
  }
  if (typeof cfg.dropout !== 'number' || !(cfg.dropout >= 0 && cfg.dropout < 1)) {
    problems.push(`dropout must be in [0, 1), got ${fmt(cfg.dropout)}`);
  }
  if (!Array.isArray(cfg.targetModules)) {
    problems.push(`targetModules must be a list of module names, got ${fmt(cfg.targetModules)}`);
  } else {
    const unknown = cfg.targetModules.filter((m) => !isLoraModule(m));
    if (unknown.length) {
      problems.push(
        `unknown target module${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => JSON.stringify(m)).join(', ')} ` +
          `(expected some of ${LORA_MODULES.join(', ')})`,
      );
    }
    const dup = cfg.targetModules.filter((m, i) => cfg.targetModules.indexOf(m) !== i);
    if (dup.length) problems.push(`target module${dup.length > 1 ? 's' : ''} listed twice: ${[...new Set(dup)].join(', ')}`);
    if (cfg.targetModules.length === 0) problems.push('targetModules is empty: choose at least one module to adapt');
  }
  if (typeof cfg.useRslora !== 'boolean') problems.push(`useRslora must be true or false, got ${fmt(cfg.useRslora)}`);
  if (!Number.isInteger(cfg.seed) || cfg.seed < 0 || cfg.seed > 0xffffffff) {
    problems.push(`seed must be an integer in [0, 2^32), got ${fmt(cfg.seed)}`);
  }
  if (problems.length) throw new LoraConfigError(`invalid LoRA config:\n- ${problems.join('\n- ')}`);
}

/** The model dimensions that fix each adapter's shapes (from the base model's config.json). */
export interface LoraModelDims {
  numLayers: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  /** head_dim (hidden_size / num_attention_heads unless the config says otherwise). */
  headDim: number;
}

/** in_features and out_features of a module's base Linear (nn.Linear weight is [out, in]). */
export function moduleFeatures(dims: LoraModelDims, m: LoraModule): { in: number; out: number } {
  const [out, inF] = targetShape(dims, m);
  return { in: inF, out };
}

/** Shapes of PEFT's lora_A.weight [r, in] and lora_B.weight [out, r]. */
export function loraShapes(dims: LoraModelDims, m: LoraModule, r: number): { a: [number, number]; b: [number, number] } {
  const f = moduleFeatures(dims, m);
  return { a: [r, f.in], b: [f.out, r] };
}

/** Number of trainable LoRA parameters for a config on a model. */
export function loraParamCount(dims: LoraModelDims, cfg: Pick<LoraConfig, 'r' | 'targetModules'>): number {
  let n = 0;
  for (const m of cfg.targetModules) {
    const f = moduleFeatures(dims, m);
    n += cfg.r * (f.in + f.out);
  }
  return n * dims.numLayers;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
