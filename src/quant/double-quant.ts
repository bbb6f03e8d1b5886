// bitsandbytes double quantization (compress_statistics): the f32 absmax of the 4-bit blocks minus their
// mean is quantized blockwise (256) to 8-bit codes of the signed dynamic map, bit-exact with CUDA
// kQuantizeBlockwise<General8bit> / dQuantize<0> (csrc/kernels.cu), FTZ included, except that CUDA's
// 1.0f/absmax is MUFU.RCP (see blockwise4.ts). Spec §2.1, §2.4.
import { type F32Options, blockAbsmax, f32Ops, ftz, keepSubnormals } from './blockwise4.ts';
import { dynamicMap256 } from './codes.ts';

const fround = Math.fround;
export const NESTED_BLOCKSIZE = 256;
const ALLOWED_8BIT_BLOCKSIZES = [64, 128, 256, 512, 1024, 2048, 4096];

/**
 * CUDA dQuantize<0>: binary search of a sorted 256-entry map from pivot 127 with steps 64..1, then pick
 * between the final pivot and the bracketing neighbour by the f32 midpoint (a+b)*0.5f. At an exact tie the
 * pivot is kept (it can be the upper index). If the search never went down/up, the bracket is map[255]/map[0].
 * Beyond the ends x clamps to index 0 or 255; NaN compares false everywhere and gives 0.
 */
export function dQuantize8(map: Float32Array, x: number): number {
  let pivot = 127;
  let upperPivot = 255;
  let lowerPivot = 0;
  let lower = -1;
  let upper = 1;
  let val = map[pivot];
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = map[pivot];
  }
  if (upperPivot === 255) upper = map[255];
  if (lowerPivot === 0) lower = map[0];
  if (x > val) return x > fround(fround(upper + val) * 0.5) ? upperPivot : pivot;
  return x < fround(fround(lower + val) * 0.5) ? lowerPivot : pivot;
}

/**
 * bnb quantize_blockwise (CUDA, deterministic): per block absmax, x = ftz(f32(ftz(a) * r)) with
 * r = reciprocalF32(absmax), code = dQuantize8(map, x). Defaults: dynamic map, blocksize 256.
 */
export function quantizeBlockwise8(
  data: Float32Array,
  opts: { map?: Float32Array; blocksize?: number } & F32Options = {},
): { q: Uint8Array; absmax: Float32Array } {
  const map = opts.map ?? dynamicMap256();
  const blocksize = opts.blocksize ?? NESTED_BLOCKSIZE;
  const { flush, rcp } = f32Ops(opts);
  if (!ALLOWED_8BIT_BLOCKSIZES.includes(blocksize)) {
    throw new Error(`8-bit blocksize ${blocksize} is not allowed (expected one of ${ALLOWED_8BIT_BLOCKSIZES.join(', ')})`);
  }
  if (map.length !== 256) throw new Error(`8-bit code map must have 256 entries, got ${map.length}`);
  const n = data.length;
  const nb = Math.ceil(n / blocksize);
  const q = new Uint8Array(n);
  const absmax = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    const start = b * blocksize;
    const end = Math.min(n, start + blocksize);
    const m = blockAbsmax(data, start, end, end - start === blocksize, flush);
    absmax[b] = m;
    const r = rcp(m);
    for (let i = start; i < end; i++) q[i] = dQuantize8(map, flush(fround(flush(data[i]) * r)));
  }
  return { q, absmax };
}

/**
 * Mean of the absmax values as an f32: summed in float64, divided, rounded once. torch's f32 mean
 * (absmax.mean()) may differ by an ulp; only the stored nested_offset matters for dequantization,
 * and doubleQuantize accepts an explicit offset to reproduce a given checkpoint. Empty input -> 0.
 */
export function meanF32(values: Float32Array): number {
  if (values.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return fround(s / values.length);
}

export interface DoubleQuantized {
  qabsmax: Uint8Array;
  nestedAbsmax: Float32Array;
  offset: number;
  nestedBlocksize: 256;
}

/**
 * bnb quantize_4bit(compress_statistics=True): offset = mean(absmax); d_i = f32(absmax_i - offset);
 * (qabsmax, nestedAbsmax) = quantizeBlockwise8(d, dynamic map, 256).
 * A nested block whose values all equal offset has nestedAbsmax 0: CUDA computes 1/0 = inf, 0*inf = NaN,
 * dQuantize8(NaN) = 0, and rebuildAbsmax gives f32(map[0]*0) + offset = -0 + offset = offset: exact, no NaN.
 */
export function doubleQuantize(
  absmax: Float32Array,
  opts: { offset?: number; map?: Float32Array } & F32Options = {},
): DoubleQuantized {
  const offset = fround(opts.offset ?? meanF32(absmax));
  const d = new Float32Array(absmax.length);
  for (let i = 0; i < absmax.length; i++) d[i] = absmax[i] - offset;
  const { q, absmax: nestedAbsmax } = quantizeBlockwise8(d, { ...opts, blocksize: NESTED_BLOCKSIZE });
  return { qabsmax: q, nestedAbsmax, offset, nestedBlocksize: NESTED_BLOCKSIZE };
}

/**
 * absmax[b] = f32(ftz(f32(map[q[b]] * nested[b / nestedBlocksize])) + f32(offset)), as dequantize_4bit does it
 * (bnb's 8-bit dequant kernel multiplies with FTZ; the offset add is a plain torch op).
 */
export function rebuildAbsmax(
  qabsmax: Uint8Array,
  nestedAbsmax: Float32Array,
  offset: number,
  map: Float32Array,
  nestedBlocksize = NESTED_BLOCKSIZE,
  ftzOn = true,
): Float32Array {
  const nb = qabsmax.length;
  const need = Math.ceil(nb / nestedBlocksize);
  if (nestedAbsmax.length !== need) {
    throw new Error(`nested_absmax has ${nestedAbsmax.length} entries, expected ${need} (${nb} absmax codes / ${nestedBlocksize})`);
  }
  if (map.length !== 256) throw new Error(`nested_quant_map must have 256 entries, got ${map.length}`);
  const off = fround(offset);
  const flush = ftzOn ? ftz : keepSubnormals;
  const out = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    out[b] = flush(fround(map[qabsmax[b]] * nestedAbsmax[Math.floor(b / nestedBlocksize)])) + off;
  }
  return out;
}
