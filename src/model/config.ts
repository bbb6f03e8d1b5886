// Parse a Hugging Face `config.json` into the ModelConfig the engine builds from (spec §6.3–§6.4).
// Supports model_type llama (Llama 1/2/3, SmolLM2, TinyLlama), mistral (sliding window ignored)
// and qwen2 (q/k/v bias, no o_proj bias). Defaults follow transformers' config classes.
// Every error names the source file, the field and what was expected. No DOM or Node APIs.

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export type RopeScaling =
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  | { type: 'linear'; factor: number };

export interface ModelConfig {
  modelType: ModelType;
  architectures: string[];
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** Bias on q_proj, k_proj, v_proj (llama `attention_bias`; always true for qwen2). */
  attentionBias: boolean;
  /** Bias on o_proj (llama `attention_bias`; always false for qwen2 and mistral). */
  attentionOutBias: boolean;
  /** Bias on gate/up/down_proj (llama `mlp_bias`). */
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  hiddenAct: 'silu';
  /** `torch_dtype` / `dtype` as written, if any. */
  dtype: string | null;
  /** The parsed JSON object (for fields this parser does not model, e.g. quantization_config). */
  raw: Readonly<Record<string, unknown>>;
}

export class ConfigError extends Error {
  constructor(message: string, readonly source = 'config.json') {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
  }
}

const DEFAULTS: Record<ModelType, { maxPos: number; eps: number; bos: number | null; eos: number | null }> = {
  llama: { maxPos: 2048, eps: 1e-6, bos: 1, eos: 2 },
  mistral: { maxPos: 4096 * 32, eps: 1e-6, bos: 1, eos: 2 },
  qwen2: { maxPos: 32768, eps: 1e-6, bos: null, eos: null },
};

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Parses and validates a config.json object (already JSON-parsed) or its text. */
export function parseModelConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (typeof json === 'string') {
    try {
      json = JSON.parse(json);
    } catch (e) {
      throw new ConfigError(`not valid JSON (${String((e as Error)?.message ?? e).slice(0, 120)})`, source);
    }
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(`expected a JSON object, got ${kind(json)}`, source);
  }
  const c = json as Record<string, unknown>;
  const fail = (field: string, expected: string, v: unknown): never => {
    throw new ConfigError(`field "${field}" must be ${expected}, got ${v === undefined ? 'nothing (missing)' : kind(v)}`, source);
  };
  const posInt = (field: string, v: unknown = c[field]): number =>
    typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : fail(field, 'a positive integer', v);
  const optPosInt = (field: string, dflt: number): number => (c[field] == null ? dflt : posInt(field));
  const posNum = (field: string, v: unknown): number =>
    typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fail(field, 'a positive number', v);
  const optBool = (field: string, dflt: boolean): boolean => {
    const v = c[field];
    if (v == null) return dflt;
    return typeof v === 'boolean' ? v : fail(field, 'true or false', v);
  };
  const optTokenId = (field: string, dflt: number | null): number | null => {
    const v = c[field];
    if (v === undefined) return dflt;
    if (v === null) return null;
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(field, 'a token id (integer ≥ 0) or null', v);
  };

  const mt = c.model_type;
  if (typeof mt !== 'string') fail('model_type', `one of ${SUPPORTED_MODEL_TYPES.join(', ')}`, mt);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(mt as string)) {
    throw new ConfigError(
      `unsupported model_type ${JSON.stringify(mt)}; supported: ${SUPPORTED_MODEL_TYPES.join(', ')} ` +
        '(Llama 1/2/3, SmolLM2, TinyLlama, Mistral, Qwen2/2.5)',
      source,
    );
  }
  const modelType = mt as ModelType;
  const d = DEFAULTS[modelType];

  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', '"silu" (the only activation supported)', act);

  const hiddenSize = posInt('hidden_size');
  const intermediateSize = posInt('intermediate_size');
  const numLayers = posInt('num_hidden_layers');
  const numHeads = posInt('num_attention_heads');
  const numKvHeads = optPosInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail('num_key_value_heads', `a divisor of num_attention_heads (${numHeads})`, numKvHeads);
  }
  let headDim: number;
  if (c.head_dim != null) {
    headDim = posInt('head_dim');
  } else {
    if (hiddenSize % numHeads !== 0) {
      fail('num_attention_heads', `a divisor of hidden_size (${hiddenSize}) when head_dim is not given`, numHeads);
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) fail('head_dim', 'even (RoPE rotates pairs)', headDim);
  const vocabSize = posInt('vocab_size');
  const rmsNormEps = c.rms_norm_eps == null ? d.eps : posNum('rms_norm_eps', c.rms_norm_eps);
  const maxPositionEmbeddings = optPosInt('max_position_embeddings', d.maxPos);

  // RoPE: v4 writes rope_theta + rope_scaling; v5 writes rope_parameters (with rope_theta inside).
  let ropeTheta = 10000;
  let scalingField = 'rope_scaling';
  let scaling: unknown = c.rope_scaling;
  if (c.rope_parameters != null) {
    const rp = c.rope_parameters;
    if (typeof rp !== 'object' || Array.isArray(rp)) fail('rope_parameters', 'an object', rp);
    const p = rp as Record<string, unknown>;
    if (p.rope_theta != null) ropeTheta = posNum('rope_parameters.rope_theta', p.rope_theta);
    if (scaling == null) {
      scaling = p;
      scalingField = 'rope_parameters';
    }
  }
  if (c.rope_theta != null) ropeTheta = posNum('rope_theta', c.rope_theta);
  const ropeScaling = parseRopeScaling(scaling, scalingField, fail, posNum);

  const eosRaw = c.eos_token_id;
  let eosTokenId: number | number[] | null;
  if (Array.isArray(eosRaw)) {
    eosTokenId = eosRaw.map((v, i) =>
      typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`eos_token_id[${i}]`, 'a token id (integer ≥ 0)', v),
    );
  } else {
    eosTokenId = optTokenId('eos_token_id', d.eos);
  }

  const llamaAttnBias = modelType === 'llama' ? optBool('attention_bias', false) : false;
  const archRaw = c.architectures;
  const architectures = Array.isArray(archRaw) ? archRaw.filter((a): a is string => typeof a === 'string') : [];
  const dt = c.torch_dtype ?? c.dtype;

  return {
    modelType,
    architectures,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps,
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings,
    vocabSize,
    tieWordEmbeddings: optBool('tie_word_embeddings', false),
    attentionBias: modelType === 'qwen2' ? true : llamaAttnBias,
    attentionOutBias: llamaAttnBias,
    mlpBias: modelType === 'llama' ? optBool('mlp_bias', false) : false,
    bosTokenId: optTokenId('bos_token_id', d.bos),
    eosTokenId,
    padTokenId: optTokenId('pad_token_id', null),
    hiddenAct: 'silu',
    dtype: typeof dt === 'string' ? dt : null,
    raw: c,
  };
}

function parseRopeScaling(
  s: unknown,
  field: string,
  fail: (field: string, expected: string, v: unknown) => never,
  posNum: (field: string, v: unknown) => number,
): RopeScaling | null {
  if (s == null) return null;
  if (typeof s !== 'object' || Array.isArray(s)) return fail(field, 'null or an object', s);
  const r = s as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  const typeField = `${field}.${r.rope_type !== undefined ? 'rope_type' : 'type'}`;
  if (type === undefined || type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: posNum(`${field}.factor`, r.factor) };
  if (type === 'llama3') {
    const out: RopeScaling = {
      type: 'llama3',
      factor: posNum(`${field}.factor`, r.factor),
      lowFreqFactor: posNum(`${field}.low_freq_factor`, r.low_freq_factor),
      highFreqFactor: posNum(`${field}.high_freq_factor`, r.high_freq_factor),
      originalMaxPositionEmbeddings: posNum(`${field}.original_max_position_embeddings`, r.original_max_position_embeddings),
    };
    if (out.highFreqFactor <= out.lowFreqFactor) {
      fail(`${field}.high_freq_factor`, `greater than low_freq_factor (${out.lowFreqFactor})`, out.highFreqFactor);
    }
    return out;
  }
  return fail(typeField, '"default", "linear" or "llama3" (other RoPE scaling types such as dynamic, yarn and longrope are not supported)', type);
}

/** EOS ids as a list (empty when the config names none). */
export function eosTokenIds(config: ModelConfig): number[] {
  const e = config.eosTokenId;
  return e === null ? [] : Array.isArray(e) ? [...e] : [e];
}
