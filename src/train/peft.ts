// PEFT LoRA adapter I/O (qlora-formats.md §4): adapter_config.json written byte for byte like
// PEFT 0.18.1 (json.dumps(asdict(LoraConfig), indent=2, sort_keys=True), Python float repr,
// ensure_ascii), parsed leniently from any PEFT version, and adapter_model.safetensors written
// (F32, metadata {"format": "pt"}) and read (F32/F16/BF16, with or without an adapter name),
// with every tensor checked against the model's shapes.

import { writeSafetensors, type SafetensorsReader } from '../formats/safetensors.ts';
import { moduleName, peftLoraName } from '../model/names.ts';
import { pythonJsonFloat } from '../util/python.ts';
import {
  LORA_MODULES,
  type LoraConfig,
  type LoraModelDims,
  type LoraModule,
  isLoraModule,
  loraShapes,
  makeLoraConfig,
  DEFAULT_LORA_CONFIG,
} from './lora-config.ts';

export class PeftFormatError extends Error {
  constructor(message: string, source?: string) {
    super(source ? `${source}: ${message}` : message);
    this.name = 'PeftFormatError';
  }
}

/** The PEFT release whose adapter_config.json key set we write. */
export const PEFT_VERSION = '0.18.1';

// ---- Python json.dumps ---------------------------------------------------------------------

/** Marks a number that Python holds as a float (written "0.05", "16.0", "1e-05"). */
export class PyFloat {
  constructor(readonly value: number) {}
}

type PyJson = null | boolean | number | string | PyFloat | PyJson[] | { [k: string]: PyJson };


/** A JSON string as Python writes it with ensure_ascii=True. */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** json.dumps(value, indent=2, sort_keys=True). Plain numbers must be integers (Python ints). */
export function pyJsonDumps(value: PyJson, level = 0): string {
  const pad = (n: number) => '  '.repeat(n);
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof PyFloat) return pythonJsonFloat(value.value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`pyJsonDumps: ${value} is not an integer; wrap floats in PyFloat`);
    return String(value);
  }
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) {
    if (!value.length) return '[]';
    return `[\n${value.map((v) => pad(level + 1) + pyJsonDumps(v, level + 1)).join(',\n')}\n${pad(level)}]`;
  }
  const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (!keys.length) return '{}';
  const items = keys.map((k) => `${pad(level + 1)}${pyString(k)}: ${pyJsonDumps(value[k]!, level + 1)}`);
  return `{\n${items.join(',\n')}\n${pad(level)}}`;
}

// ---- adapter_config.json -------------------------------------------------------------------

/** adapter_config.json text for `cfg`, exactly as PEFT 0.18.1's save_pretrained writes it. */
export function adapterConfigJson(cfg: LoraConfig, baseModel: string): string {
  const doc: { [k: string]: PyJson } = {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: Number.isInteger(cfg.alpha) ? cfg.alpha : new PyFloat(cfg.alpha),
    lora_bias: false,
    lora_dropout: new PyFloat(cfg.dropout),
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    peft_version: PEFT_VERSION,
    qalora_group_size: 16,
    r: cfg.r,
    rank_pattern: {},
    revision: null,
    // PEFT stores a set (arbitrary order); we sort for reproducible files.
    target_modules: [...cfg.targetModules].sort(),
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: cfg.useRslora,
  };
  return pyJsonDumps(doc);
}

export interface ParsedAdapterConfig {
  config: LoraConfig;
  baseModel: string | null;
  /** The parsed JSON, for fields we do not interpret. */
  raw: Record<string, unknown>;
}

/** The module key PEFT matches target_modules against (a name from model.named_modules()). */
const moduleKey = moduleName;

/** A Python `re` pattern as a JS RegExp that must match the whole key (re.fullmatch). */
function fullMatchRegex(pattern: string, what: string, source?: string): RegExp {
  const js = pattern.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>').replace(/\\A/g, '^').replace(/\\Z/g, '$');
  try {
    return new RegExp(`^(?:${js})$`);
  } catch (e) {
    throw new PeftFormatError(`${what} regex ${JSON.stringify(pattern)} is not supported: ${(e as Error).message}`, source);
  }
}

/**
 * The modules a target_modules / exclude_modules value selects, by PEFT's rule
 * (tuners_utils.check_target_module_exists): a string is a full-match regex over module keys
 * like "model.layers.3.mlp.up_proj", a list matches a key equal to an entry or ending in
 * "." + entry. Selections that differ between layers are rejected (we adapt whole layers).
 */
function resolveModules(value: unknown, what: string, numLayers: number, source?: string): { modules: LoraModule[]; unmatched: string[] } {
  let test: (key: string) => boolean;
  let entries: string[] = [];
  if (typeof value === 'string') {
    const re = fullMatchRegex(value, what, source);
    test = (k) => re.test(k);
  } else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    entries = value as string[];
    test = (k) => entries.some((e) => k === e || k.endsWith(`.${e}`));
  } else {
    throw new PeftFormatError(`${what} must be a list of module names or a regex string, got ${JSON.stringify(value)}`, source);
  }
  const modules: LoraModule[] = [];
  for (const m of LORA_MODULES) {
    let hits = 0;
    for (let l = 0; l < numLayers; l++) if (test(moduleKey(l, m))) hits++;
    if (hits === numLayers) modules.push(m);
    else if (hits > 0) {
      throw new PeftFormatError(
        `${what} ${JSON.stringify(value)} selects ${m} in only ${hits} of ${numLayers} layers; adapters on some layers only are not supported yet`,
        source,
      );
    }
  }
  const keys = LORA_MODULES.flatMap((m) => Array.from({ length: numLayers }, (_, l) => moduleKey(l, m)));
  const unmatched = entries.filter((e) => !keys.some((k) => k === e || k.endsWith(`.${e}`)));
  return { modules, unmatched };
}

/**
 * Reads an adapter_config.json written by PEFT (any version: unknown keys are ignored).
 * `numLayers` (default 32) is used to check that regex/list targets select whole layers.
 */
export function parseAdapterConfig(text: string, source = 'adapter_config.json', opts: { numLayers?: number; seed?: number } = {}): ParsedAdapterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PeftFormatError(`not valid JSON: ${(e as Error).message}`, source);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new PeftFormatError('expected a JSON object', source);
  const c = raw as Record<string, unknown>;
  const fail = (m: string): never => {
    throw new PeftFormatError(m, source);
  };
  const has = (k: string) => c[k] !== undefined && c[k] !== null;
  const nonEmpty = (k: string) => has(k) && !(typeof c[k] === 'object' && Object.keys(c[k] as object).length === 0);

  if (has('peft_type') && c.peft_type !== 'LORA') fail(`peft_type is ${JSON.stringify(c.peft_type)}; only LoRA adapters ("LORA") are supported`);
  if (has('task_type') && c.task_type !== 'CAUSAL_LM') fail(`task_type is ${JSON.stringify(c.task_type)}; only CAUSAL_LM adapters are supported`);
  if (c.use_dora === true) fail('use_dora is true: DoRA adapters (a learned magnitude vector per module) are not supported');
  if (nonEmpty('rank_pattern')) fail(`rank_pattern ${JSON.stringify(c.rank_pattern)} is not supported yet: every module must use the same rank r`);
  if (nonEmpty('alpha_pattern')) fail(`alpha_pattern ${JSON.stringify(c.alpha_pattern)} is not supported yet: every module must use the same lora_alpha`);
  if (has('bias') && c.bias !== 'none') fail(`bias is ${JSON.stringify(c.bias)}; only adapters without trained biases ("none") are supported`);
  if (c.lora_bias === true) fail('lora_bias is true: LoRA B biases are not supported');
  if (c.fan_in_fan_out === true) fail('fan_in_fan_out is true: only nn.Linear layouts (Llama) are supported');
  if (nonEmpty('modules_to_save')) fail(`modules_to_save ${JSON.stringify(c.modules_to_save)} is not supported: the adapter would carry full copies of those layers`);
  if (nonEmpty('trainable_token_indices')) fail('trainable_token_indices is set: trainable token embeddings are not supported');
  if (nonEmpty('target_parameters')) fail('target_parameters is set: LoRA on raw parameters is not supported');
  if (nonEmpty('layers_to_transform')) fail(`layers_to_transform ${JSON.stringify(c.layers_to_transform)} is not supported yet: adapters must cover every layer`);
  if (nonEmpty('layer_replication')) fail('layer_replication is set: not supported');
  if (c.use_qalora === true) fail('use_qalora is true: QA-LoRA adapters are not supported');
  if (nonEmpty('alora_invocation_tokens')) fail('alora_invocation_tokens is set: activated LoRA (aLoRA) is not supported');

  const num = (k: string, dflt: number): number => {
    const v = c[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${k} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const r = num('r', 8); // PEFT defaults: r 8, lora_alpha 8, lora_dropout 0.0
  if (!Number.isInteger(r) || r < 1) fail(`r must be an integer ≥ 1, got ${r}`);
  const alpha = num('lora_alpha', 8);
  const dropout = num('lora_dropout', 0);
  if (c.use_rslora !== undefined && typeof c.use_rslora !== 'boolean') fail(`use_rslora must be true or false, got ${JSON.stringify(c.use_rslora)}`);

  const numLayers = opts.numLayers ?? 32;
  let targets: LoraModule[];
  const tm = c.target_modules;
  if (tm === undefined || tm === null) {
    targets = ['q_proj', 'v_proj']; // PEFT's default for llama / qwen2 / mistral
  } else if (typeof tm === 'string' && tm.toLowerCase() === 'all-linear') {
    targets = [...LORA_MODULES]; // every Linear except the output layer (lm_head)
  } else {
    const { modules, unmatched } = resolveModules(tm, 'target_modules', numLayers, source);
    if (unmatched.length) {
      fail(`target_modules ${unmatched.map((u) => JSON.stringify(u)).join(', ')} ${unmatched.length > 1 ? 'are' : 'is'} not supported (LoRA is supported on ${LORA_MODULES.join(', ')})`);
    }
    targets = modules;
  }
  if (has('exclude_modules')) {
    const ex = resolveModules(c.exclude_modules, 'exclude_modules', numLayers, source).modules;
    targets = targets.filter((m) => !ex.includes(m));
  }
  if (!targets.length) fail(`target_modules ${JSON.stringify(tm)} selects none of ${LORA_MODULES.join(', ')}`);

  let config: LoraConfig;
  try {
    config = makeLoraConfig({ r, alpha, dropout, targetModules: targets, useRslora: c.use_rslora === true, seed: opts.seed ?? DEFAULT_LORA_CONFIG.seed });
  } catch (e) {
    throw new PeftFormatError((e as Error).message, source);
  }
  const base = typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : null;
  return { config, baseModel: base, raw: c };
}

// ---- adapter_model.safetensors -------------------------------------------------------------

export type LoraPart = 'A' | 'B';

/** PEFT's saved name, e.g. base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight. */
export function loraTensorName(layer: number, module: LoraModule, part: LoraPart): string {
  return peftLoraName(layer, module, part);
}

const NAME_RE = /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_(A|B)(?:\.([^.]+))?\.weight$/;

/** Parses a LoRA tensor name (with or without an adapter name like ".lora_A.default.weight"). */
export function parseLoraTensorName(name: string): { layer: number; module: LoraModule; part: LoraPart; adapter: string | null } | null {
  const mt = NAME_RE.exec(name);
  if (!mt) return null;
  const module = mt[3]!;
  if (!isLoraModule(module) || !moduleKey(0, module).includes(`.${mt[2]}.`)) return null;
  return { layer: Number(mt[1]), module, part: mt[4] as LoraPart, adapter: mt[5] ?? null };
}

export interface AdapterTensor {
  shape: number[];
  data: Float32Array;
}

/** adapter_model.safetensors bytes: F32 tensors under PEFT names, metadata {"format": "pt"}. */
export function writeAdapter(tensors: Map<string, AdapterTensor>): Uint8Array {
  const list = [...tensors].map(([name, t]) => {
    const p = parseLoraTensorName(name);
    if (!p || p.adapter !== null || name !== loraTensorName(p.layer, p.module, p.part)) {
      throw new PeftFormatError(`"${name}" is not a PEFT LoRA tensor name (like ${loraTensorName(0, 'q_proj', 'A')})`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.length !== 2 || numel !== t.data.length) {
      throw new PeftFormatError(`${name}: shape [${t.shape.join(', ')}] does not fit ${t.data.length} values`);
    }
    return { name, dtype: 'F32' as const, shape: t.shape, data: t.data };
  });
  return writeSafetensors(list, { format: 'pt' });
}

/**
 * Reads every LoRA tensor of `config` for a model with `dims` from an adapter file, as F32
 * under canonical names (loraTensorName). Accepts F32/F16/BF16 and names with or without an
 * adapter name; rejects missing, unexpected or misshapen tensors, naming each one.
 */
export async function readAdapter(reader: SafetensorsReader, config: LoraConfig, dims: LoraModelDims): Promise<Map<string, AdapterTensor>> {
  const src = reader.source.name;
  const found = new Map<string, string>(); // canonical → name in the file
  const problems: string[] = [];
  for (const name of reader.names()) {
    const p = parseLoraTensorName(name);
    if (!p) {
      problems.push(`unexpected tensor ${name} (only lora_A/lora_B of ${config.targetModules.join(', ')} are supported)`);
      continue;
    }
    const canon = loraTensorName(p.layer, p.module, p.part);
    if (p.layer >= dims.numLayers) problems.push(`${name}: layer ${p.layer} does not exist (the model has ${dims.numLayers} layers)`);
    else if (!config.targetModules.includes(p.module)) problems.push(`${name}: ${p.module} is not in the config's target_modules (${config.targetModules.join(', ')})`);
    else if (found.has(canon)) problems.push(`${name}: duplicate of ${found.get(canon)} (more than one adapter in the file?)`);
    else {
      found.set(canon, name);
      const info = reader.info(name);
      const want = loraShapes(dims, p.module, config.r)[p.part === 'A' ? 'a' : 'b'];
      if (!['F32', 'F16', 'BF16'].includes(info.dtype)) problems.push(`${name}: dtype ${info.dtype}, expected F32, F16 or BF16`);
      if (info.shape.length !== 2 || info.shape[0] !== want[0] || info.shape[1] !== want[1]) {
        problems.push(`${name}: shape [${info.shape.join(', ')}], expected [${want.join(', ')}] (lora_${p.part} of ${p.module}, r=${config.r})`);
      }
    }
  }
  const missing: string[] = [];
  for (let l = 0; l < dims.numLayers; l++) {
    for (const m of config.targetModules) for (const part of ['A', 'B'] as const) if (!found.has(loraTensorName(l, m, part))) missing.push(loraTensorName(l, m, part));
  }
  if (missing.length) problems.push(`${missing.length} tensor${missing.length > 1 ? 's' : ''} missing: ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}`);
  if (problems.length) {
    const shown = problems.slice(0, 10).join('\n- ') + (problems.length > 10 ? `\n- … and ${problems.length - 10} more` : '');
    throw new PeftFormatError(`adapter does not match the model:\n- ${shown}`, src);
  }
  const out = new Map<string, AdapterTensor>();
  for (const [canon, name] of found) {
    out.set(canon, { shape: [...reader.info(name).shape], data: await reader.readFloat32(name) });
  }
  return out;
}
