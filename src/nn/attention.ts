// Causal grouped-query attention with padding / packing segment masks (shaders/attention.wgsl),
// flash-attention style: tiles in workgroup memory, online softmax, the backward recomputes the
// probabilities from q, k and the saved log-sum-exp; no [S, S] matrix in global memory.
//
// Buffers (f32 row-major, T = B·S tokens, token t = b·S + s, B sequences of length S):
//   q     [T, Hq, Dh]    queries (after RoPE)         k, v  [T, Hkv, Dh]  keys (after RoPE), values
//   segments u32 [T]     segment id per token: query s attends key j of its own sequence iff
//                        j ≤ s and seg[j] = seg[s] ≠ 0. 0 = padding (a padded query outputs 0 and
//                        is attended by nobody); distinct ids for packed examples keep them apart.
//   out   [T, Hq, Dh]    output o (the o_proj input); query head h uses kv head h / (Hq/Hkv)
//   lse   f32 [T, Hq]    log-sum-exp of the scaled scores (0 for a padded query), saved for backward
//   dout  [T, Hq, Dh]    gradient of o
//   dq    [T, Hq, Dh]    dk, dv [T, Hkv, Dh]: gradients (dk/dv summed over the query heads sharing
//                        a kv head); written, not accumulated; rows of padded tokens are 0
//   scratch f32 [T, Hq, 2] (lse, Σ dout·o) per (token, head), internal to the backward
// Decode (generation, one new token per sequence):
//   q      [B, Hq, Dh]   the new token's queries       out [B, Hq, Dh]
//   kCache, vCache [B, maxS, Hkv, Dh]: positions 0..len−1 valid (the new token's k/v already
//   written at len − 1); len is one number for all sequences or a u32 [B] buffer of lengths.
// scale defaults to 1/√Dh. Dh ≤ 256, Hq a multiple of Hkv.

import type { GpuRuntime } from '../gpu/runtime.ts';
import { grid } from './elementwise.ts';

const FILE = 'attention';
const MAXDPT = 32;

/** Tile shape: BR query rows, BC keys per tile, NC invocations per row (or per key). */
export interface AttentionTiles {
  BR: number;
  BC: number;
  NC: number;
}

export interface AttentionShape {
  B: number;
  S: number;
  Hq: number;
  Hkv: number;
  Dh: number;
}

type Kernel = 'fwd' | 'dq' | 'dkdv';

/**
 * Workgroup memory bytes a kernel needs with these tiles (mirrors the WGSL declarations; Dawn
 * counts 48 bytes more, aligning the four scalars to 16 bytes: this adds 64).
 */
export function tileBytes(kind: Kernel, t: AttentionTiles, Dh: number): number {
  const row = Dh + 1;
  const common = t.BR + t.BC + 16; // sqseg, sks, then wlo, whi, ulo, uhi with alignment slack
  if (kind === 'fwd') return 4 * (t.BR * row + 2 * t.BC * row + 2 * t.BR * t.BC + common);
  if (kind === 'dq') return 4 * (2 * t.BR * row + 2 * t.BC * row + t.BR * t.BC + common);
  return 4 * (2 * t.BR * row + 2 * t.BC * row + 2 * t.BR * t.BC + 2 * t.BR + common);
}

const CANDIDATES: AttentionTiles[] = [
  { BR: 16, BC: 16, NC: 8 },
  { BR: 16, BC: 8, NC: 8 },
  { BR: 8, BC: 8, NC: 8 },
  { BR: 4, BC: 4, NC: 8 },
  { BR: 2, BC: 2, NC: 8 },
];

/** The largest candidate tiles that fit the device's workgroup memory and invocation limits. */
export function pickTiles(rt: GpuRuntime, kind: Kernel, Dh: number): AttentionTiles {
  const mem = rt.device.limits.maxComputeWorkgroupStorageSize;
  const inv = rt.device.limits.maxComputeInvocationsPerWorkgroup;
  for (const t of CANDIDATES) {
    const threads = (kind === 'dkdv' ? t.BC : t.BR) * t.NC;
    if (tileBytes(kind, t, Dh) <= mem && threads <= inv) return t;
  }
  throw new Error(`attention: head dim ${Dh} does not fit this GPU's ${mem} bytes of workgroup memory`);
}

function check(sh: AttentionShape): void {
  if (sh.Hq % sh.Hkv !== 0) throw new Error(`attention: Hq (${sh.Hq}) must be a multiple of Hkv (${sh.Hkv})`);
  if (sh.Dh < 1 || sh.Dh > 256) throw new Error(`attention: head dim ${sh.Dh} not in 1..256`);
}

function constants(t: AttentionTiles, Dh: number): Record<string, number> {
  if (Math.ceil(Dh / t.NC) > MAXDPT) throw new Error(`attention: Dh/NC must be ≤ ${MAXDPT}`);
  return { BR: t.BR, BC: t.BC, NC: t.NC, DH: Dh };
}

function params(rt: GpuRuntime, sh: AttentionShape, nTiles: number, nGroups: number, scale: number): GPUBuffer {
  return rt.uniform([sh.S, sh.Hq, sh.Hkv, nTiles, nGroups, scale], 'uuuuuf');
}

export interface AttentionOptions {
  /** default 1/√Dh */
  scale?: number;
  /** tile shapes (default: pickTiles per kernel) */
  tiles?: Partial<Record<Kernel, AttentionTiles>>;
}

/**
 * Records the forward. Returns out [T, Hq, Dh] and lse [T, Hq] (created when not given).
 */
export function attentionForward(
  rt: GpuRuntime,
  sh: AttentionShape,
  bufs: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; segments: GPUBuffer; out?: GPUBuffer; lse?: GPUBuffer },
  opts: AttentionOptions = {},
): { out: GPUBuffer; lse: GPUBuffer } {
  check(sh);
  const T = sh.B * sh.S;
  const o = bufs.out ?? rt.create(T * sh.Hq * sh.Dh * 4, 'attention.out');
  const lse = bufs.lse ?? rt.create(T * sh.Hq * 4, 'attention.lse');
  if (T === 0) return { out: o, lse };
  const scale = opts.scale ?? 1 / Math.sqrt(sh.Dh);
  const t = opts.tiles?.fwd ?? pickTiles(rt, 'fwd', sh.Dh);
  const nTiles = Math.ceil(sh.S / t.BR);
  const groups = sh.B * sh.Hq * nTiles;
  rt.dispatch(
    FILE,
    'attn_fwd',
    [params(rt, sh, nTiles, groups, scale), bufs.q, bufs.k, bufs.v, bufs.segments, o, lse],
    grid(rt, groups),
    constants(t, sh.Dh),
  );
  return { out: o, lse };
}

const scratchCache = new WeakMap<GpuRuntime, GPUBuffer>();

/** A per-runtime scratch buffer of at least `bytes` (reused across calls: our kernels run in order). */
function scratchFor(rt: GpuRuntime, bytes: number): GPUBuffer {
  let b = scratchCache.get(rt);
  if (!b || b.size < bytes) {
    if (b) rt.retire(b);
    b = rt.create(Math.max(bytes, 1 << 16), 'attention.scratch');
    scratchCache.set(rt, b);
  }
  return b;
}

/**
 * Records the backward: dq, dk, dv from q, k, v, segments, the forward's out and lse, and dout.
 * Returns the gradient buffers (created when not given). `scratch` (≥ T·Hq·8 bytes) defaults
 * to a buffer kept per runtime.
 */
export function attentionBackward(
  rt: GpuRuntime,
  sh: AttentionShape,
  bufs: {
    q: GPUBuffer;
    k: GPUBuffer;
    v: GPUBuffer;
    segments: GPUBuffer;
    /** the forward's output */
    out: GPUBuffer;
    lse: GPUBuffer;
    dout: GPUBuffer;
    dq?: GPUBuffer;
    dk?: GPUBuffer;
    dv?: GPUBuffer;
    scratch?: GPUBuffer;
  },
  opts: AttentionOptions = {},
): { dq: GPUBuffer; dk: GPUBuffer; dv: GPUBuffer } {
  check(sh);
  const T = sh.B * sh.S;
  const dq = bufs.dq ?? rt.create(T * sh.Hq * sh.Dh * 4, 'attention.dq');
  const dk = bufs.dk ?? rt.create(T * sh.Hkv * sh.Dh * 4, 'attention.dk');
  const dv = bufs.dv ?? rt.create(T * sh.Hkv * sh.Dh * 4, 'attention.dv');
  if (T === 0) return { dq, dk, dv };
  const scale = opts.scale ?? 1 / Math.sqrt(sh.Dh);
  const ld = bufs.scratch ?? scratchFor(rt, T * sh.Hq * 8);

  const n = T * sh.Hq;
  rt.dispatch(FILE, 'attn_bwd_prep', [rt.uniform([n]), bufs.out, bufs.dout, bufs.lse, ld], grid(rt, Math.ceil(n / 64)), {
    DH: sh.Dh,
  });

  const tq = opts.tiles?.dq ?? pickTiles(rt, 'dq', sh.Dh);
  const nq = Math.ceil(sh.S / tq.BR);
  const gq = sh.B * sh.Hq * nq;
  rt.dispatch(
    FILE,
    'attn_bwd_dq',
    [params(rt, sh, nq, gq, scale), bufs.q, bufs.k, bufs.v, bufs.segments, bufs.dout, ld, dq],
    grid(rt, gq),
    constants(tq, sh.Dh),
  );

  const tk = opts.tiles?.dkdv ?? pickTiles(rt, 'dkdv', sh.Dh);
  const nk = Math.ceil(sh.S / tk.BC);
  const gk = sh.B * sh.Hkv * nk;
  rt.dispatch(
    FILE,
    'attn_bwd_dkdv',
    [params(rt, sh, nk, gk, scale), bufs.q, bufs.k, bufs.v, bufs.segments, bufs.dout, ld, dk, dv],
    grid(rt, gk),
    constants(tk, sh.Dh),
  );
  return { dq, dk, dv };
}

export interface DecodeArgs {
  /** [B, Hq, Dh] */
  q: GPUBuffer;
  /** [B, maxS, Hkv, Dh] */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** valid cache length: one number, or u32 [B] per sequence (clamped to maxS) */
  len: number | GPUBuffer;
  B: number;
  maxS: number;
  Hq: number;
  Hkv: number;
  Dh: number;
  /** [B, Hq, Dh], created when absent */
  out?: GPUBuffer;
  scale?: number;
}

/** Records one decode step's attention. Returns out [B, Hq, Dh]. */
export function attentionDecode(rt: GpuRuntime, a: DecodeArgs): GPUBuffer {
  check({ B: a.B, S: a.maxS, Hq: a.Hq, Hkv: a.Hkv, Dh: a.Dh });
  const out = a.out ?? rt.create(a.B * a.Hq * a.Dh * 4, 'attention.decode');
  const groups = a.B * a.Hq;
  if (groups === 0) return out;
  const scale = a.scale ?? 1 / Math.sqrt(a.Dh);
  const dwg = Math.max(128, 2 ** Math.ceil(Math.log2(a.Dh)));
  const L = typeof a.len === 'number' ? a.len : 0;
  const p = rt.uniform([a.B, a.maxS, a.Hq, a.Hkv, L, scale], 'uuuuuf');
  const consts = { DH: a.Dh, DWG: dwg };
  if (typeof a.len === 'number') {
    rt.dispatch(FILE, 'attn_decode', [p, a.q, a.kCache, a.vCache, out], grid(rt, groups), consts);
  } else {
    rt.dispatch(FILE, 'attn_decode_lens', [p, a.q, a.kCache, a.vCache, out, a.len], grid(rt, groups), consts);
  }
  return out;
}
