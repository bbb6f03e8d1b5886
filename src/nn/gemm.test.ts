import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { mulberry32 } from '../util/random.ts';
import { gemm, gemmRef, splitParts, v4Fits, type GemmShape } from './gemm.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

function rand(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return new Float32Array(n).map(() => r() * 2 - 1);
}

/** Runs s on random operands (seeds of A, B, C): matches gemmRef within K terms' rounding of |a||b| <= 1. */
async function expectMatchesRef(s: GemmShape, [seedA, seedB, seedC]: [number, number, number]): Promise<void> {
  const { M, N, K } = s;
  const a = rand(M * K, seedA);
  const b = rand(K * N, seedB);
  const c0 = rand(M * N, seedC);
  const [ga, gb, gc] = [rt.upload(a), rt.upload(b), rt.upload(c0)];
  gemm(rt, ga, gb, gc, s);
  const got = await rt.readF32(gc, M * N);
  const want = gemmRef(a, b, c0, s);
  for (let i = 0; i < M * N; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-6 * (K + 1));
  [ga, gb, gc].forEach((x) => x.destroy());
}

/** Runs s (with dropout) on random operands: matches gemmRef's mask, and the mask changes the result. */
async function expectDropoutMatches(s: GemmShape, tolerance: number): Promise<void> {
  const { M, N, K } = s;
  const a = rand(M * K, 1);
  const b = rand(K * N, 2);
  const c0 = rand(M * N, 3);
  const gc = rt.upload(c0);
  gemm(rt, rt.upload(a), rt.upload(b), gc, s);
  const got = await rt.readF32(gc, M * N);
  const want = gemmRef(a, b, c0, s);
  const plain = gemmRef(a, b, c0, { ...s, dropout: undefined });
  got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(tolerance));
  expect(want.some((v, i) => Math.abs(v - plain[i]!) > 1e-3)).toBe(true);
}

describe('gemm (f32, transposes, accumulate)', () => {
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1],
    [3, 5, 7],
    [17, 33, 65],
    [64, 8, 130],
    [5, 129, 3],
  ];
  for (const [M, N, K] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`, async () => {
          await expectMatchesRef({ M, N, K, transA, transB, alpha: 0.75, beta: 1, kernel: 'scalar' }, [M * 7 + K, N * 13 + K, 99]);
        });
      }
    }
  }

  it('reads and writes at element offsets', async () => {
    const a = rand(2 + 3 * 4, 5);
    const b = rand(1 + 4 * 2, 6);
    const c = new Float32Array(3 + 3 * 2).fill(7);
    const gc = rt.upload(c);
    gemm(rt, rt.upload(a), rt.upload(b), gc, { M: 3, N: 2, K: 4, offA: 2, offB: 1, offC: 3 });
    const got = await rt.readF32(gc, c.length);
    const want = gemmRef(a.subarray(2), b.subarray(1), null, { M: 3, N: 2, K: 4 });
    expect([...got.subarray(0, 3)]).toEqual([7, 7, 7]);
    got.subarray(3).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  });

  for (const on of ['A', 'B', 'C'] as const) {
    it(`fused dropout on ${on} matches the reference mask`, async () => {
      await expectDropoutMatches({ M: 13, N: 9, K: 21, alpha: 0.5, beta: 1, dropout: { on, key: 0xabcdef, p: 0.3 }, kernel: 'scalar' }, 3e-5);
    });
  }

  describe('split-K (scalar kernel into partials, then gemm_splitk_reduce)', () => {
    // parts that divide K, that don't, and more parts than k-chunks (empty trailing parts)
    const cases: Array<[number, number, number, number]> = [
      [16, 64, 512, 16],
      [5, 7, 33, 3],
      [3, 9, 5, 4],
      [17, 6, 130, 7],
    ];
    for (const [M, N, K, parts] of cases) {
      for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        it(`M=${M} N=${N} K=${K} in ${parts} parts, transA=${transA} transB=${transB}, alpha and beta`, async () => {
          await expectMatchesRef({ M, N, K, transA, transB, alpha: 0.75, beta: 1, kernel: 'scalar', splitK: parts }, [M * 3 + K, N * 5 + K, 7]);
        });
      }
    }

    it('reads and writes at element offsets, beta = 0 overwriting NaN', async () => {
      const a = rand(2 + 3 * 40, 5);
      const b = rand(1 + 40 * 2, 6);
      const c = new Float32Array(3 + 3 * 2).fill(NaN);
      c.fill(7, 0, 3);
      const gc = rt.upload(c);
      gemm(rt, rt.upload(a), rt.upload(b), gc, { M: 3, N: 2, K: 40, offA: 2, offB: 1, offC: 3, splitK: 5 });
      const got = await rt.readF32(gc, c.length);
      const want = gemmRef(a.subarray(2), b.subarray(1), null, { M: 3, N: 2, K: 40 });
      expect([...got.subarray(0, 3)]).toEqual([7, 7, 7]);
      got.subarray(3).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    });

    for (const on of ['A', 'B', 'C'] as const) {
      it(`fused dropout on ${on} matches the reference mask`, async () => {
        const dropout = { on, key: 0x1234567, p: 0.3 };
        await expectDropoutMatches({ M: 13, N: 9, K: 70, alpha: 0.5, beta: 1, dropout, kernel: 'scalar', splitK: 4 }, 1e-4);
      });
    }

    it('splits only long products of few tiles, and only with GPU kernel shapes', async () => {
      const gpuRt = await createNodeRuntime({ kernels: 'gpu' });
      const cpuRt = await createNodeRuntime({ kernels: 'cpu' });
      try {
        expect(splitParts(gpuRt, 64, 512)).toBe(16); // LoRA gA at r = 16, 64 features, 512 tokens
        expect(splitParts(gpuRt, 64, 40)).toBe(1); // short K
        expect(splitParts(gpuRt, 512, 96)).toBe(1); // 3 parts would not pay for the reduce pass
        expect(splitParts(gpuRt, 512, 128)).toBe(4);
        expect(splitParts(gpuRt, 100_000, 4096)).toBe(1); // enough tiles
        expect(splitParts(gpuRt, 1, 1 << 20)).toBe(64); // capped
        expect(splitParts(cpuRt, 64, 512)).toBe(1);
      } finally {
        gpuRt.destroy();
        cpuRt.destroy();
      }
    });
  });

  describe('vec4 kernel (gemm_v4)', () => {
    const v4shapes: Array<[number, number, number]> = [
      [4, 4, 4],
      [8, 12, 16],
      [17, 8, 20],
      [64, 16, 128],
      [20, 172, 16],
      [13, 7, 12],
    ];
    for (const [M, N, K] of v4shapes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const kernel of ['v4', 'v4w', 'v4x', 'v4n', 'v4m'] as const) {
          const s: GemmShape = { M, N, K, transA, transB, alpha: 0.75, beta: 1, kernel };
          if (!v4Fits(s)) continue;
          it(`${kernel}: M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`, async () => {
            const a = rand(M * K, M * 7 + K);
            const b = rand(K * N, N * 13 + K);
            const c0 = rand(M * N, 99);
            const [ga, gb] = [rt.upload(a), rt.upload(b)];
            const gc = rt.create(Math.ceil((M * N) / 4) * 16); // C's vec4 view covers its last element
            rt.write(gc, c0);
            gemm(rt, ga, gb, gc, s);
            const got = await rt.readF32(gc, M * N);
            const want = gemmRef(a, b, c0, s);
            for (let i = 0; i < M * N; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-6 * (K + 1));
            [ga, gb, gc].forEach((x) => x.destroy());
          });
          }
        }
      }
    }

    it('refuses shapes it cannot read as vec4', () => {
      expect(v4Fits({ M: 4, N: 4, K: 6 })).toBe(false);
      expect(v4Fits({ M: 4, N: 6, K: 4 })).toBe(false); // B [K,N] rows not 16-byte aligned
      expect(v4Fits({ M: 4, N: 6, K: 4, transB: true })).toBe(true);
      expect(v4Fits({ M: 6, N: 4, K: 4, transA: true })).toBe(false);
      expect(v4Fits({ M: 4, N: 4, K: 4, offA: 2 })).toBe(false);
      expect(() => gemm(rt, rt.create(64), rt.create(64), rt.create(64), { M: 2, N: 2, K: 2, kernel: 'v4' })).toThrow(/vec4 kernel cannot run/);
    });

    for (const kernel of ['v4', 'v4w', 'v4x', 'v4n', 'v4m'] as const)
    it(`${kernel}: reads and writes at element offsets`, async () => {
      const [M, N, K] = [5, 12, 12];
      const a = rand(4 + M * K, 5);
      const b = rand(8 + K * N, 6);
      const c = new Float32Array(4 + M * N).fill(7);
      const gc = rt.upload(c);
      gemm(rt, rt.upload(a), rt.upload(b), gc, { M, N, K, offA: 4, offB: 8, offC: 3, kernel });
      const got = await rt.readF32(gc, c.length);
      const want = gemmRef(a.subarray(4), b.subarray(8), null, { M, N, K });
      expect([...got.subarray(0, 3)]).toEqual([7, 7, 7]);
      got.subarray(3, 3 + M * N).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
      expect(got[3 + M * N]).toBe(7);
    });

    for (const on of ['A', 'B', 'C'] as const) {
      for (const kernel of ['v4', 'v4w', 'v4x', 'v4n', 'v4m'] as const)
      it(`${kernel}: fused dropout on ${on} matches the reference mask`, async () => {
        await expectDropoutMatches({ M: 13, N: 12, K: 20, alpha: 0.5, beta: 1, dropout: { on, key: 0xabcdef, p: 0.3 }, kernel }, 3e-5);
      });
    }
  });

  it('beta = 0 overwrites whatever C held (even NaN)', async () => {
    const a = rand(12, 1);
    const b = rand(12, 2);
    const gc = rt.upload(new Float32Array(9).fill(NaN));
    gemm(rt, rt.upload(a), rt.upload(b), gc, { M: 3, N: 3, K: 4, transB: true });
    const got = await rt.readF32(gc, 9);
    const want = gemmRef(a, b, null, { M: 3, N: 3, K: 4, transB: true });
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  });
});
