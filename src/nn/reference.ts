// Float64 CPU references for the transformer layer kernels (forward and backward), used by
// the kernel tests and by a whole-model CPU reference. Same layouts as the GPU kernels:
// activations row-major, tokens flattened as T = B·S rows (token t = b·S + s).
// Plus two test helpers: `compare` (error scaled by the reference's magnitude) and
// `numericalGradient` (central finite differences of a scalar function).

import { gaussian, mulberry32 } from '../util/random.ts';

type Arr = ArrayLike<number>;

// ---- embedding ----------------------------------------------------------------------------

/** out[t, :] = table[ids[t], :]; an id ≥ V gives a zero row (as the kernel does). */
export function embeddingForward(table: Arr, ids: Arr, T: number, V: number, D: number): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t]!;
    if (id >= V) continue;
    for (let d = 0; d < D; d++) out[t * D + d] = table[id * D + d]!;
  }
  return out;
}

// ---- RMSNorm --------------------------------------------------------------------------------

/** y = w ⊙ x·rstd, rstd = 1/√(mean(x²) + eps), per row of D. */
export function rmsnormForward(
  x: Arr,
  w: Arr,
  T: number,
  D: number,
  eps: number,
): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(T * D);
  const rstd = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[t * D + d]! ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    rstd[t] = r;
    for (let d = 0; d < D; d++) y[t * D + d] = w[d]! * (x[t * D + d]! * r);
  }
  return { y, rstd };
}

/** dx = rstd·(g − x·rstd²·mean(g ⊙ x)), g = w ⊙ dy (w frozen: no dw). */
export function rmsnormBackward(dy: Arr, x: Arr, w: Arr, T: number, D: number, eps: number): Float64Array {
  const dx = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    let gx = 0;
    for (let d = 0; d < D; d++) {
      const xv = x[t * D + d]!;
      ss += xv * xv;
      gx += w[d]! * dy[t * D + d]! * xv;
    }
    const r = 1 / Math.sqrt(ss / D + eps);
    const c = (r * r * gx) / D;
    for (let d = 0; d < D; d++) dx[t * D + d] = r * (w[d]! * dy[t * D + d]! - x[t * D + d]! * c);
  }
  return dx;
}

// ---- RoPE -----------------------------------------------------------------------------------

/**
 * HF rotate_half RoPE on x [T, H, Dh] with a cos/sin table cs [maxPos, Dh/2, 2] (cos, sin) and
 * positions pos [T]: y[i] = x[i]·cos − x[i+h]·sin, y[i+h] = x[i+h]·cos + x[i]·sin (h = Dh/2).
 * `inverse` rotates by −angle (the backward: dx from dy).
 */
export function ropeApply(
  x: Arr,
  pos: Arr,
  cs: Arr,
  T: number,
  H: number,
  Dh: number,
  inverse = false,
): Float64Array {
  const half = Dh / 2;
  const y = new Float64Array(T * H * Dh);
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < T; t++) {
    const p = pos[t]!;
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * Dh;
      for (let j = 0; j < half; j++) {
        const c = cs[(p * half + j) * 2]!;
        const s = sign * cs[(p * half + j) * 2 + 1]!;
        const x1 = x[base + j]!;
        const x2 = x[base + j + half]!;
        y[base + j] = x1 * c - x2 * s;
        y[base + j + half] = x2 * c + x1 * s;
      }
    }
  }
  return y;
}

// ---- attention ------------------------------------------------------------------------------

export interface AttentionShape {
  B: number;
  S: number;
  Hq: number;
  Hkv: number;
  Dh: number;
}

/** Whether query s attends key j (both positions within one sequence of `seg`, offset base). */
function attends(seg: Arr, base: number, s: number, j: number): boolean {
  const qs = seg[base + s]!;
  return qs !== 0 && j <= s && seg[base + j] === qs;
}

/**
 * Causal grouped-query attention with segment masks. q [T, Hq, Dh], k/v [T, Hkv, Dh],
 * seg [T] (0 = padding). Returns o [T, Hq, Dh] and lse [T, Hq] (0 where a query attends nothing).
 */
export function attentionForward(
  q: Arr,
  k: Arr,
  v: Arr,
  seg: Arr,
  sh: AttentionShape,
  scale = 1 / Math.sqrt(sh.Dh),
): { o: Float64Array; lse: Float64Array } {
  const { B, S, Hq, Hkv, Dh } = sh;
  const G = Hq / Hkv;
  const T = B * S;
  const o = new Float64Array(T * Hq * Dh);
  const lse = new Float64Array(T * Hq);
  const sc = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    const base = b * S;
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / G);
      for (let s = 0; s < S; s++) {
        let m = -Infinity;
        for (let j = 0; j < S; j++) {
          sc[j] = -Infinity;
          if (!attends(seg, base, s, j)) continue;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += q[((base + s) * Hq + h) * Dh + d]! * k[((base + j) * Hkv + kh) * Dh + d]!;
          sc[j] = dot * scale;
          m = Math.max(m, sc[j]!);
        }
        if (m === -Infinity) continue;
        let l = 0;
        for (let j = 0; j < S; j++) if (sc[j] !== -Infinity) l += Math.exp(sc[j]! - m);
        lse[(base + s) * Hq + h] = m + Math.log(l);
        for (let j = 0; j < S; j++) {
          if (sc[j] === -Infinity) continue;
          const p = Math.exp(sc[j]! - m) / l;
          for (let d = 0; d < Dh; d++) o[((base + s) * Hq + h) * Dh + d] += p * v[((base + j) * Hkv + kh) * Dh + d]!;
        }
      }
    }
  }
  return { o, lse };
}

/** Gradients of attentionForward's o given dout: dq [T, Hq, Dh], dk and dv [T, Hkv, Dh]. */
export function attentionBackward(
  q: Arr,
  k: Arr,
  v: Arr,
  seg: Arr,
  dout: Arr,
  sh: AttentionShape,
  scale = 1 / Math.sqrt(sh.Dh),
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, S, Hq, Hkv, Dh } = sh;
  const G = Hq / Hkv;
  const T = B * S;
  const dq = new Float64Array(T * Hq * Dh);
  const dk = new Float64Array(T * Hkv * Dh);
  const dv = new Float64Array(T * Hkv * Dh);
  const sc = new Float64Array(S);
  const dp = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    const base = b * S;
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / G);
      for (let s = 0; s < S; s++) {
        const qo = ((base + s) * Hq + h) * Dh;
        let m = -Infinity;
        for (let j = 0; j < S; j++) {
          sc[j] = -Infinity;
          if (!attends(seg, base, s, j)) continue;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += q[qo + d]! * k[((base + j) * Hkv + kh) * Dh + d]!;
          sc[j] = dot * scale;
          m = Math.max(m, sc[j]!);
        }
        if (m === -Infinity) continue;
        let l = 0;
        for (let j = 0; j < S; j++) if (sc[j] !== -Infinity) l += Math.exp(sc[j]! - m);
        // p_j = softmax; dp_j = do·v_j; ds_j = p_j (dp_j − Σ p dp)
        let pdp = 0;
        for (let j = 0; j < S; j++) {
          if (sc[j] === -Infinity) continue;
          const ko = ((base + j) * Hkv + kh) * Dh;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += dout[qo + d]! * v[ko + d]!;
          dp[j] = dot;
          pdp += (Math.exp(sc[j]! - m) / l) * dot;
        }
        for (let j = 0; j < S; j++) {
          if (sc[j] === -Infinity) continue;
          const ko = ((base + j) * Hkv + kh) * Dh;
          const p = Math.exp(sc[j]! - m) / l;
          const ds = p * (dp[j]! - pdp);
          for (let d = 0; d < Dh; d++) {
            dv[ko + d] += p * dout[qo + d]!;
            dq[qo + d] += ds * scale * k[ko + d]!;
            dk[ko + d] += ds * scale * q[qo + d]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

/**
 * Decode attention: one query per sequence, q [B, Hq, Dh], against a KV cache
 * kc/vc [B, maxS, Hkv, Dh] whose first lens[b] positions are valid. Returns o [B, Hq, Dh].
 */
export function attentionDecode(
  q: Arr,
  kc: Arr,
  vc: Arr,
  lens: Arr,
  B: number,
  maxS: number,
  Hq: number,
  Hkv: number,
  Dh: number,
  scale = 1 / Math.sqrt(Dh),
): Float64Array {
  const G = Hq / Hkv;
  const o = new Float64Array(B * Hq * Dh);
  for (let b = 0; b < B; b++) {
    const L = Math.min(lens[b]!, maxS);
    const sc = new Float64Array(L);
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / G);
      let m = -Infinity;
      for (let j = 0; j < L; j++) {
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += q[(b * Hq + h) * Dh + d]! * kc[((b * maxS + j) * Hkv + kh) * Dh + d]!;
        sc[j] = dot * scale;
        m = Math.max(m, sc[j]!);
      }
      if (L === 0) continue;
      let l = 0;
      for (let j = 0; j < L; j++) l += Math.exp(sc[j]! - m);
      for (let j = 0; j < L; j++) {
        const p = Math.exp(sc[j]! - m) / l;
        for (let d = 0; d < Dh; d++) o[(b * Hq + h) * Dh + d] += p * vc[((b * maxS + j) * Hkv + kh) * Dh + d]!;
      }
    }
  }
  return o;
}

// ---- SwiGLU ---------------------------------------------------------------------------------

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** h = silu(g) ⊙ u. */
export function swigluForward(g: Arr, u: Arr): Float64Array {
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) h[i] = g[i]! * sigmoid(g[i]!) * u[i]!;
  return h;
}

/** dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g). */
export function swigluBackward(dh: Arr, g: Arr, u: Arr): { dg: Float64Array; du: Float64Array } {
  const dg = new Float64Array(g.length);
  const du = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = sigmoid(g[i]!);
    dg[i] = dh[i]! * u[i]! * s * (1 + g[i]! * (1 - s));
    du[i] = dh[i]! * g[i]! * s;
  }
  return { dg, du };
}

// ---- cross-entropy --------------------------------------------------------------------------

/** Whether a label counts: 0 ≤ label < V (−100, and anything else out of range, is ignored). */
export function labelCounts(label: number, V: number): boolean {
  return label >= 0 && label < V;
}

/**
 * Softmax cross-entropy over logits [T, V] with labels [T]. losses[t] = lse − logit[label]
 * (0 for ignored tokens); mean = sum / count (0 when count is 0).
 */
export function crossEntropyForward(
  logits: Arr,
  labels: Arr,
  T: number,
  V: number,
): { losses: Float64Array; sum: number; count: number; mean: number } {
  const losses = new Float64Array(T);
  let sum = 0;
  let count = 0;
  for (let t = 0; t < T; t++) {
    const lab = labels[t]!;
    if (!labelCounts(lab, V)) continue;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[t * V + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[t * V + j]! - m);
    losses[t] = m + Math.log(s) - logits[t * V + lab]!;
    sum += losses[t]!;
    count++;
  }
  return { losses, sum, count, mean: count > 0 ? sum / count : 0 };
}

/** dlogits = (softmax − onehot)·scale for counted tokens, 0 for ignored; scale defaults to 1/count. */
export function crossEntropyBackward(logits: Arr, labels: Arr, T: number, V: number, scale?: number): Float64Array {
  let count = 0;
  for (let t = 0; t < T; t++) if (labelCounts(labels[t]!, V)) count++;
  const sc = scale ?? (count > 0 ? 1 / count : 0);
  const d = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    const lab = labels[t]!;
    if (!labelCounts(lab, V)) continue;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, logits[t * V + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[t * V + j]! - m);
    for (let j = 0; j < V; j++) d[t * V + j] = (Math.exp(logits[t * V + j]! - m) / s - (j === lab ? 1 : 0)) * sc;
  }
  return d;
}

// ---- test helpers ---------------------------------------------------------------------------

export interface CompareResult {
  /** max over i of |got − want| / (|want| + scale) */
  maxErr: number;
  /** index of the worst element */
  worst: number;
  /** the magnitude scale used (RMS of `want`, or the one given) */
  scale: number;
  ok: boolean;
  message: string;
}

/**
 * Compares `got` with `want` elementwise: |got − want| ≤ rtol·(|want| + scale), where scale
 * defaults to the RMS of `want` (so tiny entries are judged against the tensor's magnitude).
 * NaN anywhere fails.
 */
export function compare(got: Arr, want: Arr, rtol = 1e-5, scale?: number): CompareResult {
  if (got.length !== want.length) {
    return { maxErr: Infinity, worst: -1, scale: 0, ok: false, message: `length ${got.length} ≠ ${want.length}` };
  }
  let ss = 0;
  for (let i = 0; i < want.length; i++) ss += want[i]! * want[i]!;
  const sc = scale ?? (want.length ? Math.sqrt(ss / want.length) : 0) + 1e-30;
  let maxErr = 0;
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / (Math.abs(want[i]!) + sc);
    if (!(e <= maxErr)) {
      maxErr = Number.isNaN(e) ? Infinity : e;
      worst = i;
      if (maxErr === Infinity) break;
    }
  }
  const ok = maxErr <= rtol;
  const message =
    worst >= 0
      ? `max scaled error ${maxErr.toExponential(3)} at [${worst}]: got ${got[worst]}, want ${want[worst]} (scale ${sc.toExponential(3)}, rtol ${rtol})`
      : 'equal';
  return { maxErr, worst, scale: sc, ok, message };
}

/**
 * Central finite differences of a scalar function f at x, for the indices given (all by
 * default): grad[i] ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h. x is restored afterwards.
 */
export function numericalGradient(
  f: (x: Float64Array) => number,
  x: Float64Array,
  indices?: number[],
  h = 1e-5,
): Float64Array {
  const g = new Float64Array(x.length);
  const idx = indices ?? Array.from(x, (_, i) => i);
  for (const i of idx) {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const fp = f(x);
    x[i] = x0 - h;
    const fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Σ a ⊙ b (the scalar objective L = ⟨out, R⟩ whose gradient w.r.t. out is R). */
export function dot(a: Arr, b: Arr): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** n standard-normal samples ·std, rounded to f32 (what the GPU gets), from a seeded PRNG. */
export function randn(n: number, seed: number, std = 1): Float32Array {
  const g = gaussian(mulberry32(seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = g() * std;
  return out;
}
