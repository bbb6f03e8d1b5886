// Code tables of bitsandbytes 4-bit (NF4, FP4) and 8-bit ("dynamic") quantization, as exact f32 values.
// Facts: shared/specs/qlora-formats.md §1.1-§1.3 and §2.2 (bnb functional.py get_4bit_type,
// create_dynamic_map; csrc/kernels.cu dQuantizeNF4 / dQuantizeFP4 / fp4_dequantization_lut). Thresholds are the
// values the compiled CUDA kernels compare with (checked in the SASS and against real bnb output).

export type QuantType = 'nf4' | 'fp4';

export const QUANT_TYPES: readonly QuantType[] = ['nf4', 'fp4'];

export function isQuantType(x: unknown): x is QuantType {
  return x === 'nf4' || x === 'fp4';
}

/** NF4 code table, index order (the table is sorted). Stored as quant_map for nf4. */
export const NF4_CODE = new Float32Array([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023,
  1.0,
]);

const fromBits = (bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);

/**
 * The 15 exact f32 midpoints of adjacent NF4 codes (spec §1.3 table; what the torch default/CPU backend
 * bucketizes with).
 */
export const NF4_MIDPOINTS = fromBits([
  0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
  0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
]);

/**
 * The 15 thresholds CUDA dQuantizeNF4 actually compares with: its decimal literals (e.g.
 * -0.8480964004993439f) rounded ONCE to f32 by nvcc, as seen in the compiled SASS. Each midpoint is an exact
 * f32 tie and its 16-digit decimal lies slightly to one side, so 4 of them (indices 0, 8, 12, 14) are 1 ulp
 * away from NF4_MIDPOINTS (JS/numpy round decimal -> double -> f32 and land on the even neighbour instead).
 */
export const NF4_THRESHOLDS = fromBits([
  0xbf591cd9, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
  0x3df64863, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d03, 0x3f248daf, 0x3f5c89d9,
]);

/** The decimal literals of dQuantizeNF4 in csrc/kernels.cu, ascending (for reference and tests). */
export const NF4_THRESHOLD_LITERALS: readonly string[] = [
  '-0.8480964004993439', '-0.6106329262256622', '-0.4599952697753906', '-0.33967943489551544',
  '-0.23460740596055984', '-0.13791173323988914', '-0.045525018125772476', '0.03979014977812767',
  '0.1202552504837513', '0.2035212516784668', '0.2920137718319893', '0.3893125355243683',
  '0.5016634166240692', '0.6427869200706482', '0.8614784181118011',
];

const FP4_RAW = [0, 0.0625, 8, 12, 4, 6, 2, 3];

/**
 * FP4 code table exactly as bnb stores it in quant_map: get_4bit_type("fp4") divides
 * [0, .0625, 8, 12, 4, 6, 2, 3, -0, -.0625, ...] by 12 in f32. The "-0" there is a Python int,
 * so index 8 is +0.0 (bits 0x00000000), unlike the CUDA decoder which yields -0 (see FP4_DEQUANT_LUT).
 */
export const FP4_CODE = new Float32Array(16);
for (let i = 0; i < 8; i++) {
  FP4_CODE[i] = FP4_RAW[i] / 12;
  FP4_CODE[i + 8] = i === 0 ? 0 : -FP4_RAW[i] / 12;
}

/** What CUDA dDequantizeFP4Tree returns per index: lut[idx & 7] * (1 - 2*sign); index 8 is -0. */
export const FP4_DEQUANT_LUT = new Float32Array(16);
for (let i = 0; i < 16; i++) FP4_DEQUANT_LUT[i] = FP4_CODE[i & 7] * (i & 8 ? -1 : 1);

/**
 * The 7 literal thresholds of CUDA dQuantizeFP4, ascending, as f32. Five of them are 1-5 ulp off the
 * exact midpoints; bit-exact CUDA parity requires these literals.
 */
export const FP4_THRESHOLDS = fromBits([
  0x3b2aaab9, 0x3db00000, 0x3e555555, 0x3e955555, 0x3ed55556, 0x3f155550, 0x3f555555,
]);

/** The decimal literals of dQuantizeFP4, ascending: 0.00260417f ... 0.8333333f. */
export const FP4_THRESHOLD_LITERALS: readonly string[] = [
  '0.00260417', '0.0859375', '0.20833333', '0.29166667', '0.4166667', '0.583333', '0.8333333',
];

/** Magnitude bits chosen by dQuantizeFP4 for |x| above k of FP4_THRESHOLDS (k = 0..7). */
export const FP4_MAGNITUDE_INDEX = new Uint8Array([0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011]);

/** Code table for a quant type, as bnb stores it in `weight.quant_map` (a fresh copy). */
export function codeTable(type: QuantType): Float32Array {
  return new Float32Array(type === 'nf4' ? NF4_CODE : FP4_CODE);
}

let dynamicCache: Float32Array | null = null;

/**
 * bnb create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), bit-exact (§2.2).
 * torch.linspace(0.1, 1, steps) in f32: step = f32(f32(1 - f32(0.1)) / (steps-1)); the first half is
 * start + step*i, the second half end - step*(steps-1-i), each rounded once to f32.
 * Returns a fresh copy each call.
 */
export function dynamicMap256(): Float32Array {
  if (!dynamicCache) {
    const f = Math.fround;
    const scales = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1]; // Python 10 ** (i - 6), then f32
    const vals: number[] = [];
    for (let i = 0; i < 7; i++) {
      const steps = (1 << i) + 1;
      const start = f(0.1);
      const step = f(f(1 - start) / (steps - 1));
      const half = Math.floor(steps / 2);
      const b: number[] = [];
      for (let k = 0; k < steps; k++) {
        b.push(k < half ? f(start + step * k) : f(1 - step * (steps - 1 - k)));
      }
      const s = f(scales[i]);
      for (let k = 0; k + 1 < steps; k++) {
        const mean = f((b[k] + b[k + 1]) / 2);
        const v = f(s * mean);
        vals.push(v, -v);
      }
    }
    vals.push(0, 1);
    dynamicCache = new Float32Array(vals).sort();
  }
  return new Float32Array(dynamicCache);
}
