// Hand-computed and property tests of blockwise 4-bit quantization (CUDA rules).
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_BLOCKSIZES, dequantize4bit, fp4Code, ftz, nf4Code, quantize4bit, roundToBf16, roundToF16,
} from './blockwise4.ts';
import { FP4_CODE, FP4_THRESHOLDS, NF4_CODE, NF4_MIDPOINTS, NF4_THRESHOLDS, type QuantType } from './codes.ts';

const up = (x: number) => {
  const a = new Float32Array([x]);
  const u = new Int32Array(a.buffer);
  if (x === 0) return 1.401298464324817e-45;
  u[0] += x > 0 ? 1 : -1;
  return a[0];
};
const down = (x: number) => -up(-x);

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}
function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const r = lcg(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < 12; k++) s += r();
    out[i] = (s - 6) * scale;
  }
  return out;
}
const maxHalfGap = (code: Float32Array) => {
  const s = [...code].sort((a, b) => a - b);
  let g = 0;
  for (let i = 1; i < s.length; i++) g = Math.max(g, s[i] - s[i - 1]);
  return g / 2;
};

describe('code selection', () => {
  it('NF4: x exactly at a CUDA threshold goes to the lower code, one ulp above to the upper', () => {
    NF4_THRESHOLDS.forEach((t, i) => {
      expect(nf4Code(t)).toBe(i);
      expect(nf4Code(up(t))).toBe(i + 1);
      expect(nf4Code(down(t))).toBe(i);
    });
    NF4_CODE.forEach((c, i) => expect(nf4Code(c)).toBe(i));
    expect(nf4Code(NaN)).toBe(0);
  });
  it('NF4: at the 4 exact midpoints that CUDA rounds differently, CUDA picks the upper code at 0, 12, 14 and the lower at 8', () => {
    expect([0, 8, 12, 14].map((i) => nf4Code(NF4_MIDPOINTS[i]) - i)).toEqual([1, 0, 1, 1]);
    expect(nf4Code(up(NF4_MIDPOINTS[8]))).toBe(8);
  });
  it('FP4: literal thresholds, ties go down, sign bit only for x < 0', () => {
    const mags = [0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011];
    FP4_THRESHOLDS.forEach((t, k) => {
      expect(fp4Code(t)).toBe(mags[k]);
      expect(fp4Code(up(t))).toBe(mags[k + 1]);
      expect(fp4Code(-t)).toBe(mags[k] | 8);
    });
    expect(fp4Code(-0)).toBe(0);
    expect(fp4Code(NaN)).toBe(0);
    expect(fp4Code(-1e-30)).toBe(8);
    for (let i = 0; i < 16; i++) if (i !== 8) expect(fp4Code(FP4_CODE[i])).toBe(i);
  });
});

describe('quantize4bit', () => {
  it('n = 1: absmax, code and the padding nibble (NF4 7, FP4 0)', () => {
    const nf = quantize4bit(new Float32Array([0.5]), { type: 'nf4' });
    expect([...nf.packed]).toEqual([0xf7]);
    expect([...nf.absmax]).toEqual([0.5]);
    const fp = quantize4bit(new Float32Array([-0.5]), { type: 'fp4' });
    expect([...fp.packed]).toEqual([0xb0]);
  });
  it('hand-computed block: high nibble first, x = a * f32(1/absmax)', () => {
    const a = new Float32Array([2, -2, 1, 0, -0.5, 0.15, 1.3]);
    const q = quantize4bit(a, { type: 'nf4', blocksize: 32 });
    // x = 1, -1, 0.5, 0, -0.25, 0.075, 0.65 -> 15, 0, 12, 7, 4, 8, 14; padding 7
    expect([...q.packed]).toEqual([0xf0, 0xc7, 0x48, 0xe7]);
    const f = quantize4bit(a, { type: 'fp4', blocksize: 32 });
    // FP4: 1 -> 3, -1 -> 11, .5 -> 5, 0 -> 0, -.25 -> 15, .075 -> 1, .65 -> 2; padding 0
    expect([...f.packed]).toEqual([0x3b, 0x50, 0xf1, 0x20]);
  });
  it('all-zero blocks encode as 0x00 (CUDA 0*inf = NaN) and decode to ±0, never NaN', () => {
    for (const type of ['nf4', 'fp4'] as QuantType[]) {
      const a = new Float32Array(64 * 2 + 7);
      a.fill(0.3, 64, 128);
      const q = quantize4bit(a, { type, blocksize: 64 });
      expect(q.packed.slice(0, 32).every((b) => b === 0)).toBe(true);
      expect(q.packed.slice(64).every((b) => b === 0)).toBe(true); // last partial block incl. padding nibble
      expect([...q.absmax]).toEqual([0, Math.fround(0.3), 0]);
      const d = dequantize4bit(q.packed, q.absmax, a.length, type, 64);
      d.forEach((v, i) => expect(v === 0 || i >= 64 && i < 128).toBe(true));
      expect(d.some(Number.isNaN)).toBe(false);
    }
  });
  it('subnormals are flushed to zero like the --use_fast_math CUDA build', () => {
    expect(ftz(1e-45)).toBe(0);
    expect(Object.is(ftz(-1e-45), -0)).toBe(true);
    expect(ftz(Math.fround(1.2e-38))).toBe(Math.fround(1.2e-38));
    const q = quantize4bit(new Float32Array([1, -1e-45, 1e-40, -1e-40]), { type: 'fp4', blocksize: 32 });
    expect([...q.packed]).toEqual([0x30, 0x00]); // FP4 would give 8 for a negative non-flushed x
    const z = quantize4bit(new Float32Array([1e-40, -1e-39]), { type: 'nf4', blocksize: 32 });
    expect([...z.absmax]).toEqual([0]);
    expect([...z.packed]).toEqual([0x00]);
  });
  it.each(ALLOWED_BLOCKSIZES)('blocksize %i with awkward n: sizes and error bound', (bs) => {
    for (const n of [1, 63, 65, 1000, bs + 1]) {
      for (const type of ['nf4', 'fp4'] as QuantType[]) {
        const a = gaussian(n, n * 7 + bs, 0.05);
        const q = quantize4bit(a, { type, blocksize: bs });
        expect(q.packed.length).toBe(Math.ceil(n / 2));
        expect(q.absmax.length).toBe(Math.ceil(n / bs));
        const d = dequantize4bit(q.packed, q.absmax, n, type, bs);
        const h = maxHalfGap(type === 'nf4' ? NF4_CODE : FP4_CODE);
        for (let i = 0; i < n; i++) {
          const m = q.absmax[Math.floor(i / bs)];
          expect(q.absmax[Math.floor(i / bs)]).toBeGreaterThanOrEqual(Math.abs(a[i]));
          expect(Math.abs(d[i] - a[i])).toBeLessThanOrEqual(h * m * (1 + 1e-6) + 1e-12);
        }
      }
    }
  });
  it('n = 1000003 (odd, many blocks) and 10M values quickly', () => {
    const a = gaussian(1000003, 5, 0.02);
    const q = quantize4bit(a, { type: 'nf4' });
    expect(q.packed.length).toBe(500002);
    expect(q.absmax.length).toBe(15626);
    expect(q.packed[500001] & 15).toBe(7);
    const big = new Float32Array(10_000_000);
    big.set(a);
    big.set(a, 5_000_000);
    const t = performance.now();
    quantize4bit(big, { type: 'nf4' });
    expect(performance.now() - t).toBeLessThan(4000);
  });
  it('rejects blocksizes and types bnb does not allow, with a clear message', () => {
    for (const bs of [16, 48, 100, 8192, 0]) {
      expect(() => quantize4bit(new Float32Array(4), { type: 'nf4', blocksize: bs })).toThrow(/blocksize \d+ is not allowed.*32, 64, 128/);
    }
    expect(() => quantize4bit(new Float32Array(4), { type: 'int4' as QuantType })).toThrow(/unknown 4-bit quant type "int4"/);
    expect(() => dequantize4bit(new Uint8Array(1), new Float32Array(1), 4, 'nf4', 64)).toThrow(/packed has 1 bytes, need 2/);
    expect(() => dequantize4bit(new Uint8Array(64), new Float32Array(1), 128, 'nf4', 64)).toThrow(/absmax has 1 entries, need 2/);
  });
});

describe('dequantize4bit', () => {
  it('out = f32(code[nibble] * absmax[block]); a custom code table is honoured', () => {
    const packed = new Uint8Array([0x0f, 0x78]);
    const absmax = new Float32Array([0.3]);
    const d = dequantize4bit(packed, absmax, 3, 'nf4', 32);
    expect([...d]).toEqual([Math.fround(-1 * Math.fround(0.3)), Math.fround(0.3), 0]);
    const fp = dequantize4bit(new Uint8Array([0x80]), absmax, 1, 'fp4', 32);
    expect(Object.is(fp[0], -0)).toBe(true); // CUDA LUT: index 8 is -0
    const own = dequantize4bit(new Uint8Array([0x80]), absmax, 1, 'fp4', 32, FP4_CODE);
    expect(Object.is(own[0], 0)).toBe(true); // stored quant_map: index 8 is +0
  });
});

describe('dtype rounding', () => {
  it('bf16 round-to-nearest-even', () => {
    const r = roundToBf16(new Float32Array([1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 3.4e38, Infinity]));
    expect([...r]).toEqual([0.333984375, 1, 1 + 2 ** -6, -2.5, Infinity, Infinity]);
  });
  it('f16 round-to-nearest-even, subnormals and overflow', () => {
    const r = roundToF16(new Float32Array([1 / 3, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 2 ** -24, 2 ** -26, -0, 0.1]));
    expect([...r]).toEqual([0.333251953125, 1, 1 + 2 ** -9, 65504, 65504, Infinity, 2 ** -24, 0, -0, 0.0999755859375]);
    expect(Object.is(r[8], -0)).toBe(true);
  });
});
