// RoPE cos/sin tables, computed on the host in f32 arithmetic the way Hugging Face
// transformers does (modeling_rope_utils.py + LlamaRotaryEmbedding.forward), so our angles
// match HF's f32 angles, not the exact ones (at position 10⁵ they differ by ~10⁻³ rad, and
// we want HF's).
//
// Table layout (what shaders/rope.wgsl reads): f32 [maxPos, Dh/2, 2] = (cos, sin) of the angle
// pos·inv_freq[j] for pos < maxPos, j < Dh/2 (HF's emb = cat(freqs, freqs): dims j and j + Dh/2
// share angle j). Build it for the longest sequence you will run, not max_position_embeddings
// (131072 × 32 × 2 floats would be 32 MiB for Llama 3.2).
//
// Checked against torch 2.11 (CPU) running those lines (rope.test.ts): inv_freq for Llama 3.2
// (llama3 scaling) and SmolLM2 bit for bit, cos/sin at position 100000 within 1 ulp.
// How each torch f32 step is reproduced (Math.fround = one rounding to f32):
//   default  inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
//              e   = fround(2j / dim)                     (f32 division of exact small ints)
//              pw  = fround(Math.pow(fround(base), e))    (torch: f32 pow with the base cast to f32.
//                                                          We round the f64 result, i.e. the correctly
//                                                          rounded f32 power; torch's CPU powf is within
//                                                          1 ulp of it: for θ = 1e6, head_dim 128 it is
//                                                          1 ulp off at j = 37, equal elsewhere)
//              inv = fround(1 / pw)
//   linear   inv_freq /= factor  → fround(inv / fround(factor))  (true division on CPU)
//   llama3   (_compute_llama3_parameters; `scalar / tensor` in torch is tensor.reciprocal() * scalar)
//              wavelen  = fround(fround(1 / inv) · fround(2π))
//              where(wavelen > orig/low_freq_factor, fround(inv / factor), inv)
//              smooth   = fround(fround(fround(fround(1 / wavelen) · orig) − low) / fround(high − low))
//              smoothed = fround(fround(fround(fround(1 − smooth) · inv) / factor) + fround(smooth · inv))
//              medium (not wavelen < orig/high and not wavelen > orig/low) takes `smoothed`
//   angles   freqs = inv_freq @ position_ids (f32, inner dim 1) → fround(pos · inv)
//            cos/sin in f32 → fround(Math.cos(angle)) (torch's f32 cos/sin are within ~1 ulp of this)
// attention_scaling is 1.0 for default, linear and llama3 (cos/sin are not rescaled).
// 'dynamic', 'yarn', 'longrope' and other rope types are rejected.

export interface RopeScaling {
  rope_type?: string;
  /** legacy spelling of rope_type */
  type?: string;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

const f = Math.fround;

/** The rope type of a config's `rope_scaling` (null / missing → 'default'). */
export function ropeType(scaling?: RopeScaling | null): string {
  return scaling?.rope_type ?? scaling?.type ?? 'default';
}

/** inv_freq [Dh/2] in f32, as HF computes it for rope_theta `theta` and `rope_scaling`. */
export function ropeInvFreq(headDim: number, theta: number, scaling?: RopeScaling | null): Float32Array {
  if (headDim % 2 !== 0 || headDim <= 0) throw new Error(`RoPE head_dim must be even and positive, got ${headDim}`);
  const half = headDim / 2;
  const inv = new Float32Array(half);
  const base = f(theta);
  for (let j = 0; j < half; j++) {
    const e = f((2 * j) / headDim);
    inv[j] = f(1 / f(Math.pow(base, e)));
  }
  const type = ropeType(scaling);
  if (type === 'default') return inv;
  const factor = scaling?.factor;
  if (typeof factor !== 'number' || !(factor > 0)) throw new Error(`rope_scaling "${type}" needs a positive factor`);
  const fac = f(factor);
  if (type === 'linear') {
    for (let j = 0; j < half; j++) inv[j] = f(inv[j]! / fac);
    return inv;
  }
  if (type === 'llama3') {
    const low = scaling?.low_freq_factor;
    const high = scaling?.high_freq_factor;
    const orig = scaling?.original_max_position_embeddings;
    if (typeof low !== 'number' || typeof high !== 'number' || typeof orig !== 'number') {
      throw new Error('rope_scaling "llama3" needs low_freq_factor, high_freq_factor and original_max_position_embeddings');
    }
    // Python floats (f64), compared against / combined with f32 tensors after a cast to f32.
    const lowWavelen = f(orig / low);
    const highWavelen = f(orig / high);
    const twoPi = f(2 * Math.PI);
    const fOrig = f(orig);
    const fLow = f(low);
    const span = f(high - low);
    for (let j = 0; j < half; j++) {
      const x = inv[j]!;
      const wavelen = f(f(1 / x) * twoPi);
      const llama = wavelen > lowWavelen ? f(x / fac) : x;
      const smooth = f(f(f(f(1 / wavelen) * fOrig) - fLow) / span);
      const smoothed = f(f(f(f(1 - smooth) * llama) / fac) + f(smooth * llama));
      const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      inv[j] = medium ? smoothed : llama;
    }
    return inv;
  }
  throw new Error(`rope_scaling type "${type}" is not supported (default, linear and llama3 are)`);
}

/**
 * The (cos, sin) table f32 [maxPos, Dh/2, 2] for positions 0..maxPos−1 (see the header for
 * the arithmetic). Upload it once per model and pass it to the rope kernels.
 */
export function ropeTable(
  headDim: number,
  theta: number,
  maxPos: number,
  scaling?: RopeScaling | null,
): Float32Array {
  const inv = ropeInvFreq(headDim, theta, scaling);
  const half = headDim / 2;
  const table = new Float32Array(maxPos * half * 2);
  for (let pos = 0; pos < maxPos; pos++) {
    const fp = f(pos);
    for (let j = 0; j < half; j++) {
      const angle = f(fp * inv[j]!);
      table[(pos * half + j) * 2] = Math.cos(angle);
      table[(pos * half + j) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}
