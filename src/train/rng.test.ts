import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import {
  RNG_PURPOSE,
  dropoutKey,
  dropoutKeep,
  dropoutThreshold,
  initLoraA,
  initLoraB,
  rngKey,
  rngStream,
  rngU32,
  rngU32Key,
  rngUniform,
} from './rng.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

async function gpuFill(entry: 'fill_u32' | 'fill_uniform', seed: number, stream: number, offset: number, n: number) {
  const out = rt.create(n * 4);
  const groups = Math.ceil(n / 256);
  const x = Math.min(groups, 65535);
  rt.dispatch('rng', entry, [rt.uniform([seed, stream, offset, n]), out], [x, Math.ceil(groups / x)]);
  const bytes = await rt.read(out, n * 4);
  out.destroy();
  return bytes;
}

describe('counter-based RNG', () => {
  it('WGSL compiles', async () => {
    await rt.kernels.validate('rng');
  });

  it('GPU and CPU give the same bits, including counters that wrap past 2^32', async () => {
    const n = 100_003;
    for (const [seed, stream, offset] of [
      [0, 0, 0],
      [1234, rngStream(RNG_PURPOSE.dropout, 5, 3), 0xfffffff0],
      [0xffffffff, 0xdeadbeef, 77],
    ] as const) {
      const got = new Uint32Array(await gpuFill('fill_u32', seed, stream, offset, n));
      for (let i = 0; i < n; i++) {
        const want = rngU32(seed, stream, (offset + i) >>> 0);
        if (got[i] !== want) throw new Error(`seed ${seed} stream ${stream} counter ${offset + i}: GPU ${got[i]}, CPU ${want}`);
      }
    }
  });

  it('GPU uniforms equal the CPU uniforms exactly and lie in [0, 1)', async () => {
    const n = 65_537;
    const got = new Float32Array(await gpuFill('fill_uniform', 42, 7, 1000, n));
    for (let i = 0; i < n; i++) {
      const want = rngUniform(42, 7, 1000 + i);
      if (got[i] !== want) throw new Error(`uniform[${i}]: GPU ${got[i]}, CPU ${want}`);
      if (!(want >= 0 && want < 1)) throw new Error(`uniform[${i}] = ${want} outside [0, 1)`);
    }
  });

  it('is a bijection of the counter within a stream', () => {
    const key = rngKey(9, 3);
    const seen = new Set<number>();
    for (let i = 0; i < 1 << 18; i++) seen.add(rngU32Key(key, i));
    expect(seen.size).toBe(1 << 18);
  });

  it('looks uniform and independent (moments, 64-bin chi-square, lag-1 correlation, per-bit balance)', () => {
    const n = 1 << 20;
    for (const [seed, stream] of [[0, 0], [1, 0], [0, 1], [123456, rngStream(RNG_PURPOSE.loraAInit, 31, 6)]] as const) {
      const key = rngKey(seed, stream);
      const bins = new Float64Array(64);
      const bits = new Float64Array(32);
      let sum = 0, sq = 0, lag = 0, prev = 0;
      for (let i = 0; i < n; i++) {
        const u32 = rngU32Key(key, i);
        const u = (u32 >>> 8) / 16777216;
        sum += u;
        sq += u * u;
        lag += (u - 0.5) * (prev - 0.5);
        prev = u;
        bins[Math.floor(u * 64)]! += 1;
        for (let b = 0; b < 32; b++) bits[b]! += (u32 >>> b) & 1;
      }
      const mean = sum / n;
      expect(Math.abs(mean - 0.5)).toBeLessThan(0.002);
      expect(Math.abs(sq / n - mean * mean - 1 / 12)).toBeLessThan(0.001);
      expect(Math.abs(lag / n / (1 / 12))).toBeLessThan(0.01);
      const e = n / 64;
      const chi2 = bins.reduce((a, o) => a + ((o - e) * (o - e)) / e, 0);
      expect(chi2).toBeLessThan(120); // 63 degrees of freedom: p ≈ 1e-5
      for (let b = 0; b < 32; b++) expect(Math.abs(bits[b]! / n - 0.5)).toBeLessThan(0.003);
    }
    // Different seeds / streams are uncorrelated.
    let c = 0;
    for (let i = 0; i < 100_000; i++) c += (rngUniform(1, 0, i) - 0.5) * (rngUniform(2, 0, i) - 0.5);
    expect(Math.abs(c / 100_000 / (1 / 12))).toBeLessThan(0.02);
  });

  it('dropout drops a fraction p, reproducibly per (seed, micro-step, layer, module)', () => {
    const p = 0.05;
    const t = dropoutThreshold(p);
    const key = dropoutKey(0, 17, 3, 'v_proj');
    expect(dropoutKey(0, 17, 3, 'v_proj')).toBe(key);
    expect(dropoutKey(0, 18, 3, 'v_proj')).not.toBe(key);
    expect(dropoutKey(0, 17, 3, 'q_proj')).not.toBe(key);
    let dropped = 0;
    const n = 1_000_000;
    for (let i = 0; i < n; i++) if (!dropoutKeep(key, i, t)) dropped++;
    expect(Math.abs(dropped / n - p)).toBeLessThan(0.001);
    expect(dropoutKeep(key, 5, 0)).toBe(true); // p = 0 keeps everything
  });
});

describe('LoRA initialization', () => {
  it('A ~ U(−1/√in, 1/√in), deterministic per (seed, layer, module); B = 0', () => {
    const r = 16, inF = 2048;
    const a = initLoraA(7, 3, 'q_proj', r, inF);
    expect(a).toEqual(initLoraA(7, 3, 'q_proj', r, inF));
    expect(a).not.toEqual(initLoraA(7, 4, 'q_proj', r, inF));
    expect(a).not.toEqual(initLoraA(7, 3, 'k_proj', r, inF));
    expect(a).not.toEqual(initLoraA(8, 3, 'q_proj', r, inF));
    const bound = 1 / Math.sqrt(inF);
    let sum = 0, sq = 0, max = 0;
    for (const x of a) {
      sum += x;
      sq += x * x;
      max = Math.max(max, Math.abs(x));
    }
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(bound * 0.999);
    expect(Math.abs(sum / a.length)).toBeLessThan(bound * 0.02);
    expect(sq / a.length / ((bound * bound) / 3)).toBeCloseTo(1, 1);
    expect(initLoraB(4096, r)).toEqual(new Float32Array(4096 * r));
  });
});
