// GPU self-test: the smoke kernel (shaders/smoke.wgsl, y = a*x + y) on seeded random input of
// an awkward size, checked against the same computation on the CPU. Headless: runs anywhere a
// GpuRuntime does (the engine worker, or Node through Dawn).

import { grid, type GpuRuntime } from '../gpu/runtime.ts';
import { mulberry32 } from '../util/random.ts';
import type { SelfTestArgs, SelfTestResult } from './protocol.ts';

export const SELFTEST_DEFAULTS = { n: 100_003, seed: 1234, a: 0.75 } as const;
/** a*x + y may be fused into one FMA by the driver: allow about one rounding of difference. */
export const SELFTEST_TOLERANCE = 1e-6;
const WG = 256;

export async function runSelfTest(rt: GpuRuntime, args: SelfTestArgs = {}): Promise<SelfTestResult> {
  const n = args.n ?? SELFTEST_DEFAULTS.n;
  const seed = args.seed ?? SELFTEST_DEFAULTS.seed;
  const a = args.a ?? SELFTEST_DEFAULTS.a;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`self-test size must be a positive integer, got ${n}`);

  const rand = mulberry32(seed);
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = rand() * 2 - 1;
    y[i] = rand() * 2 - 1;
  }

  const t0 = performance.now();
  const px = rt.upload(x, 'selftest.x');
  const py = rt.upload(y, 'selftest.y');
  let out: Float32Array;
  try {
    rt.dispatch('smoke', 'axpy', [rt.uniform([n, a], 'uf'), px, py], grid(rt, Math.ceil(n / WG)));
    out = await rt.readF32(py, n);
  } finally {
    px.destroy();
    py.destroy();
  }
  const ms = performance.now() - t0;

  let maxAbsError = 0;
  let mismatches = 0;
  let nan = false;
  for (let i = 0; i < n; i++) {
    const want = Math.fround(Math.fround(a * x[i]!) + y[i]!);
    const err = Math.abs(out[i]! - want);
    if (Number.isNaN(err)) nan = true;
    else if (err > maxAbsError) maxAbsError = err;
    if (!(err <= SELFTEST_TOLERANCE)) mismatches++;
  }
  if (nan) maxAbsError = Number.NaN; // a NaN from the GPU must not hide behind a small maximum
  return { n, seed, a, maxAbsError, mismatches, tolerance: SELFTEST_TOLERANCE, ms };
}
