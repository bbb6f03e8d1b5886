import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { swigluBackward, swigluForward } from './swiglu.ts';
import {
  compare,
  dot,
  numericalGradient,
  randn,
  swigluBackward as refBackward,
  swigluForward as refForward,
} from './reference.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('swiglu');
});
afterAll(() => rt?.destroy());

function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5): void {
  const r = compare(got, want, rtol);
  expect(r.ok, `${label}: ${r.message}`).toBe(true);
}

describe('SwiGLU', () => {
  it('float64 reference backward matches finite differences', () => {
    const n = 20;
    const g = Float64Array.from(randn(n, 1, 3));
    const u = Float64Array.from(randn(n, 2));
    const R = randn(n, 3);
    const { dg, du } = refBackward(R, g, u);
    expectClose('ref dg', dg, numericalGradient((x) => dot(refForward(x, u), R), g), 1e-6);
    expectClose('ref du', du, numericalGradient((x) => dot(refForward(g, x), R), u), 1e-6);
  });

  for (const [T, F] of [
    [7, 129], // n % 4 != 0: the scalar kernels
    [3, 1536], // the vec4 kernels (forward, in-place backward)
  ] as Array<[number, number]>) {
    it(`forward + backward (separate and in place) vs float64, T=${T}, F=${F}`, async () => {
      const n = T * F;
      const g = randn(n, 10 + F, 4);
      // Large |g| must not overflow σ: no NaN/inf, silu(−1000) = 0, silu(1000) = 1000.
      g[0] = 1000;
      g[1] = -1000;
      g[2] = 90;
      g[3] = -90;
      const u = randn(n, 20 + F);
      const dh = randn(n, 30 + F);
      const bg = rt.upload(g);
      const bu = rt.upload(u);
      const bdh = rt.upload(dh);
      const h = swigluForward(rt, bg, bu, n);
      const dg = rt.create(n * 4);
      const du = rt.create(n * 4);
      swigluBackward(rt, bdh, bg, bu, n, dg, du);
      const rh = refForward(g, u);
      const rg = refBackward(dh, g, u);
      expectClose('h', await rt.readF32(h), rh);
      expectClose('dg', await rt.readF32(dg), rg.dg);
      expectClose('du', await rt.readF32(du), rg.du);
      swigluBackward(rt, bdh, bg, bu, n); // in place: g ← dg, u ← du
      expectClose('dg (in place)', await rt.readF32(bg), rg.dg);
      expectClose('du (in place)', await rt.readF32(bu), rg.du);
      for (const b of [bg, bu, bdh, h, dg, du]) b.destroy();
    });
  }

  it('rejects half-in-place gradients', () => {
    const [b, c, d] = [rt.create(16), rt.create(16), rt.create(16)];
    expect(() => swigluBackward(rt, b, b, c, 4, b, d)).toThrow(/in place/);
    for (const x of [b, c, d]) x.destroy();
  });
});
