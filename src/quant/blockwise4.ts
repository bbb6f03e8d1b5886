// CPU reference of bitsandbytes blockwise 4-bit (NF4/FP4) quantization following the CUDA path
// (csrc/kernels.cu kQuantizeBlockwise / kQuantizeBlockwiseSmall / kDequantizeBlockwise); spec §1.3-§1.4.
// All arithmetic is f32 via Math.fround (a product or quotient of two f32 values computed in double and
// rounded once equals the f32 operation). bnb builds its CUDA code with --use_fast_math, so every f32 op
// there flushes subnormal inputs/results to zero (FTZ); emulated here with ftz() (opt out: ftz: false).
// Not emulated by default: 1.0f/absmax compiles to MUFU.RCP (approximate; 1 ulp off the correctly rounded
// reciprocal for ~13% of mantissas), which flips a code only when a*r lands within an ulp of a threshold
// (~1e-7 of codes); the `reciprocal` option accepts an exact MUFU model.
import {
  FP4_DEQUANT_LUT, FP4_MAGNITUDE_INDEX, FP4_THRESHOLDS, NF4_CODE, NF4_THRESHOLDS, type QuantType, isQuantType,
} from './codes.ts';

export const ALLOWED_BLOCKSIZES: readonly number[] = [32, 64, 128, 256, 512, 1024, 2048, 4096];
const FLT_MAX = 3.4028234663852886e38;
const FLT_MIN = 1.1754943508222875e-38; // smallest normal f32
const fround = Math.fround;

/** Flush an f32 subnormal to a zero of the same sign, as CUDA's .FTZ instructions do. */
export function ftz(x: number): number {
  return x > -FLT_MIN && x < FLT_MIN ? x * 0 : x;
}
/** IEEE behaviour (no flush), for callers that pass ftz: false. */
export const keepSubnormals = (x: number): number => x;

/** The f32 reciprocal used to normalize a block: correctly rounded, FTZ (CUDA: MUFU.RCP, see top). */
export function reciprocalF32(m: number): number {
  return ftz(fround(1 / ftz(m)));
}

/** Options shared by the quantizers: `ftz: false` gives IEEE subnormals instead of CUDA's flush. */
export interface F32Options {
  ftz?: boolean;
  /** Replaces reciprocalF32 (e.g. with an exact MUFU.RCP model). */
  reciprocal?: (absmax: number) => number;
}

/** The flush function and reciprocal selected by F32Options. */
export function f32Ops(o: F32Options): { flush: (x: number) => number; rcp: (m: number) => number } {
  const flush = o.ftz === false ? keepSubnormals : ftz;
  const rcp = o.reciprocal ?? (o.ftz === false ? (m: number) => fround(1 / m) : reciprocalF32);
  return { flush, rcp };
}

export function validateBlocksize(blocksize: number, what = 'blocksize'): void {
  if (!ALLOWED_BLOCKSIZES.includes(blocksize)) {
    throw new Error(`${what} ${blocksize} is not allowed: bitsandbytes 4-bit accepts ${ALLOWED_BLOCKSIZES.join(', ')}`);
  }
}

function validateType(type: unknown): asserts type is QuantType {
  if (!isQuantType(type)) throw new Error(`unknown 4-bit quant type ${JSON.stringify(type)} (expected "nf4" or "fp4")`);
}

/**
 * Per-block absmax as the CUDA kernels compute it: FMNMX.FTZ over |a| (NaN ignored, subnormals count as 0),
 * starting at -FLT_MAX. A partial last block also sees the zero padding the block loader inserts, so it
 * starts at 0. Hence an all-NaN full block gets -FLT_MAX and an all-NaN partial block 0 (both seen on CUDA).
 */
export function blockAbsmax(data: Float32Array, start: number, end: number, full: boolean, flush = ftz): number {
  let m = full ? -FLT_MAX : 0;
  for (let i = start; i < end; i++) {
    const v = Math.abs(data[i]);
    if (v > m) m = v;
  }
  return flush(m);
}

/** NF4 code of a normalized f32 x: the number of NF4_THRESHOLDS strictly below x (NaN -> 0). */
export function nf4Code(x: number): number {
  const t = NF4_THRESHOLDS;
  let c = x > t[7] ? 8 : 0;
  if (x > t[c + 3]) c += 4;
  if (x > t[c + 1]) c += 2;
  if (x > t[c]) c += 1;
  return c;
}

/** FP4 code per CUDA dQuantizeFP4: sign bit 8 for x < 0 (-0 and NaN get 0), magnitude by the literal thresholds. */
export function fp4Code(x: number): number {
  const sign = x < 0 ? 8 : 0;
  const a = Math.abs(x);
  const t = FP4_THRESHOLDS;
  let k = a > t[3] ? 4 : 0;
  if (a > t[k + 1]) k += 2;
  if (a > t[k]) k += 1;
  return FP4_MAGNITUDE_INDEX[k] | sign;
}

export interface Quantized4Bits {
  /** ceil(n/2) bytes, element 2k in the high nibble of byte k. */
  packed: Uint8Array;
  /** f32 absmax per block, ceil(n/blocksize) entries. */
  absmax: Float32Array;
}

/**
 * Quantize like bnb CUDA quantize_4bit. Per block: absmax = max|a| (f32), r = f32(1/absmax),
 * x = ftz(f32(ftz(a)*r)) (multiply by the reciprocal, never divide), code = nf4Code(x) or fp4Code(x).
 * Odd n: the last low nibble encodes a padding 0 (x = 0*r): NF4 7, FP4 0.
 * All-zero block: r = 1/0 = inf and 0*inf = NaN, every comparison is false, so every code is 0 (byte 0x00,
 * also for the padding nibble); dequantization still gives code*0 = ±0, never NaN.
 * `ftz: false` keeps subnormals (IEEE); `reciprocal` replaces reciprocalF32.
 */
export function quantize4bit(
  data: Float32Array,
  opts: { type: QuantType; blocksize?: number } & F32Options,
): Quantized4Bits {
  const type = opts.type;
  validateType(type);
  const bs = opts.blocksize ?? 64;
  validateBlocksize(bs);
  const n = data.length;
  const nb = Math.ceil(n / bs);
  const packed = new Uint8Array((n + 1) >> 1);
  const absmax = new Float32Array(nb);
  const code = type === 'nf4' ? nf4Code : fp4Code;
  const { flush, rcp } = f32Ops(opts);
  for (let b = 0; b < nb; b++) {
    const start = b * bs;
    const end = Math.min(n, start + bs);
    const m = blockAbsmax(data, start, end, end - start === bs, flush);
    absmax[b] = m;
    const r = rcp(m);
    // blocksize is even, so element pairs never straddle blocks
    for (let i = start; i < end; i += 2) {
      const hi = code(flush(fround(flush(data[i]) * r)));
      const lo = code(i + 1 < end ? flush(fround(flush(data[i + 1]) * r)) : 0 * r);
      packed[i >> 1] = (hi << 4) | lo;
    }
  }
  return { packed, absmax };
}

/**
 * Dequantize: out[i] = ftz(f32(code[nibble(i)] * absmax[i / blocksize])). `code` defaults to the tables the
 * CUDA kernels use (NF4_CODE; FP4_DEQUANT_LUT, whose index 8 is -0); pass a stored quant_map to use that.
 * A NaN result (only from a non-finite absmax) is written as CUDA's 0x7fffffff. ftz=false: IEEE subnormals.
 */
export function dequantize4bit(
  packed: Uint8Array,
  absmax: Float32Array,
  n: number,
  type: QuantType,
  blocksize: number,
  code?: Float32Array,
  ftzOn = true,
): Float32Array {
  validateType(type);
  validateBlocksize(blocksize);
  if (packed.length < (n + 1) >> 1) throw new Error(`packed has ${packed.length} bytes, need ${(n + 1) >> 1} for ${n} values`);
  const nb = Math.ceil(n / blocksize);
  if (absmax.length < nb) throw new Error(`absmax has ${absmax.length} entries, need ${nb} for ${n} values / blocksize ${blocksize}`);
  const lut = code ?? (type === 'nf4' ? NF4_CODE : FP4_DEQUANT_LUT);
  if (lut.length !== 16) throw new Error(`4-bit code table must have 16 entries, got ${lut.length}`);
  const out = new Float32Array(n);
  const flush = ftzOn ? ftz : keepSubnormals;
  const shift = Math.log2(blocksize) - 1; // byte index -> block index
  let nonFinite = false;
  const full = n >> 1;
  for (let k = 0; k < full; k++) {
    const s = absmax[k >> shift];
    const byte = packed[k];
    out[2 * k] = flush(fround(lut[byte >> 4] * s));
    out[2 * k + 1] = flush(fround(lut[byte & 15] * s));
  }
  if (n & 1) out[n - 1] = flush(fround(lut[packed[full] >> 4] * absmax[full >> shift]));
  for (let b = 0; b < nb && !nonFinite; b++) nonFinite = !Number.isFinite(absmax[b]);
  if (nonFinite) canonicalizeNaN(out);
  return out;
}

/** Write every NaN as 0x7fffffff, the NaN CUDA produces (JS engines' NaN bits vary, e.g. 0xffc00000). */
export function canonicalizeNaN(a: Float32Array): void {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== a[i]) u[i] = 0x7fffffff;
}

/** Round f32 values to bfloat16 (round-to-nearest-even, NaN kept), as torch's cast of the f32 result. */
export function roundToBf16(values: Float32Array): Float32Array {
  const out = new Float32Array(values);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      u[i] = (x | 0x400000) & 0xffff0000; // quiet NaN
    } else {
      u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
    }
  }
  return out;
}

/** Round f32 values to float16 (round-to-nearest-even, overflow to ±inf), held as f32. */
export function roundToF16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const a = Math.abs(v);
    if (!(a < 65520)) {
      out[i] = a !== a ? NaN : v > 0 ? Infinity : -Infinity; // 65520 rounds up to inf
      continue;
    }
    // ulp of the f16 value: 2^-24 below 2^-14 (subnormals), else 2^(e-10)
    let e = -14;
    if (a >= 6.103515625e-5) {
      e = Math.floor(Math.log2(a));
      if (Math.pow(2, e) > a) e--; // guard log2 rounding near powers of two
      else if (Math.pow(2, e + 1) <= a) e++;
    }
    const ulp = Math.pow(2, e - 10);
    const q = a / ulp;
    let r = Math.round(q);
    if (r - q === 0.5 && r % 2 === 1) r -= 1; // ties to even (Math.round rounds .5 up)
    out[i] = Math.sign(v) * r * ulp || v * 0; // keeps the sign of zero
  }
  return out;
}
