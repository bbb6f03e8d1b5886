import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.ts';
import {
  compare,
  dot,
  numericalGradient,
  randn,
  rmsnormBackward as refBackward,
  rmsnormForward as refForward,
} from './reference.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('rmsnorm');
});
afterAll(() => rt?.destroy());

function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5): void {
  const r = compare(got, want, rtol);
  expect(r.ok, `${label}: ${r.message}`).toBe(true);
}

describe('RMSNorm', () => {
  it('float64 reference backward matches finite differences', () => {
    const T = 3;
    const D = 7;
    const eps = 1e-5;
    const x = Float64Array.from(randn(T * D, 1));
    const w = randn(D, 2);
    const R = randn(T * D, 3);
    const dx = refBackward(R, x, w, T, D, eps);
    const num = numericalGradient((xx) => dot(refForward(xx, w, T, D, eps).y, R), x);
    expectClose('ref dx', dx, num, 1e-6);
  });

  for (const [T, D] of [
    [7, 5],
    [3, 64],
    [5, 129],
    [2, 576],
    [2, 2048],
  ] as Array<[number, number]>) {
    for (const kernel of ['workgroup', 'rows'] as const)
    it(`forward + backward vs float64, T=${T}, D=${D}, ${kernel} kernel`, async () => {
      const eps = D === 576 ? 1e-6 : 1e-5;
      const x = randn(T * D, 10 + D, 2);
      const w = randn(D, 20 + D);
      const dy = randn(T * D, 30 + D);
      const prior = randn(T * D, 40 + D);
      const bx = rt.upload(x);
      const bw = rt.upload(w);
      const bdy = rt.upload(dy);
      const { y, rstd } = rmsnormForward(rt, bx, bw, T, D, eps, { kernel });
      const dx = rmsnormBackward(rt, bdy, bx, bw, rstd, T, D, undefined, false, kernel);
      const acc = rt.upload(prior);
      rmsnormBackward(rt, bdy, bx, bw, rstd, T, D, acc, true, kernel);
      const ref = refForward(x, w, T, D, eps);
      const rdx = refBackward(dy, x, w, T, D, eps);
      expectClose('y', await rt.readF32(y), ref.y);
      expectClose('rstd', await rt.readF32(rstd), ref.rstd);
      expectClose('dx', await rt.readF32(dx), rdx);
      expectClose('dx (accumulate)', await rt.readF32(acc), rdx.map((v, i) => v + prior[i]!));
      for (const b of [bx, bw, bdy, y, rstd, dx, acc]) b.destroy();
    });
  }

  for (const [kernel, T, D] of [['workgroup', 70_000, 5], ['rows', 1_100_000, 2]] as const)
  it(`handles more rows than one dispatch dimension allows (2D grid), ${kernel} kernel`, async () => {
    const x = randn(T * D, 7);
    const w = randn(D, 8);
    const bx = rt.upload(x);
    const bw = rt.upload(w);
    const { y, rstd } = rmsnormForward(rt, bx, bw, T, D, 1e-5, { kernel });
    expectClose(`y (${T} rows)`, await rt.readF32(y), refForward(x, w, T, D, 1e-5).y);
    for (const b of [bx, bw, y, rstd]) b.destroy();
  });
});
