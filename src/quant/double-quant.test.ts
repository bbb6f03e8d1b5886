// Tests of the 8-bit dQuantize<0> search, double quantization and the absmax rebuild.
import { describe, expect, it } from 'vitest';
import { dynamicMap256 } from './codes.ts';
import { dQuantize8, doubleQuantize, meanF32, quantizeBlockwise8, rebuildAbsmax } from './double-quant.ts';

const map = dynamicMap256();
const f = Math.fround;
const up = (x: number) => {
  const a = new Float32Array([x]);
  const u = new Int32Array(a.buffer);
  if (x === 0) return 1.401298464324817e-45;
  u[0] += x > 0 ? 1 : -1;
  return a[0];
};
const nearest = (x: number) => {
  let best = 0;
  for (let k = 1; k < 256; k++) if (Math.abs(map[k] - x) < Math.abs(map[best] - x)) best = k;
  return best;
};
function uniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * (hi - lo);
  return out;
}

describe('dQuantize8 (CUDA binary search)', () => {
  it('handles the ends of the asymmetric map and NaN', () => {
    expect(dQuantize8(map, 1)).toBe(255);
    expect(dQuantize8(map, 2)).toBe(255);
    expect(dQuantize8(map, 0.9965)).toBe(255);
    expect(dQuantize8(map, 0.9964)).toBe(254);
    expect(dQuantize8(map, -1)).toBe(0);
    expect(dQuantize8(map, -2)).toBe(0);
    expect(dQuantize8(map, map[0])).toBe(0);
    expect(dQuantize8(map, 0)).toBe(127);
    expect(dQuantize8(map, -0)).toBe(127);
    expect(dQuantize8(map, NaN)).toBe(0);
    for (let k = 0; k < 256; k++) expect(dQuantize8(map, map[k])).toBe(k);
  });
  it('is nearest-neighbour off the midpoints; at an exact f32 midpoint CUDA keeps the search pivot', () => {
    let upper = 0;
    for (let k = 0; k < 255; k++) {
      const mid = f(f(map[k] + map[k + 1]) * 0.5);
      expect(dQuantize8(map, up(mid))).toBe(nearest(up(mid)));
      expect(dQuantize8(map, -up(-mid))).toBe(nearest(-up(-mid)));
      const t = dQuantize8(map, mid);
      expect([k, k + 1]).toContain(t);
      if (t === k + 1) upper++;
    }
    expect(upper).toBeGreaterThan(0); // unlike torch bucketize, some ties go up
    expect(upper).toBeLessThan(255);
  });
});

describe('quantizeBlockwise8', () => {
  it('rejects a bad blocksize or map', () => {
    expect(() => quantizeBlockwise8(new Float32Array(3), { blocksize: 32 })).toThrow(/8-bit blocksize 32 is not allowed/);
    expect(() => quantizeBlockwise8(new Float32Array(3), { map: new Float32Array(16) })).toThrow(/256 entries, got 16/);
  });
  it('an all-zero block gives code 0 (0*inf = NaN) and absmax 0', () => {
    const q = quantizeBlockwise8(new Float32Array(300));
    expect(q.q.every((v) => v === 0)).toBe(true);
    expect([...q.absmax]).toEqual([0, 0]);
  });
});

describe('doubleQuantize / rebuildAbsmax', () => {
  it('offset is the f32 mean (f64 sum); shapes follow bnb', () => {
    const absmax = uniform(1000, 3, 0.01, 0.1);
    const dq = doubleQuantize(absmax);
    let s = 0;
    for (const v of absmax) s += v;
    expect(dq.offset).toBe(f(s / 1000));
    expect(meanF32(absmax)).toBe(dq.offset);
    expect(meanF32(new Float32Array(0))).toBe(0);
    expect(dq.qabsmax.length).toBe(1000);
    expect(dq.nestedAbsmax.length).toBe(4);
    expect(dq.nestedBlocksize).toBe(256);
    expect(doubleQuantize(absmax, { offset: 0.05 }).offset).toBe(f(0.05));
  });
  it('nestedAbsmax is max |absmax - offset| per 256 and the round trip error is small', () => {
    const absmax = uniform(5000, 9, 0.001, 0.2);
    const dq = doubleQuantize(absmax);
    const rebuilt = rebuildAbsmax(dq.qabsmax, dq.nestedAbsmax, dq.offset, map);
    for (let i = 0; i < absmax.length; i++) {
      const na = dq.nestedAbsmax[i >> 8];
      if ((i & 255) === 0) {
        let m = 0;
        for (let j = i; j < Math.min(i + 256, absmax.length); j++) m = Math.max(m, Math.abs(f(absmax[j] - dq.offset)));
        expect(na).toBe(m);
      }
      // the widest gap of the dynamic map is 0.0140625 (next to ±1)
      expect(Math.abs(rebuilt[i] - absmax[i])).toBeLessThanOrEqual(0.00704 * na + 1e-9);
    }
  });
  it('rebuilt absmax = f32(f32(map[q]*nested[b>>8]) + f32(offset)) exactly', () => {
    const q = new Uint8Array([0, 1, 127, 200, 255, 3, 77]);
    const nested = new Float32Array([0.0123]);
    const out = rebuildAbsmax(q, nested, 0.0456, map);
    q.forEach((c, i) => expect(out[i]).toBe(f(f(map[c] * nested[0]) + f(0.0456))));
    const big = new Uint8Array(600).fill(200);
    const r2 = rebuildAbsmax(big, new Float32Array([1, 2, 3]), 0, map);
    expect([r2[255], r2[256], r2[512]]).toEqual([map[200], f(map[200] * 2), f(map[200] * 3)]);
  });
  it('a nested block whose values all equal the offset rebuilds to exactly the offset, never NaN', () => {
    const absmax = new Float32Array(300).fill(0.0625);
    const dq = doubleQuantize(absmax);
    expect(dq.offset).toBe(0.0625);
    expect([...dq.nestedAbsmax]).toEqual([0, 0]);
    expect(dq.qabsmax.every((v) => v === 0)).toBe(true); // CUDA: 0 * (1/0) = NaN -> code 0
    const rebuilt = rebuildAbsmax(dq.qabsmax, dq.nestedAbsmax, dq.offset, map);
    expect(rebuilt.every((v) => v === 0.0625)).toBe(true);
    // one constant nested block next to a varied one
    const mixed = new Float32Array(512);
    mixed.fill(0.5, 0, 256);
    mixed.set(uniform(256, 4, 0, 1), 256);
    const d2 = doubleQuantize(mixed, { offset: 0.5 });
    expect(d2.nestedAbsmax[0]).toBe(0);
    const r2 = rebuildAbsmax(d2.qabsmax, d2.nestedAbsmax, d2.offset, map);
    expect(r2.slice(0, 256).every((v) => v === 0.5)).toBe(true);
    expect(r2.some(Number.isNaN)).toBe(false);
  });
  it('rejects inconsistent nested lengths', () => {
    expect(() => rebuildAbsmax(new Uint8Array(300), new Float32Array(1), 0, map)).toThrow(/nested_absmax has 1 entries, expected 2/);
    expect(() => rebuildAbsmax(new Uint8Array(3), new Float32Array(1), 0, new Float32Array(255))).toThrow(/256 entries, got 255/);
  });
});
