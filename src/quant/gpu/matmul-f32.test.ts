// The f32 register-tiled products of shaders/matmul.wgsl against a float64 reference: the
// forward y = x·Wᵀ and the input-gradient dX = dY·W, on awkward sizes and every generated tile.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../gpu/node.ts';
import type { GpuRuntime } from '../../gpu/runtime.ts';
import { gaussian, mulberry32 } from '../../util/random.ts';
import { matmulF32, matmulF32Backward } from './matmul-f32.ts';
import { F32_BWD_ROWS, FWD_TILES } from './wgsl-gen.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

function randn(n: number, seed: number): Float32Array {
  const g = gaussian(mulberry32(seed));
  return new Float32Array(n).map(() => g());
}

/** C[M,P] = A[M,R]·B with B[r,p] = b(r, p), float64, and Σ|a·b| per output for the tolerance. */
function ref(A: Float32Array, M: number, R: number, P: number, b: (r: number, p: number) => number) {
  const out = new Float64Array(M * P);
  const mag = new Float64Array(M * P);
  for (let m = 0; m < M; m++) {
    for (let p = 0; p < P; p++) {
      let s = 0;
      let a = 0;
      for (let r = 0; r < R; r++) {
        const v = A[m * R + r]! * b(r, p);
        s += v;
        a += Math.abs(v);
      }
      out[m * P + p] = s;
      mag[m * P + p] = a;
    }
  }
  return { out, mag };
}

function expectClose(got: Float32Array, want: { out: Float64Array; mag: Float64Array }, what: string): void {
  for (let i = 0; i < want.out.length; i++) {
    const tol = 2e-6 * want.mag[i]! + 1e-30;
    if (!(Math.abs(got[i]! - want.out[i]!) <= tol)) throw new Error(`${what}: element ${i} = ${got[i]}, want ${want.out[i]}`);
  }
  expect(got.length).toBeGreaterThanOrEqual(want.out.length);
}

describe('f32 matmul (generated tiles) vs float64', () => {
  for (const [M, N, K] of [
    [1, 3, 8],
    [5, 17, 64],
    [17, 64, 136],
    [40, 9, 16],
    [33, 12, 24],
  ] as const) {
    it(`forward y = x·Wᵀ, M=${M} N=${N} K=${K}`, async () => {
      const x = randn(M * K, M + K);
      const w = randn(N * K, N + 2 * K);
      const y = matmulF32(rt, rt.upload(x), rt.upload(w), M, N, K);
      expectClose(await rt.readF32(y, M * N), ref(x, M, K, N, (k, n) => w[n * K + k]!), 'y');
    });

    for (const rows of F32_BWD_ROWS) {
      for (const vec of N % 4 === 0 ? [false, true] : [false])
      it(`backward dX = dY·W, M=${M} N=${N} K=${K}, ${rows} rows per invocation${vec ? ', dY as vec4' : ''}`, async () => {
        const dy = randn(M * N, 3 * M + N);
        const w = randn(N * K, N + 2 * K);
        const dx = matmulF32Backward(rt, rt.upload(dy), rt.upload(w), M, N, K, { rows, vec });
        expectClose(await rt.readF32(dx, M * K), ref(dy, M, N, K, (n, k) => w[n * K + k]!), 'dx');
      });
    }
  }

  it('every generated forward tile, y stored as scalars (N % 4 != 0) and as vec4 rows (N % 4 == 0), with bias', async () => {
    for (const [tm, tn] of FWD_TILES) {
      for (const N of [37, 36, 44]) {
        const [M, K] = [19, 24];
        const x = randn(M * K, tm + N);
        const w = randn(N * K, tn + N);
        const bias = randn(N, N);
        const y = matmulF32(rt, rt.upload(x), rt.upload(w), M, N, K, { tile: { tm, tn, wg: 16 }, bias: rt.upload(bias) });
        const want = ref(x, M, K, N, (k, n) => w[n * K + k]!);
        expectClose(await rt.readF32(y, M * N), { out: want.out.map((v, i) => v + bias[i % N]!), mag: want.mag.map((v, i) => v + Math.abs(bias[i % N]!)) }, `y ${tm}x${tn} N=${N}`);
      }
    }
  });

  for (const K of [16, 13])
  it(`reads x from an element offset and writes dX at one (K=${K})`, async () => {
    const [M, N, off] = [5, 12, 8];
    const x = randn(off + M * K, 40 + K);
    const w = randn(N * K, 41 + K);
    const y = matmulF32(rt, rt.upload(x), rt.upload(w), M, N, K, { xOffset: off });
    expectClose(await rt.readF32(y, M * N), ref(x.subarray(off), M, K, N, (k, n) => w[n * K + k]!), 'y (x offset)');
    if (K % 8 !== 0) return;
    const dy = randn(M * N, 42);
    const dx = rt.upload(new Float32Array(off + M * K).fill(7));
    matmulF32Backward(rt, rt.upload(dy), rt.upload(w), M, N, K, { out: dx, outOffset: off });
    const got = await rt.readF32(dx, off + M * K);
    expect([...got.subarray(0, off)]).toEqual(new Array(off).fill(7));
    expectClose(got.subarray(off), ref(dy, M, N, K, (n, k) => w[n * K + k]!), 'dx (out offset)');
  });

  it('refuses K that is not a multiple of 8, and tiles that are not generated', () => {
    const b = rt.create(256);
    expect(() => matmulF32Backward(rt, b, b, 2, 2, 6)).toThrow(/multiple of 8/);
    expect(() => matmulF32Backward(rt, b, b, 2, 2, 8, { rows: 3 })).toThrow(/not generated/);
    expect(() => matmulF32Backward(rt, b, b, 2, 2, 8, { outOffset: 2 })).toThrow(/multiple of 4/);
    expect(() => matmulF32(rt, b, b, 2, 2, 8, { xOffset: 2 })).toThrow(/multiple of 4/);
  });
});
