// Golden tests of the code tables: spec hex bits, checkpoint hashes, CUDA literal rounding.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  FP4_CODE, FP4_DEQUANT_LUT, FP4_THRESHOLD_LITERALS, FP4_THRESHOLDS, NF4_CODE, NF4_MIDPOINTS, NF4_THRESHOLD_LITERALS,
  NF4_THRESHOLDS, codeTable, dynamicMap256,
} from './codes.ts';

const bitsOf = (a: Float32Array) => [...new Uint32Array(new Float32Array(a).buffer)];
const sha = (a: Float32Array) => createHash('sha256').update(new Uint8Array(new Float32Array(a).buffer)).digest('hex');
const f32FromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];

// exact rational arithmetic: x = num / den
type Rat = { num: bigint; den: bigint };
function ratOfDouble(x: number): Rat {
  let den = 1n;
  while (!Number.isInteger(x)) {
    x *= 2;
    den *= 2n;
  }
  return { num: BigInt(x), den };
}
function ratOfDecimal(s: string): Rat {
  const neg = s.startsWith('-');
  const [ip, fp = ''] = s.replace('-', '').split('.');
  const num = BigInt(ip + fp) * (neg ? -1n : 1n);
  return { num, den: 10n ** BigInt(fp.length) };
}
const absDiff = (a: Rat, b: Rat): Rat => {
  const n = a.num * b.den - b.num * a.den;
  return { num: n < 0n ? -n : n, den: a.den * b.den };
};
const less = (a: Rat, b: Rat) => a.num * b.den < b.num * a.den;
/** The f32 nearest to a decimal string, rounded once (what nvcc does with a float literal). */
function nearestF32Bits(s: string): number {
  const q = ratOfDecimal(s);
  const c = new Uint32Array(new Float32Array([Number(s)]).buffer)[0];
  let best = c;
  for (const b of [c - 1, c + 1]) {
    if (less(absDiff(ratOfDouble(f32FromBits(b)), q), absDiff(ratOfDouble(f32FromBits(best)), q))) best = b;
  }
  return best;
}

describe('NF4 table', () => {
  it('matches the spec f32 bits exactly', () => {
    expect(bitsOf(NF4_CODE)).toEqual([
      0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
      0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
    ]);
  });
  it('has the checkpoint quant_map sha256 8501941d…e60c06a', () => {
    const h = sha(NF4_CODE);
    expect(h.startsWith('8501941d')).toBe(true);
    expect(h.endsWith('e60c06a')).toBe(true);
    expect(sha(codeTable('nf4'))).toBe(h);
  });
  it('midpoints match the spec hex and are the exact f32 midpoints (ties to even)', () => {
    expect(bitsOf(NF4_MIDPOINTS)).toEqual([
      0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
      0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da,
    ]);
    for (let i = 0; i < 15; i++) expect(NF4_MIDPOINTS[i]).toBe(Math.fround((NF4_CODE[i] + NF4_CODE[i + 1]) / 2));
  });
  it('CUDA thresholds are the kernels.cu literals rounded once to f32: 1 ulp off the midpoint at 0, 8, 12, 14', () => {
    NF4_THRESHOLD_LITERALS.forEach((s, i) => expect(bitsOf(NF4_THRESHOLDS)[i]).toBe(nearestF32Bits(s)));
    const diff = bitsOf(NF4_THRESHOLDS).map((b, i) => b - bitsOf(NF4_MIDPOINTS)[i]);
    expect(diff.flatMap((d, i) => (d ? [i] : []))).toEqual([0, 8, 12, 14]);
    diff.forEach((d) => expect(Math.abs(d)).toBeLessThanOrEqual(1));
    // the double-rounded literal (JS/numpy parse) is the even midpoint instead
    expect(Math.fround(Number(NF4_THRESHOLD_LITERALS[8]))).toBe(NF4_MIDPOINTS[8]);
  });
});

describe('FP4 table', () => {
  it('quant_map as bnb stores it: raw/12 in f32, index 8 is +0', () => {
    const raw = [0, 0.0625, 8, 12, 4, 6, 2, 3];
    for (let i = 0; i < 8; i++) {
      expect(FP4_CODE[i]).toBe(Math.fround(raw[i] / 12));
      expect(FP4_CODE[i + 8]).toBe(i === 0 ? 0 : -Math.fround(raw[i] / 12));
    }
    expect(Object.is(FP4_CODE[8], 0)).toBe(true);
    expect(bitsOf(FP4_CODE).slice(0, 8)).toEqual([0, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000]);
  });
  it('CUDA decode LUT equals the kernels.cu literals and gives -0 at index 8', () => {
    const lut = [0.0, 0.005208333333, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25].map(Math.fround);
    for (let i = 0; i < 16; i++) expect(Object.is(FP4_DEQUANT_LUT[i], lut[i & 7] * (i & 8 ? -1 : 1))).toBe(true);
    expect(Object.is(FP4_DEQUANT_LUT[8], -0)).toBe(true);
  });
  it('thresholds are the CUDA literals rounded once to f32', () => {
    expect(bitsOf(FP4_THRESHOLDS)).toEqual(FP4_THRESHOLD_LITERALS.map(nearestF32Bits));
    expect(bitsOf(FP4_THRESHOLDS)).toEqual([0x3b2aaab9, 0x3db00000, 0x3e555555, 0x3e955555, 0x3ed55556, 0x3f155550, 0x3f555555]);
  });
});

describe('dynamic map (create_dynamic_map signed, 8 bit)', () => {
  const map = dynamicMap256();
  it('has the checkpoint nested_quant_map sha256', () => {
    expect(sha(map)).toBe('e732639a65f497b4ad684bb166a4467708255edd5207757de8b8f0c7e1fda89c');
  });
  it('is sorted, asymmetric, with the spec anchors', () => {
    for (let i = 1; i < 256; i++) expect(map[i]).toBeGreaterThan(map[i - 1]);
    expect(bitsOf(map)[0]).toBe(0xbf7e3333);
    expect(map[126]).toBeCloseTo(-5.5e-7, 12);
    expect(map[127]).toBe(0);
    expect(map[128]).toBe(-map[126]);
    expect(map[254]).toBe(Math.fround(0.99296874));
    expect(map[255]).toBe(1);
  });
  it('returns a fresh copy', () => {
    const a = dynamicMap256();
    a[0] = 5;
    expect(dynamicMap256()[0]).toBe(map[0]);
  });
  const file = fileURLToPath(new URL('../../../shared/specs/bnb-dynamic-map-256.txt', import.meta.url));
  it.runIf(existsSync(file))('equals the table in shared/specs/bnb-dynamic-map-256.txt', () => {
    const rows = readFileSync(file, 'utf8').split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split('\t'));
    expect(rows.length).toBe(256);
    rows.forEach(([idx, hex]) => expect(bitsOf(map)[Number(idx)]).toBe(parseInt(hex, 16)));
  });
  if (!existsSync(file)) console.log(`skipping the dynamic map file comparison: ${file} is absent`);
});
