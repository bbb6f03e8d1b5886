// Float64 CPU reference of a Llama/Mistral/Qwen2 causal LM with optional LoRA (spec §4.3, §6.3–§6.4).
// Slow and simple on purpose: it is the ground truth the GPU engine is tested against.
//
// Label convention (same as transformers' LlamaForCausalLM): `labels` has the shape of input_ids and
// is NOT shifted; the model shifts internally, so logits at position t are scored against
// labels[t + 1], and −100 means "ignore". A pair (t → t+1) also does not count when segment ids are
// given and the two tokens are in different segments or in padding (segment 0). The loss is the mean
// cross-entropy over every counted pair of the whole batch (NaN when none counts, like PyTorch).

import type { ModelConfig } from './config.ts';
import {
  EMBED_TOKENS, FINAL_NORM, LM_HEAD, LORA_TARGETS, biasName, hasBias, inputNormName, peftLoraName,
  postAttentionNormName, targetShape, weightName, type LoraTarget,
} from './names.ts';

export type Tensor = Float32Array | Float64Array;
/** Weights by HF tensor name (float data, e.g. loaded F32 or dequantized NF4). */
export type TensorLookup = ReadonlyMap<string, Tensor>;

export interface Batch {
  /** [batch][seq] token ids; every row has the same length. */
  inputIds: number[][];
  /** RoPE positions per token; default 0..T−1 for every row. */
  positionIds?: number[][];
  /** Per-token sequence ids: a token attends to earlier-or-equal tokens of the same segment; 0 = padding. */
  segmentIds?: number[][];
}

export interface LabeledBatch extends Batch {
  /** HF-style labels: same shape as inputIds, unshifted; −100 = ignore. */
  labels: number[][];
}

export interface LoraSpec {
  /** Tensors by PEFT name (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, A: [r, in], B: [out, r]). */
  tensors: TensorLookup;
  alpha: number;
  /** rsLoRA: scaling = alpha/√r instead of alpha/r. */
  useRslora?: boolean;
  /**
   * Dropout on the LoRA input: the multiplier (0 or 1/(1−p)) of element i of token `token`
   * (flattened over the batch: b·seqLen + t) for one layer's module. Absent: no dropout.
   */
  dropoutMask?: (layer: number, target: LoraTarget, token: number, i: number) => number;
}

export interface Logits {
  /** [batch, seqLen, vocab], row-major. */
  data: Float64Array;
  batch: number;
  seqLen: number;
  vocab: number;
  /** View of the logits of one position. */
  row(b: number, t: number): Float64Array;
}

export const IGNORE_INDEX = -100;

/** RoPE inverse frequencies in float64, with llama3 or linear scaling applied. */
export function ropeInvFreq(config: ModelConfig): Float64Array {
  const d = config.headDim;
  const inv = new Float64Array(d / 2);
  const s = config.ropeScaling;
  for (let j = 0; j < d / 2; j++) {
    let f = 1 / Math.pow(config.ropeTheta, (2 * j) / d);
    if (s?.type === 'linear') {
      f /= s.factor;
    } else if (s?.type === 'llama3') {
      const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) {
        f /= s.factor;
      } else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        f = ((1 - smooth) * f) / s.factor + smooth * f;
      }
    }
    inv[j] = f;
  }
  return inv;
}

// ---- building blocks ------------------------------------------------------------------------

function need(w: TensorLookup, name: string, numel: number): Tensor {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing tensor ${name}`);
  if (t.length !== numel) throw new Error(`reference: ${name} has ${t.length} values, expected ${numel}`);
  return t;
}

interface LoraPair { A: Tensor; B: Tensor; r: number; scaling: number; mask?: (t: number, i: number) => number }

function loraFor(lora: LoraSpec | undefined, config: ModelConfig, layer: number, t: LoraTarget): LoraPair | null {
  if (!lora) return null;
  const an = peftLoraName(layer, t, 'A');
  const bn = peftLoraName(layer, t, 'B');
  const A = lora.tensors.get(an);
  const B = lora.tensors.get(bn);
  if (!A && !B) return null;
  if (!A || !B) throw new Error(`reference: LoRA has ${A ? an : bn} but not ${A ? bn : an}`);
  const [out, inp] = targetShape(config, t);
  const r = A.length / inp;
  if (!Number.isInteger(r) || r < 1 || B.length !== out * r) {
    throw new Error(`reference: LoRA ${an} (${A.length} values) / ${bn} (${B.length}) do not fit [r, ${inp}] / [${out}, r]`);
  }
  return { A, B, r, scaling: lora.useRslora ? lora.alpha / Math.sqrt(r) : lora.alpha / r };
}

/** y[T, out] = x[T, in]·Wᵀ (+ b) (+ scaling·(x·Aᵀ)·Bᵀ). */
function linear(x: Float64Array, T: number, inp: number, out: number, W: Tensor, b: Tensor | null, lora: LoraPair | null): Float64Array {
  const y = new Float64Array(T * out);
  for (let t = 0; t < T; t++) {
    const xo = t * inp;
    for (let o = 0; o < out; o++) {
      const wo = o * inp;
      let acc = b ? b[o] : 0;
      for (let i = 0; i < inp; i++) acc += x[xo + i] * W[wo + i];
      y[t * out + o] = acc;
    }
  }
  if (lora) {
    const { A, B, r, scaling } = lora;
    const xa = new Float64Array(r);
    for (let t = 0; t < T; t++) {
      const xo = t * inp;
      for (let j = 0; j < r; j++) {
        let acc = 0;
        if (lora.mask) for (let i = 0; i < inp; i++) acc += x[xo + i] * lora.mask(t, i) * A[j * inp + i];
        else for (let i = 0; i < inp; i++) acc += x[xo + i] * A[j * inp + i];
        xa[j] = acc;
      }
      for (let o = 0; o < out; o++) {
        let acc = 0;
        for (let j = 0; j < r; j++) acc += xa[j] * B[o * r + j];
        y[t * out + o] += scaling * acc;
      }
    }
  }
  return y;
}

function rmsNorm(x: Float64Array, T: number, h: number, w: Tensor, eps: number): Float64Array<ArrayBuffer> {
  const y = new Float64Array(T * h);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < h; i++) ss += x[t * h + i] * x[t * h + i];
    const inv = 1 / Math.sqrt(ss / h + eps);
    for (let i = 0; i < h; i++) y[t * h + i] = w[i] * (x[t * h + i] * inv);
  }
  return y;
}

/** In-place rotate_half RoPE on [T, heads·d]: dimension i pairs with i + d/2. */
function applyRope(x: Float64Array, T: number, heads: number, d: number, pos: readonly number[], inv: Float64Array): void {
  const half = d / 2;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < half; j++) {
      const a = pos[t] * inv[j];
      const c = Math.cos(a);
      const s = Math.sin(a);
      for (let h = 0; h < heads; h++) {
        const o = t * heads * d + h * d;
        const x1 = x[o + j];
        const x2 = x[o + j + half];
        x[o + j] = x1 * c - x2 * s;
        x[o + j + half] = x2 * c + x1 * s;
      }
    }
  }
}

/** Causal GQA attention for one sequence; returns [T, nH·Dh]. */
function attention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, c: ModelConfig, seg: readonly number[] | null): Float64Array {
  const { numHeads: nH, numKvHeads: nKv, headDim: d } = c;
  const group = nH / nKv;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(T * nH * d);
  const p = new Float64Array(T);
  for (let h = 0; h < nH; h++) {
    const kh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = t * nH * d + h * d;
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        if (seg && seg[s] !== seg[t]) {
          p[s] = -Infinity;
          continue;
        }
        const ko = s * nKv * d + kh * d;
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[qo + i] * k[ko + i];
        p[s] = dot * scale;
        if (p[s] > max) max = p[s];
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) {
        p[s] = p[s] === -Infinity ? 0 : Math.exp(p[s] - max);
        sum += p[s];
      }
      for (let s = 0; s <= t; s++) {
        if (p[s] === 0) continue;
        const w = p[s] / sum;
        const vo = s * nKv * d + kh * d;
        for (let i = 0; i < d; i++) out[qo + i] += w * v[vo + i];
      }
    }
  }
  return out;
}

// ---- the model ------------------------------------------------------------------------------

function checkBatch(batch: Batch, config: ModelConfig): { B: number; T: number } {
  const B = batch.inputIds.length;
  if (B === 0) throw new Error('reference: empty batch');
  const T = batch.inputIds[0].length;
  if (T === 0) throw new Error('reference: empty sequence');
  const check = (what: string, rows: number[][] | undefined, ok: (v: number) => boolean) => {
    if (!rows) return;
    if (rows.length !== B) throw new Error(`reference: ${what} has ${rows.length} rows, expected ${B}`);
    rows.forEach((row, b) => {
      if (row.length !== T) throw new Error(`reference: ${what}[${b}] has length ${row.length}, expected ${T}`);
      row.forEach((v, t) => {
        if (!ok(v)) throw new Error(`reference: ${what}[${b}][${t}] = ${v} is out of range`);
      });
    });
  };
  check('inputIds', batch.inputIds, (v) => Number.isInteger(v) && v >= 0 && v < config.vocabSize);
  check('positionIds', batch.positionIds, (v) => Number.isInteger(v) && v >= 0);
  check('segmentIds', batch.segmentIds, (v) => Number.isInteger(v) && v >= 0);
  return { B, T };
}

/** Final-norm hidden states [T, hidden] of one row. */
function rowHidden(w: TensorLookup, c: ModelConfig, ids: readonly number[], pos: readonly number[], seg: readonly number[] | null,
  lora: LoraSpec | undefined, inv: Float64Array, rowBase = 0): Float64Array<ArrayBuffer> {
  const T = ids.length;
  const H = c.hiddenSize;
  const emb = need(w, EMBED_TOKENS, c.vocabSize * H);
  let x = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) x[t * H + i] = emb[ids[t] * H + i];
  const proj = (l: number, t: LoraTarget, input: Float64Array) => {
    const [out, inp] = targetShape(c, t);
    const W = need(w, weightName(l, t), out * inp);
    const b = hasBias(c, t) ? need(w, biasName(l, t), out) : null;
    const pair = loraFor(lora, c, l, t);
    const dm = lora?.dropoutMask;
    if (pair && dm) pair.mask = (tok, i) => dm(l, t, rowBase + tok, i);
    return linear(input, T, inp, out, W, b, pair);
  };
  for (let l = 0; l < c.numLayers; l++) {
    const h1 = rmsNorm(x, T, H, need(w, inputNormName(l), H), c.rmsNormEps);
    const q = proj(l, 'q_proj', h1);
    const k = proj(l, 'k_proj', h1);
    const v = proj(l, 'v_proj', h1);
    applyRope(q, T, c.numHeads, c.headDim, pos, inv);
    applyRope(k, T, c.numKvHeads, c.headDim, pos, inv);
    const o = proj(l, 'o_proj', attention(q, k, v, T, c, seg));
    for (let i = 0; i < x.length; i++) x[i] += o[i];
    const h2 = rmsNorm(x, T, H, need(w, postAttentionNormName(l), H), c.rmsNormEps);
    const g = proj(l, 'gate_proj', h2);
    const u = proj(l, 'up_proj', h2);
    for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    const dn = proj(l, 'down_proj', g);
    for (let i = 0; i < x.length; i++) x[i] += dn[i];
  }
  x = rmsNorm(x, T, H, need(w, FINAL_NORM, H), c.rmsNormEps);
  return x;
}

function lmHead(w: TensorLookup, c: ModelConfig): Tensor {
  return need(w, c.tieWordEmbeddings ? EMBED_TOKENS : LM_HEAD, c.vocabSize * c.hiddenSize);
}

/** Logits [B, T, vocab] of the whole batch. */
export function forward(weights: TensorLookup, config: ModelConfig, batch: Batch, lora?: LoraSpec): Logits {
  const { B, T } = checkBatch(batch, config);
  const V = config.vocabSize;
  const H = config.hiddenSize;
  const inv = ropeInvFreq(config);
  const head = lmHead(weights, config);
  const data = new Float64Array(B * T * V);
  for (let b = 0; b < B; b++) {
    const pos = batch.positionIds?.[b] ?? Array.from({ length: T }, (_, t) => t);
    const hid = rowHidden(weights, config, batch.inputIds[b], pos, batch.segmentIds?.[b] ?? null, lora, inv, b * T);
    data.set(linear(hid, T, H, V, head, null, null), b * T * V);
  }
  return { data, batch: B, seqLen: T, vocab: V, row: (b, t) => data.subarray((b * T + t) * V, (b * T + t + 1) * V) };
}

/** Mean causal-LM cross-entropy of HF-style (unshifted) labels; see the convention at the top. */
export function crossEntropy(logits: Logits, labels: number[][], segmentIds?: number[][]): { loss: number; sum: number; count: number } {
  const { batch: B, seqLen: T, vocab: V } = logits;
  if (labels.length !== B || labels.some((r) => r.length !== T)) throw new Error(`reference: labels must be [${B}][${T}] like inputIds`);
  let sum = 0;
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const target = labels[b][t + 1];
      if (target === IGNORE_INDEX) continue;
      const seg = segmentIds?.[b];
      if (seg && (seg[t] !== seg[t + 1] || seg[t] === 0)) continue;
      if (!Number.isInteger(target) || target < 0 || target >= V) throw new Error(`reference: labels[${b}][${t + 1}] = ${target} is not a token id or −100`);
      const z = logits.row(b, t);
      let max = -Infinity;
      for (let i = 0; i < V; i++) if (z[i] > max) max = z[i];
      let se = 0;
      for (let i = 0; i < V; i++) se += Math.exp(z[i] - max);
      sum += max + Math.log(se) - z[target];
      count++;
    }
  }
  return { loss: sum / count, sum, count };
}

/** forward + crossEntropy: the mean loss over counted label positions. */
export function loss(weights: TensorLookup, config: ModelConfig, batch: LabeledBatch, lora?: LoraSpec): number {
  return crossEntropy(forward(weights, config, batch, lora), batch.labels, batch.segmentIds).loss;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Stop after producing one of these ids (it is included in the result). */
  stopIds?: readonly number[];
  lora?: LoraSpec;
}

/** Greedy decoding (argmax, first index on ties); returns only the new ids. Recomputes the prefix each step. */
export function generateGreedy(weights: TensorLookup, config: ModelConfig, promptIds: readonly number[], opts: GenerateOptions): number[] {
  const ids = [...promptIds];
  const out: number[] = [];
  const inv = ropeInvFreq(config);
  const head = lmHead(weights, config);
  const H = config.hiddenSize;
  checkBatch({ inputIds: [ids] }, config);
  while (out.length < opts.maxNewTokens && ids.length < config.maxPositionEmbeddings) {
    const T = ids.length;
    const hid = rowHidden(weights, config, ids, ids.map((_, t) => t), null, opts.lora, inv);
    const z = linear(hid.subarray((T - 1) * H), 1, H, config.vocabSize, head, null, null);
    let best = 0;
    for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
    ids.push(best);
    out.push(best);
    if (opts.stopIds?.includes(best)) break;
  }
  return out;
}

/** The LoRA targets a spec adapts in a given layer (for tests and reports). */
export function loraTargetsIn(lora: LoraSpec, layer: number): LoraTarget[] {
  return LORA_TARGETS.filter((t) => lora.tensors.has(peftLoraName(layer, t, 'A')));
}
