import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { mulberry32 } from '../util/random.ts';
import { dropout, dropoutRef } from './dropout.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

describe('dropout', () => {
  it('matches the CPU mask exactly, out of place and in place', async () => {
    const n = 100_003;
    const r = mulberry32(3);
    const x = new Float32Array(n).map(() => r() * 2 - 1);
    const key = 0x9e3779b9;
    const want = dropoutRef(x, key, 0.1);
    const gx = rt.upload(x);
    const gy = rt.create(n * 4);
    dropout(rt, gx, gy, n, key, 0.1);
    dropout(rt, gx, gx, n, key, 0.1);
    const [a, b] = [await rt.readF32(gy, n), await rt.readF32(gx, n)];
    let dropped = 0;
    for (let i = 0; i < n; i++) {
      expect(a[i]).toBe(Math.fround(want[i]!));
      expect(b[i]).toBe(a[i]);
      if (want[i] === 0) dropped++;
    }
    expect(Math.abs(dropped / n - 0.1)).toBeLessThan(0.005);
  });
});
