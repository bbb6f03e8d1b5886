// The causal LM on the GPU (Llama / Mistral / Qwen2 family): a frozen base (4-bit or f32
// linears, f32 embeddings and norms) with optional LoRA, forward and backward as WGSL kernels,
// one command stream per step and no readback inside it.
//
// Per decoder layer l (T = B·S tokens, D hidden, F intermediate, Hq/Hkv heads of Dh):
//   x_l [T,D] → n1 = rms(x_l)·w1 → q,k,v = n1·Wᵀ (+b, +LoRA) → RoPE(q,k) → o = attn(q,k,v)
//   → x_mid = x_l + o·Woᵀ (+LoRA) → n2 = rms(x_mid)·w2 → g,u = n2·W{gate,up}ᵀ (+LoRA)
//   → h = silu(g)·u → x_{l+1} = x_mid + h·Wdownᵀ (+LoRA)
// Head: nf = rms(x_N)·wf → logits = nf·Eᵀ (tied) or nf·Wheadᵀ, in row chunks so [T, V] never
// sits whole in memory → fused cross-entropy, whose backward overwrites the chunk's logits.
// Activation checkpointing (default on): the forward keeps only each layer's input x_l; the
// backward recomputes one layer's intermediates (one shared scratch set) before its backward.
// Without it, each layer keeps its own scratch and nothing is recomputed.

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ModelConfig } from '../model/config.ts';
import { LORA_TARGETS, type LoraTarget } from '../model/names.ts';
import { embeddingForward } from '../nn/embedding.ts';
import { rmsnormBackward, rmsnormForward } from '../nn/rmsnorm.ts';
import { ropeBackward, ropeForward } from '../nn/rope.ts';
import { swigluBackward, swigluForward } from '../nn/swiglu.ts';
import { attentionBackward, attentionDecode, attentionForward, type AttentionShape } from '../nn/attention.ts';
import { crossEntropyForward, crossEntropyForwardBackward, crossEntropyReduce } from '../nn/cross-entropy.ts';
import { add } from '../nn/elementwise.ts';
import { gemm } from '../nn/gemm.ts';
import { matmulF32, matmulF32Backward } from '../quant/gpu/matmul-f32.ts';
import type { FrozenLinear } from './linear.ts';
import type { LoraAdapter } from './lora.ts';
import type { Batch } from './batch.ts';
import { logitsChunkRows } from './memory-estimate.ts';

export interface LayerWeights {
  inputNorm: GPUBuffer;
  postNorm: GPUBuffer;
  linears: Record<LoraTarget, FrozenLinear>;
}

/** The LM head: f32 W [V, D] (the embedding table when tied). */
export interface Head {
  weight: GPUBuffer;
  tied: boolean;
}

/** One layer's intermediates. */
interface Scratch {
  n1: GPUBuffer;
  rstd1: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  o: GPUBuffer;
  lse: GPUBuffer;
  xmid: GPUBuffer;
  n2: GPUBuffer;
  rstd2: GPUBuffer;
  g: GPUBuffer;
  u: GPUBuffer;
  h: GPUBuffer;
}

/** Every buffer sized for one T. */
class Activations {
  readonly ids: GPUBuffer;
  readonly pos: GPUBuffer;
  readonly seg: GPUBuffer;
  readonly targets: GPUBuffer;
  readonly xs: GPUBuffer[];
  readonly scratch: Scratch[];
  readonly nf: GPUBuffer;
  readonly rstdf: GPUBuffer;
  readonly logits: GPUBuffer; // [chunk, V]
  readonly losses: GPUBuffer;
  readonly stats: GPUBuffer;
  // backward
  readonly dres: GPUBuffer;
  readonly dn: GPUBuffer;
  readonly dh: GPUBuffer;
  readonly dattn: GPUBuffer;
  readonly dq: GPUBuffer;
  readonly dk: GPUBuffer;
  readonly dv: GPUBuffer;
  readonly loraDu: GPUBuffer;
  readonly buffers: GPUBuffer[] = [];
  /** LoRA u = dropout(x)·Aᵀ [T, maxRank] per (scratch slot, module), made on first use. */
  private readonly loraUs = new Map<string, GPUBuffer>();

  constructor(
    private readonly rt: GpuRuntime,
    readonly T: number,
    c: ModelConfig,
    checkpointing: boolean,
    readonly chunk: number,
    readonly maxRank: number,
  ) {
    const f = (n: number, label: string) => this.alloc(n, label);
    const D = c.hiddenSize;
    const F = c.intermediateSize;
    const qd = c.numHeads * c.headDim;
    const kvd = c.numKvHeads * c.headDim;
    this.ids = f(T, 'ids');
    this.pos = f(T, 'positions');
    this.seg = f(T, 'segments');
    this.targets = f(T, 'targets');
    this.xs = Array.from({ length: c.numLayers + 1 }, (_, l) => f(T * D, `x${l}`));
    const makeScratch = (l: number): Scratch => ({
      n1: f(T * D, `L${l}.n1`),
      rstd1: f(T, `L${l}.rstd1`),
      q: f(T * qd, `L${l}.q`),
      k: f(T * kvd, `L${l}.k`),
      v: f(T * kvd, `L${l}.v`),
      o: f(T * qd, `L${l}.o`),
      lse: f(T * c.numHeads, `L${l}.lse`),
      xmid: f(T * D, `L${l}.xmid`),
      n2: f(T * D, `L${l}.n2`),
      rstd2: f(T, `L${l}.rstd2`),
      g: f(T * F, `L${l}.g`),
      u: f(T * F, `L${l}.u`),
      h: f(T * F, `L${l}.h`),
    });
    this.scratch = checkpointing ? [makeScratch(0)] : Array.from({ length: c.numLayers }, (_, l) => makeScratch(l));
    this.nf = f(T * D, 'nf');
    this.rstdf = f(T, 'rstdf');
    this.logits = f(chunk * c.vocabSize, 'logits');
    this.losses = f(T, 'losses');
    this.stats = f(4, 'loss.stats');
    this.dres = f(T * D, 'dres');
    this.dn = f(T * D, 'dn');
    this.dh = f(T * F, 'dh');
    this.dattn = f(T * qd, 'dattn');
    this.dq = f(T * qd, 'dq');
    this.dk = f(T * kvd, 'dk');
    this.dv = f(T * kvd, 'dv');
    this.loraDu = f(T * Math.max(1, maxRank), 'lora.du');
  }

  /** The LoRA u buffer of module `target` in scratch slot `slot` (the layer, or 0 under checkpointing). */
  loraU(slot: number, target: LoraTarget): GPUBuffer {
    const k = `${slot}.${target}`;
    let b = this.loraUs.get(k);
    if (!b) {
      b = this.alloc(this.T * Math.max(1, this.maxRank), `L${slot}.${target}.lora-u`);
      this.loraUs.set(k, b);
    }
    return b;
  }

  get bytes(): number {
    return this.buffers.reduce((s, b) => s + b.size, 0);
  }

  private alloc(n: number, label: string): GPUBuffer {
    const b = this.rt.create(Math.max(1, n) * 4, label);
    this.buffers.push(b);
    return b;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }

  /** Destroys the buffers once recorded work that may use them has run. */
  retire(rt: GpuRuntime): void {
    for (const b of this.buffers) rt.retire(b);
  }
}

export interface StepOptions {
  lora?: LoraAdapter | null;
  /** Keys the LoRA dropout masks; null = eval mode (no dropout). */
  microStep?: number | null;
  /**
   * Generation (B = 1): the batch's tokens sit at cache rows start.. (their k/v are written
   * there). start = 0 runs full causal attention over the batch (prefill); a one-token batch
   * with start > 0 attends to cache rows 0..start (decode).
   */
  kv?: { cache: KvCache; start: number };
}

/** Keys and values of every layer for one sequence: k, v [maxS, Hkv·Dh] per layer. */
export class KvCache {
  readonly k: GPUBuffer[];
  readonly v: GPUBuffer[];

  constructor(
    rt: GpuRuntime,
    config: ModelConfig,
    readonly maxS: number,
  ) {
    const bytes = maxS * config.numKvHeads * config.headDim * 4;
    this.k = Array.from({ length: config.numLayers }, (_, l) => rt.create(bytes, `kv.k${l}`));
    this.v = Array.from({ length: config.numLayers }, (_, l) => rt.create(bytes, `kv.v${l}`));
  }

  get bytes(): number {
    return this.k.reduce((s, b) => s + b.size * 2, 0);
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v]) b.destroy();
  }
}

export class GpuModel {
  checkpointing = true;
  private acts: Activations | null = null;
  /** The previous activation set, kept so prefill/decode (two shapes) don't reallocate. */
  private spare: Activations | null = null;

  constructor(
    readonly rt: GpuRuntime,
    readonly config: ModelConfig,
    readonly embed: GPUBuffer,
    readonly finalNorm: GPUBuffer,
    readonly head: Head,
    readonly layers: LayerWeights[],
    readonly rope: { table: GPUBuffer; maxPos: number },
  ) {}

  /** Bytes of the frozen base on the GPU. */
  get weightBytes(): number {
    let n = this.embed.size + this.finalNorm.size + this.rope.table.size + (this.head.tied ? 0 : this.head.weight.size);
    for (const l of this.layers) {
      n += l.inputNorm.size + l.postNorm.size;
      for (const t of LORA_TARGETS) n += l.linears[t].bytes;
    }
    return n;
  }

  get activationBytes(): number {
    return (this.acts?.bytes ?? 0) + (this.spare?.bytes ?? 0);
  }

  /** Records the forward of a batch up to the final norm (nf). */
  forward(batch: Batch, opts: StepOptions = {}): void {
    const a = this.activations(batch, opts.lora ?? null);
    const c = this.config;
    embeddingForward(this.rt, a.ids, this.embed, a.T, c.vocabSize, c.hiddenSize, a.xs[0]);
    for (let l = 0; l < c.numLayers; l++) this.layerForward(l, a, opts, a.xs[l + 1]!);
    rmsnormForward(this.rt, a.xs[c.numLayers]!, this.finalNorm, a.T, c.hiddenSize, c.rmsNormEps, { y: a.nf, rstd: a.rstdf });
  }

  /**
   * Records forward + loss + backward of one micro-batch: LoRA gradients are ADDED to the
   * adapter's grad buffers (zero them at the start of an optimizer step). `count` is the number
   * of counted targets the loss is averaged over (the whole accumulated batch). Afterwards
   * `lossStats` holds [mean, sum, count, 1/count] of this micro-batch (on the GPU).
   */
  trainStep(batch: Batch, lora: LoraAdapter, microStep: number, count = batch.count): void {
    const opts = { lora, microStep };
    this.forward(batch, opts);
    const a = this.acts!;
    const c = this.config;
    const D = c.hiddenSize;
    const V = c.vocabSize;
    // Head + loss, chunked: logits chunk → CE fwd/bwd in place → dnf chunk.
    for (let t0 = 0; t0 < a.T; t0 += a.chunk) {
      const rows = Math.min(a.chunk, a.T - t0);
      this.headForward(a, t0, rows);
      crossEntropyForwardBackward(this.rt, { logits: a.logits, labels: a.targets, rows, V, rowOffset: t0, losses: a.losses, count });
      this.headBackward(a, t0, rows);
    }
    crossEntropyReduce(this.rt, a.losses, a.targets, a.T, V, a.stats);
    rmsnormBackward(this.rt, a.dn, a.xs[c.numLayers]!, this.finalNorm, a.rstdf, a.T, D, a.dres);
    for (let l = c.numLayers - 1; l >= 0; l--) {
      if (this.checkpointing) this.layerForward(l, a, opts, null);
      this.layerBackward(l, a, opts);
    }
  }

  /** Records forward + per-token loss (no backward); `lossStats` then holds the mean. */
  evalStep(batch: Batch, lora?: LoraAdapter | null): void {
    this.forward(batch, { lora, microStep: null });
    const a = this.acts!;
    const c = this.config;
    for (let t0 = 0; t0 < a.T; t0 += a.chunk) {
      const rows = Math.min(a.chunk, a.T - t0);
      this.headForward(a, t0, rows);
      crossEntropyForward(this.rt, { logits: a.logits, labels: a.targets, rows, V: c.vocabSize, rowOffset: t0, losses: a.losses });
    }
    crossEntropyReduce(this.rt, a.losses, a.targets, a.T, c.vocabSize, a.stats);
  }

  /** [mean, sum, count, 1/count] of the last train/eval step (GPU buffer). */
  get lossStats(): GPUBuffer {
    if (!this.acts) throw new Error('no step has run yet');
    return this.acts.stats;
  }

  async readLoss(): Promise<{ mean: number; sum: number; count: number }> {
    const s = await this.rt.readF32(this.lossStats, 3);
    return { mean: s[0]!, sum: s[1]!, count: s[2]! };
  }

  /** Logits [rows, V] of a batch's tokens from `fromRow` on (forward + head, read back). */
  async logits(batch: Batch, lora?: LoraAdapter | null, opts: { kv?: StepOptions['kv']; fromRow?: number } = {}): Promise<Float32Array> {
    this.forward(batch, { lora, microStep: null, kv: opts.kv });
    const a = this.acts!;
    const c = this.config;
    const first = opts.fromRow ?? 0;
    const out = new Float32Array((a.T - first) * c.vocabSize);
    for (let t0 = first; t0 < a.T; t0 += a.chunk) {
      const rows = Math.min(a.chunk, a.T - t0);
      this.headForward(a, t0, rows);
      out.set(await this.rt.readF32(a.logits, rows * c.vocabSize), (t0 - first) * c.vocabSize);
    }
    return out;
  }

  destroy(): void {
    this.releaseActivations();
    this.embed.destroy();
    this.finalNorm.destroy();
    if (!this.head.tied) this.head.weight.destroy();
    this.rope.table.destroy();
    for (const l of this.layers) {
      l.inputNorm.destroy();
      l.postNorm.destroy();
      for (const t of LORA_TARGETS) l.linears[t].destroy();
    }
  }

  /** Frees the activation buffers (they are re-made for the next batch shape). */
  releaseActivations(): void {
    this.acts?.destroy();
    this.spare?.destroy();
    this.acts = null;
    this.spare = null;
  }

  // ---- internals -------------------------------------------------------------------------

  private activations(batch: Batch, lora: LoraAdapter | null): Activations {
    const T = batch.B * batch.S;
    const rank = lora ? lora.settings.r : 0;
    const fits = (x: Activations | null) =>
      // the set's own rank: a set made for the base alone (rank 0) must not serve an adapter
      x !== null && x.T === T && x.scratch.length === (this.checkpointing ? 1 : this.config.numLayers) && rank <= x.maxRank;
    if (!fits(this.acts)) {
      if (fits(this.spare)) {
        [this.acts, this.spare] = [this.spare, this.acts];
      } else {
        this.spare?.retire(this.rt);
        this.spare = this.acts;
        this.maxRank = Math.max(this.maxRank, rank);
        this.acts = new Activations(this.rt, T, this.config, this.checkpointing, logitsChunkRows(T, this.config), this.maxRank);
      }
    }
    const a = this.acts!;
    this.batch = batch;
    this.rt.write(a.ids, batch.inputIds);
    this.rt.write(a.pos, batch.positions);
    this.rt.write(a.seg, batch.segments);
    this.rt.write(a.targets, batch.targets);
    return a;
  }

  private maxRank = 0;
  private batch: Batch | null = null;

  /**
   * logits[rows, V] = nf[t0.., D] · Wheadᵀ, on the register-tiled f32 kernel (2–3× the general
   * gemm on SwiftShader; on the H100 this tile family ran x·Wᵀ ~3× faster than gemm in the kernel bench).
   */
  private headForward(a: Activations, t0: number, rows: number): void {
    const { hiddenSize: D, vocabSize: V } = this.config;
    matmulF32(this.rt, a.nf, this.head.weight, rows, V, D, { out: a.logits, xOffset: t0 * D });
  }

  /** dn[t0.., D] = dlogits[rows, V] · Whead (the general gemm when D % 8 != 0). */
  private headBackward(a: Activations, t0: number, rows: number): void {
    const { hiddenSize: D, vocabSize: V } = this.config;
    if (D % 8 === 0) matmulF32Backward(this.rt, a.logits, this.head.weight, rows, V, D, { out: a.dn, outOffset: t0 * D });
    else gemm(this.rt, a.logits, this.head.weight, a.dn, { M: rows, N: D, K: V, offC: t0 * D });
  }

  /** A frozen linear plus its LoRA path: u = dropout(x)·Aᵀ, then y = x·Wᵀ (+b) + s·u·Bᵀ. */
  private linear(l: number, t: LoraTarget, x: GPUBuffer, y: GPUBuffer, a: Activations, opts: StepOptions): void {
    const lora = opts.lora;
    const m = lora?.get(l, t);
    if (!m) {
      this.layers[l]!.linears[t].forward(this.rt, x, y, a.T);
      return;
    }
    const u = a.loraU(this.slot(l), t);
    lora!.project(this.rt, m, x, a.T, opts.microStep ?? null, u);
    this.layers[l]!.linears[t].forward(this.rt, x, y, a.T, lora!.expansion(m, u));
  }

  /**
   * dx (= or +=) dy·W, plus the LoRA gradients and LoRA input gradient. dx = null skips the
   * input gradient (layer 0's q/k/v: nothing below them trains).
   */
  private linearBack(l: number, t: LoraTarget, x: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer | null, acc: boolean, a: Activations, opts: StepOptions): void {
    const lora = opts.lora;
    const m = lora?.get(l, t);
    const microStep = opts.microStep ?? null;
    if (m) lora!.backward(this.rt, m, x, dy, a.T, microStep, a.loraU(this.slot(l), t), a.loraDu);
    if (dx) this.layers[l]!.linears[t].backward(this.rt, dy, dx, a.T, acc, m ? lora!.inputGrad(m, a.loraDu, microStep) : undefined);
  }

  /** Which set of per-layer buffers layer l uses: its own, or the one shared set under checkpointing. */
  private slot(l: number): number {
    return this.checkpointing ? 0 : l;
  }

  private scratchFor(l: number, a: Activations): Scratch {
    return a.scratch[this.slot(l)]!;
  }

  /** Layer l forward from xs[l]; writes xs[l+1] unless `out` is null (recompute only). */
  private layerForward(l: number, a: Activations, opts: StepOptions, out: GPUBuffer | null): void {
    const c = this.config;
    const rt = this.rt;
    const s = this.scratchFor(l, a);
    const w = this.layers[l]!;
    const T = a.T;
    const D = c.hiddenSize;
    const x = a.xs[l]!;
    rmsnormForward(rt, x, w.inputNorm, T, D, c.rmsNormEps, { y: s.n1, rstd: s.rstd1 });
    this.linear(l, 'q_proj', s.n1, s.q, a, opts);
    this.linear(l, 'k_proj', s.n1, s.k, a, opts);
    this.linear(l, 'v_proj', s.n1, s.v, a, opts);
    const rope = { pos: a.pos, table: this.rope.table, T, Dh: c.headDim, maxPos: this.rope.maxPos };
    ropeForward(rt, { ...rope, x: s.q, H: c.numHeads });
    ropeForward(rt, { ...rope, x: s.k, H: c.numKvHeads });
    const kv = opts.kv;
    if (kv) {
      const rowBytes = c.numKvHeads * c.headDim * 4;
      if (kv.start + T > kv.cache.maxS) throw new Error(`KV cache holds ${kv.cache.maxS} tokens; position ${kv.start + T} is past it`);
      rt.copy(s.k, 0, kv.cache.k[l]!, kv.start * rowBytes, T * rowBytes);
      rt.copy(s.v, 0, kv.cache.v[l]!, kv.start * rowBytes, T * rowBytes);
    }
    if (kv && kv.start > 0) {
      if (T !== 1) throw new Error('decode steps take one token at a time');
      attentionDecode(rt, {
        q: s.q,
        kCache: kv.cache.k[l]!,
        vCache: kv.cache.v[l]!,
        len: kv.start + 1,
        B: 1,
        maxS: kv.cache.maxS,
        Hq: c.numHeads,
        Hkv: c.numKvHeads,
        Dh: c.headDim,
        out: s.o,
      });
    } else {
      attentionForward(rt, this.attnShape(), { q: s.q, k: s.k, v: s.v, segments: a.seg, out: s.o, lse: s.lse });
    }
    this.linear(l, 'o_proj', s.o, s.xmid, a, opts);
    add(rt, s.xmid, x, T * D); // x_mid = x + attention
    rmsnormForward(rt, s.xmid, w.postNorm, T, D, c.rmsNormEps, { y: s.n2, rstd: s.rstd2 });
    this.linear(l, 'gate_proj', s.n2, s.g, a, opts);
    this.linear(l, 'up_proj', s.n2, s.u, a, opts);
    swigluForward(rt, s.g, s.u, T * c.intermediateSize, s.h);
    if (out) {
      this.linear(l, 'down_proj', s.h, out, a, opts);
      add(rt, out, s.xmid, T * D); // x_{l+1} = x_mid + mlp
    } else {
      // Recomputing for the backward: x_{l+1} is kept; down_proj's LoRA needs its u only.
      const m = opts.lora?.get(l, 'down_proj');
      if (m) opts.lora!.project(rt, m, s.h, T, opts.microStep ?? null, a.loraU(this.slot(l), 'down_proj'));
    }
  }

  /** Layer l backward: a.dres holds dL/dx_{l+1} on entry and dL/dx_l on exit. */
  private layerBackward(l: number, a: Activations, opts: StepOptions): void {
    const c = this.config;
    const rt = this.rt;
    const s = this.scratchFor(l, a);
    const w = this.layers[l]!;
    const T = a.T;
    const D = c.hiddenSize;
    // MLP
    this.linearBack(l, 'down_proj', s.h, a.dres, a.dh, false, a, opts);
    // g/u are overwritten by dg/du: their LoRA backward needs x = n2 only, and u (LoRA) is kept.
    swigluBackward(rt, a.dh, s.g, s.u, T * c.intermediateSize);
    this.linearBack(l, 'gate_proj', s.n2, s.g, a.dn, false, a, opts);
    this.linearBack(l, 'up_proj', s.n2, s.u, a.dn, true, a, opts);
    rmsnormBackward(rt, a.dn, s.xmid, w.postNorm, s.rstd2, T, D, a.dres, true);
    // attention
    this.linearBack(l, 'o_proj', s.o, a.dres, a.dattn, false, a, opts);
    attentionBackward(rt, this.attnShape(), {
      q: s.q,
      k: s.k,
      v: s.v,
      segments: a.seg,
      out: s.o,
      lse: s.lse,
      dout: a.dattn,
      dq: a.dq,
      dk: a.dk,
      dv: a.dv,
    });
    const rope = { pos: a.pos, table: this.rope.table, T, Dh: c.headDim, maxPos: this.rope.maxPos };
    ropeBackward(rt, { ...rope, x: a.dq, H: c.numHeads });
    ropeBackward(rt, { ...rope, x: a.dk, H: c.numKvHeads });
    const dn1 = l > 0 ? a.dn : null; // dL/dx_0 is not needed: embeddings are frozen
    this.linearBack(l, 'q_proj', s.n1, a.dq, dn1, false, a, opts);
    this.linearBack(l, 'k_proj', s.n1, a.dk, dn1, true, a, opts);
    this.linearBack(l, 'v_proj', s.n1, a.dv, dn1, true, a, opts);
    if (dn1) rmsnormBackward(rt, dn1, a.xs[l]!, w.inputNorm, s.rstd1, T, D, a.dres, true);
  }

  private attnShape(): AttentionShape {
    const c = this.config;
    return { B: this.batch!.B, S: this.batch!.S, Hq: c.numHeads, Hkv: c.numKvHeads, Dh: c.headDim };
  }
}
