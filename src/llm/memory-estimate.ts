// How much GPU memory a QLoRA run needs, before anything is downloaded or allocated: the frozen
// base in fp32 / fp16 / int8 / NF4 (with and without double quantization), the LoRA parameters,
// their gradients and AdamW's two moments, the activations of one step with gradient
// checkpointing at the chosen batch and sequence length (including the logits chunk of the
// fused cross-entropy and the per-module LoRA products), and the engine's scratch buffers. The
// accounting follows the buffers the engine really creates (src/llm/model.ts Activations,
// src/llm/lora.ts, src/train/adamw.ts, src/quant/gpu/gpu-quant.ts), so it can be checked
// against `rt.memory.peak` around a real step; `analyticMinimum` in src/bench/train.bench.ts is
// the same sum without the logits chunk, the LoRA products and the scratch.
// The result is set beside the adapter's buffer limits and a memory budget, with a plain verdict.
// Pure arithmetic: no GPU, no DOM; the studio calls it on the UI thread.

import type { ModelConfig } from '../model/config.ts';
import { loraParamCount, moduleFeatures, LORA_MODULES, type LoraModule } from '../train/lora-config.ts';

/** The numbers of a model that fix its memory (a subset of ModelConfig, also filled from Hub metadata). */
export interface ModelDims {
  numLayers: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v (Qwen2), on o_proj, on the MLP linears. */
  attentionBias?: boolean;
  attentionOutBias?: boolean;
  mlpBias?: boolean;
  maxPositionEmbeddings?: number;
}

export function dimsFromConfig(c: ModelConfig): ModelDims {
  return {
    numLayers: c.numLayers,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    tieWordEmbeddings: c.tieWordEmbeddings,
    attentionBias: c.attentionBias,
    attentionOutBias: c.attentionOutBias,
    mlpBias: c.mlpBias,
    maxPositionEmbeddings: c.maxPositionEmbeddings,
  };
}

/** Weight formats compared in the estimate. The engine runs 'fp32' (quant none), 'nf4' and 'nf4-dq'. */
export type WeightFormat = 'fp32' | 'fp16' | 'int8' | 'nf4' | 'nf4-dq';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['fp32', 'fp16', 'int8', 'nf4', 'nf4-dq'];
export const WEIGHT_FORMAT_LABELS: Record<WeightFormat, string> = {
  fp32: 'fp32',
  fp16: 'fp16 / bf16',
  int8: 'int8',
  nf4: 'NF4',
  'nf4-dq': 'NF4 + double quant',
};

export interface ParamCounts {
  /** Weights of the seven decoder linears (what 4-bit quantization applies to). */
  linear: number;
  /** Embeddings, untied head, norms and biases. */
  other: number;
  total: number;
}

export function paramCounts(d: ModelDims): ParamCounts {
  const dims = loraDims(d);
  let linear = 0;
  let bias = 0;
  for (const m of LORA_MODULES) {
    const f = moduleFeatures(dims, m);
    linear += f.in * f.out;
    if (hasBias(d, m)) bias += f.out;
  }
  linear *= d.numLayers;
  bias *= d.numLayers;
  const embed = d.vocabSize * d.hiddenSize;
  const other = embed * (d.tieWordEmbeddings ? 1 : 2) + d.hiddenSize * (2 * d.numLayers + 1) + bias;
  return { linear, other, total: linear + other };
}

export interface WeightBytes {
  format: WeightFormat;
  /** The seven linears of every layer in this format. */
  linear: number;
  /** Everything else: f32 in the formats the engine runs (fp32, NF4), f16 in the reference ones. */
  other: number;
  total: number;
  /** Whether this engine can train with the base in this format. */
  engine: boolean;
}

/** Bytes of a 4-bit tensor of n weights as the engine stores it (bitsandbytes layout, blocksize 64). */
export function quant4Bytes(n: number, doubleQuant: boolean, blocksize = 64): number {
  const blocks = Math.ceil(n / blocksize);
  const packed = align4(Math.ceil(n / 2));
  if (!doubleQuant) return packed + blocks * 4;
  // uint8 code per block, one f32 absmax per 256 blocks, the 256-entry f32 map
  return packed + align4(blocks) + Math.ceil(blocks / 256) * 4 + 256 * 4;
}

export function weightBytes(d: ModelDims, format: WeightFormat, opts: { maxPositions?: number } = {}): WeightBytes {
  const p = paramCounts(d);
  const dims = loraDims(d);
  let linear = 0;
  for (const m of LORA_MODULES) {
    const f = moduleFeatures(dims, m);
    const n = f.in * f.out;
    const one =
      format === 'fp32' ? n * 4 : format === 'fp16' ? n * 2 : format === 'int8' ? n + f.out * 4 : quant4Bytes(n, format === 'nf4-dq');
    linear += one;
  }
  linear *= d.numLayers;
  const engine = format === 'fp32' || format === 'nf4' || format === 'nf4-dq';
  const rope = engine ? ropeBytes(d, opts.maxPositions) : 0;
  const other = p.other * (engine ? 4 : 2) + rope;
  return { format, linear, other, total: linear + other, engine };
}

/** The RoPE cos/sin table the engine uploads: maxPos × headDim f32. */
function ropeBytes(d: ModelDims, maxPositions?: number): number {
  const maxPos = Math.min(d.maxPositionEmbeddings ?? 4096, maxPositions ?? 4096);
  return maxPos * d.headDim * 4;
}

export interface LoraShape {
  r: number;
  targetModules: readonly LoraModule[];
}

export interface MemoryInputs {
  model: ModelDims;
  lora: LoraShape;
  batchSize: number;
  seqLen: number;
  /** How the engine holds the base: 'nf4'/'fp4' (4-bit, double-quantized unless told) or 'none' (f32). */
  quant?: 'nf4' | 'fp4' | 'none';
  doubleQuant?: boolean;
  /** The adapter's limits (maxBufferSize, maxStorageBufferBindingSize); missing ones are not checked. */
  limits?: Readonly<Record<string, number>>;
  /** GPU bytes the run may use (default: defaultGpuBudget(limits)). */
  budget?: number;
}

export interface TrainingBytes {
  loraParams: number;
  /** LoRA parameters, their gradients, AdamW m and v: 4 bytes each. */
  params: number;
  grads: number;
  adam: number;
  /** One step's activations with gradient checkpointing (one layer's intermediates live at a time). */
  activations: number;
  /** Of which: the logits chunk of the fused cross-entropy. */
  logitsChunk: number;
  /** Per-runtime scratch (attention backward) and small optimizer buffers. */
  scratch: number;
}

export type Verdict = 'fits' | 'paging' | 'too-large';
export const VERDICT_LABELS: Record<Verdict, string> = { fits: 'fits', paging: 'fits with paging', 'too-large': 'too large' };

export interface MemoryEstimate {
  params: ParamCounts;
  /** The base in every format, for comparison. */
  weights: WeightBytes[];
  /** The base as this run holds it. */
  base: WeightBytes;
  training: TrainingBytes;
  /** Everything resident during a step. */
  total: number;
  /** Resident with Adam m and v paged out (src/train/paged-store.ts): one page of m/v stays; LoRA params and grads stay resident. */
  minimumWithPaging: number;
  /** The largest single GPU buffer the run creates, and what it is. */
  largestBuffer: { bytes: number; what: string };
  budget: number;
  limits: { maxBufferSize: number | null; maxStorageBufferBindingSize: number | null };
  verdict: Verdict;
  /** One plain sentence with the numbers behind the verdict. */
  reason: string;
}

/**
 * A default GPU memory budget when the user sets none. WebGPU does not tell how much memory a
 * GPU has; the largest buffer it allows is the best hint it gives (browsers derive it from the
 * device's memory), so the default is that, within [256 MiB, 4 GiB].
 */
export function defaultGpuBudget(limits?: Readonly<Record<string, number>>): number {
  const max = limits?.maxBufferSize;
  if (!max || !Number.isFinite(max)) return 2 * GiB;
  return Math.min(4 * GiB, Math.max(256 * MiB, max));
}

/**
 * Rows of logits per chunk of the fused head + cross-entropy (src/llm/model.ts). A chunk is no
 * larger than the largest per-layer activation (T·max(D, F) floats) so the head never sets the
 * step's peak, at least 64 rows (so its products stay efficient), and under 64 MiB.
 */
export function logitsChunkRows(T: number, d: Pick<ModelDims, 'hiddenSize' | 'intermediateSize' | 'vocabSize'>, budget = 64 * MiB): number {
  const V = d.vocabSize;
  const layerSized = Math.max(64, Math.floor((T * Math.max(d.hiddenSize, d.intermediateSize)) / V));
  return Math.max(1, Math.min(T, layerSized, Math.floor(budget / (V * 4))));
}

/** Bytes of one step's activations as src/llm/model.ts allocates them (checkpointing on), plus the LoRA products. */
export function activationBytes(d: ModelDims, lora: LoraShape, batchSize: number, seqLen: number): { total: number; logitsChunk: number } {
  const T = batchSize * seqLen;
  const D = d.hiddenSize;
  const F = d.intermediateSize;
  const H = d.numHeads;
  const qd = d.numHeads * d.headDim;
  const kvd = d.numKvHeads * d.headDim;
  const b = (n: number) => Math.max(4, align4(Math.max(1, n) * 4));
  let n = 0;
  n += 4 * b(T); // ids, positions, segments, targets
  n += (d.numLayers + 1) * b(T * D); // checkpointed layer inputs
  // one layer's forward intermediates: n1 rstd1 q k v o lse xmid n2 rstd2 g u h
  n += b(T * D) * 3 + b(T) * 2 + b(T * qd) * 2 + b(T * kvd) * 2 + b(T * H) + b(T * F) * 3;
  n += b(T * D) + b(T); // final norm and its rstd
  const logitsChunk = b(logitsChunkRows(T, d) * d.vocabSize);
  n += logitsChunk + b(T) + b(4); // logits chunk, per-token losses, loss stats
  // backward: dres dn dh dattn dq dk dv, LoRA du
  n += b(T * D) * 2 + b(T * F) + b(T * qd) * 2 + b(T * kvd) * 2 + b(T * Math.max(1, lora.r));
  // LoRA: u = x·Aᵀ per adapted module, kept for its backward; checkpointing shares one layer's set
  n += lora.targetModules.length * b(T * lora.r);
  return { total: n, logitsChunk };
}

export function estimateMemory(inp: MemoryInputs): MemoryEstimate {
  const d = inp.model;
  const T = inp.batchSize * inp.seqLen;
  const quant = inp.quant ?? 'nf4';
  const dq = inp.doubleQuant ?? true;
  const maxPositions = inp.seqLen;
  const weights = WEIGHT_FORMATS.map((f) => weightBytes(d, f, { maxPositions }));
  const baseFormat: WeightFormat = quant === 'none' ? 'fp32' : dq ? 'nf4-dq' : 'nf4';
  const base = weights.find((w) => w.format === baseFormat)!;
  const params = paramCounts(d);

  const loraParams = loraParamCount(loraDims(d), { r: inp.lora.r, targetModules: [...inp.lora.targetModules] });
  const act = activationBytes(d, inp.lora, inp.batchSize, inp.seqLen);
  // attention backward scratch (≥ 64 KiB), grad-norm partials and small buffers
  const attnScratch = Math.max(T * d.numHeads * 8, 1 << 16);
  const modules = d.numLayers * inp.lora.targetModules.length;
  const small = modules * 64 * 4 + 16 * 4 + 1024 + 16 + 4;
  const training: TrainingBytes = {
    loraParams,
    params: loraParams * 4,
    grads: loraParams * 4,
    adam: loraParams * 8,
    activations: act.total,
    logitsChunk: act.logitsChunk,
    scratch: attnScratch + small,
  };
  const baseTotal = base.total;
  const total = baseTotal + training.params + training.grads + training.adam + training.activations + training.scratch;
  const largestPage = largestLoraPage(d, inp.lora);
  const minimumWithPaging = total - training.adam + 2 * largestPage * 4;

  const largestBuffer = largest(d, inp.lora, quant, T);
  const maxBufferSize = finite(inp.limits?.maxBufferSize);
  const maxBinding = finite(inp.limits?.maxStorageBufferBindingSize);
  const budget = inp.budget ?? defaultGpuBudget(inp.limits);

  let verdict: Verdict;
  let reason: string;
  const bindingLimit = Math.min(maxBufferSize ?? Infinity, maxBinding ?? Infinity);
  if (largestBuffer.bytes > bindingLimit) {
    verdict = 'too-large';
    reason = `the ${largestBuffer.what} needs one buffer of ${fmtBytes(largestBuffer.bytes)}, but this GPU allows at most ${fmtBytes(bindingLimit)} per buffer`;
  } else if (total <= budget) {
    verdict = 'fits';
    reason = `a step needs about ${fmtBytes(total)} of the ${fmtBytes(budget)} budget`;
  } else if (minimumWithPaging <= budget) {
    verdict = 'paging';
    reason = `a step needs about ${fmtBytes(total)}, more than the ${fmtBytes(budget)} budget; paging optimizer state out brings it to ${fmtBytes(minimumWithPaging)}`;
  } else {
    verdict = 'too-large';
    reason = `even with the optimizer state paged out a step needs ${fmtBytes(minimumWithPaging)}, more than the ${fmtBytes(budget)} budget: lower the sequence length or batch, or pick a smaller model`;
  }
  return {
    params,
    weights,
    base,
    training,
    total,
    minimumWithPaging,
    largestBuffer,
    budget,
    limits: { maxBufferSize, maxStorageBufferBindingSize: maxBinding },
    verdict,
    reason,
  };
}

/**
 * Parameter count from safetensors headers (the JSON at the start of each shard): the product of
 * every tensor's shape. bitsandbytes 4-bit weights (U8, packed two per byte, with a
 * `.quant_state.` sibling) count two parameters per byte; their absmax / quant-map tensors are
 * bookkeeping, not parameters.
 */
export function paramsFromSafetensorsHeaders(headers: ReadonlyArray<Readonly<Record<string, unknown>>>): number {
  const all = new Map<string, { dtype: string; shape: number[] }>();
  for (const h of headers) {
    for (const [name, v] of Object.entries(h)) {
      if (name === '__metadata__' || !v || typeof v !== 'object') continue;
      const t = v as { dtype?: unknown; shape?: unknown };
      if (typeof t.dtype !== 'string' || !Array.isArray(t.shape)) continue;
      all.set(name, { dtype: t.dtype, shape: t.shape as number[] });
    }
  }
  const quantized = new Set<string>();
  for (const name of all.keys()) {
    const i = name.indexOf('.weight.quant_state.');
    if (i >= 0) quantized.add(name.slice(0, i + '.weight'.length));
  }
  let n = 0;
  for (const [name, t] of all) {
    if (/\.weight\.(absmax|quant_map|nested_absmax|nested_quant_map|quant_state\.)/.test(name)) continue;
    const count = t.shape.reduce((a, b) => a * b, 1);
    n += quantized.has(name) && t.dtype === 'U8' ? count * 2 : count;
  }
  return n;
}

// ---- internals ---------------------------------------------------------------------------

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function finite(x: number | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : null;
}

function loraDims(d: ModelDims) {
  return {
    numLayers: d.numLayers,
    hiddenSize: d.hiddenSize,
    intermediateSize: d.intermediateSize,
    numHeads: d.numHeads,
    numKvHeads: d.numKvHeads,
    headDim: d.headDim,
  };
}

function hasBias(d: ModelDims, m: LoraModule): boolean {
  if (m === 'q_proj' || m === 'k_proj' || m === 'v_proj') return !!d.attentionBias;
  if (m === 'o_proj') return !!d.attentionOutBias;
  return !!d.mlpBias;
}

/** Parameters of the largest LoRA module (A and B of one linear in one layer): the paging layer's unit. */
function largestLoraPage(d: ModelDims, lora: LoraShape): number {
  const dims = loraDims(d);
  let max = 0;
  for (const m of lora.targetModules) {
    const f = moduleFeatures(dims, m);
    max = Math.max(max, lora.r * (f.in + f.out));
  }
  return max;
}

function largest(d: ModelDims, lora: LoraShape, quant: string, T: number): { bytes: number; what: string } {
  const dims = loraDims(d);
  const cands: Array<{ bytes: number; what: string }> = [
    { bytes: d.vocabSize * d.hiddenSize * 4, what: 'embedding table (f32)' },
    { bytes: logitsChunkRows(T, d) * d.vocabSize * 4, what: 'logits chunk' },
    { bytes: T * d.intermediateSize * 4, what: 'MLP activations of one layer' },
  ];
  let widest = 0;
  for (const m of LORA_MODULES) {
    const f = moduleFeatures(dims, m);
    widest = Math.max(widest, f.in * f.out * 4);
  }
  // Quantize-on-load uploads each linear in f32 before packing it; 'none' keeps it that way.
  cands.push({ bytes: widest, what: quant === 'none' ? 'largest linear weight (f32)' : 'largest linear weight while it is quantized (f32)' });
  void lora;
  return cands.reduce((a, b) => (b.bytes > a.bytes ? b : a));
}

/** 1073741824 → "1 GiB" (the studio's formatBytes, repeated here to keep the engine free of app code). */
function fmtBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || Number.isInteger(v) ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${Number(v.toFixed(digits))} ${units[u]}`;
}
