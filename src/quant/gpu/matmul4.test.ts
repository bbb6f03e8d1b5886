// Fused 4-bit matmul / matvec / backward (Linear4) and the plain f32 matmul against
// dequantize-then-float64-matmul, on awkward shapes (Node, Dawn; SwiftShader when there is no GPU).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../gpu/node.ts';
import type { GpuRuntime } from '../../gpu/runtime.ts';
import { gaussian, mulberry32 } from '../../util/random.ts';
import { dequantize4bit, quantize4bit } from '../blockwise4.ts';
import { dynamicMap256, type QuantType } from '../codes.ts';
import { doubleQuantize, rebuildAbsmax } from '../double-quant.ts';
import { gpuQuantize4 } from './gpu-quant.ts';
import { Linear4, type Linear4Kernels } from './matmul4.ts';
import { BWD_TILES, FWD_TILES, MV_ROWS } from './wgsl-gen.ts';
import { copyF32, matmulF32 } from './matmul-f32.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('matmul4');
  await rt.kernels.validate('matmul');
});
afterAll(() => rt?.destroy());

const TOL = 1e-5;

function randn(n: number, seed: number, scale = 1): Float32Array {
  const g = gaussian(mulberry32(seed));
  return new Float32Array(n).map(() => g() * scale);
}

interface Case {
  type: QuantType;
  blocksize: number;
  dq: boolean;
  N: number;
  K: number;
  seed: number;
}

/** A quantized weight [N,K], its exact dequantized f32 values, and the Quantized4-like upload data. */
function makeWeight(c: Case) {
  const w = randn(c.N * c.K, c.seed, 0.02);
  const q = quantize4bit(w, { type: c.type, blocksize: c.blocksize });
  let absmax = q.absmax;
  let nested = null;
  if (c.dq) {
    const d = doubleQuantize(q.absmax);
    const map = dynamicMap256();
    absmax = rebuildAbsmax(d.qabsmax, d.nestedAbsmax, d.offset, map);
    nested = { qabsmax: d.qabsmax, nestedAbsmax: d.nestedAbsmax, offset: d.offset, nestedMap: map };
  }
  const deq = dequantize4bit(q.packed, absmax, c.N * c.K, c.type, c.blocksize);
  const data = {
    type: c.type,
    blocksize: c.blocksize,
    shape: [c.N, c.K],
    packed: q.packed,
    absmax: c.dq ? null : q.absmax,
    nested,
  };
  return { deq, data };
}

/** C[M,P] = A[M,R] · B (B given by an accessor b(r, p)), in float64, plus sum |a||b| per output. */
function refProduct(A: Float32Array, M: number, R: number, P: number, b: (r: number, p: number) => number, bias?: Float32Array) {
  const out = new Float64Array(M * P);
  const mag = new Float64Array(M * P);
  for (let m = 0; m < M; m++) {
    for (let p = 0; p < P; p++) {
      let s = bias ? bias[p]! : 0;
      let a = bias ? Math.abs(bias[p]!) : 0;
      for (let r = 0; r < R; r++) {
        const x = A[m * R + r]!;
        const w = b(r, p);
        s += x * w;
        a += Math.abs(x * w);
      }
      out[m * P + p] = s;
      mag[m * P + p] = a;
    }
  }
  return { out, mag };
}

function expectClose(got: Float32Array, ref: { out: Float64Array; mag: Float64Array }, what: string): void {
  expect(got.length).toBe(ref.out.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; i++) {
    const d = got[i]! - ref.out[i]!;
    num += d * d;
    den += ref.out[i]! * ref.out[i]!;
    const tol = TOL * ref.mag[i]! + 1e-30;
    if (!(Math.abs(d) <= tol)) {
      throw new Error(`${what}: element ${i} = ${got[i]}, want ${ref.out[i]} (|diff| ${Math.abs(d)} > ${tol})`);
    }
  }
  const rel = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  if (!(rel <= TOL)) throw new Error(`${what}: norm-wise relative error ${rel} > ${TOL}`);
}

async function checkLinear(c: Case, Ms: number[], opts: { bias?: boolean; kernels?: Partial<Linear4Kernels> } = {}) {
  const { deq, data } = makeWeight(c);
  const { N, K } = c;
  const bias = opts.bias ? randn(N, c.seed + 1) : undefined;
  const lin = Linear4.upload(rt, data, { bias, kernels: opts.kernels });
  const tag = `${c.type}${c.dq ? '+dq' : ''} bs=${c.blocksize} N=${N} K=${K}`;
  for (const M of Ms) {
    const x = randn(M * K, c.seed + M);
    const xb = rt.upload(x);
    const y = lin.matmul(rt, xb, M);
    const yRef = refProduct(x, M, K, N, (k, n) => deq[n * K + k]!, bias);
    expectClose(await rt.readF32(y, M * N), yRef, `${tag} M=${M} forward`);
    if (M === 1) {
      // the tiled kernel at M = 1 too (matmul() routes M = 1 to the matvec), and an explicit matvec
      const y2 = lin.matmul(rt, rt.upload(new Float32Array([...x, ...x])), 2);
      const both = await rt.readF32(y2, 2 * N);
      expectClose(both.subarray(0, N), yRef, `${tag} M=2 (duplicated rows) forward`);
      expectClose(both.subarray(N), yRef, `${tag} M=2 (duplicated rows) forward, row 2`);
      const y3 = lin.matvec(rt, xb);
      expectClose(await rt.readF32(y3, N), yRef, `${tag} matvec`);
      y2.destroy();
      y3.destroy();
    }
    const dy = randn(M * N, c.seed + 100 + M);
    const dyb = rt.upload(dy);
    const dx = lin.matmulBackward(rt, dyb, M);
    const dxRef = refProduct(dy, M, N, K, (n, k) => deq[n * K + k]!);
    expectClose(await rt.readF32(dx, M * K), dxRef, `${tag} M=${M} backward`);
    for (const b of [xb, y, dyb, dx]) b.destroy();
  }
  lin.destroy();
}

describe('Linear4: fused 4-bit products vs dequantize + float64 matmul', () => {
  const Ns = [1, 5, 33, 130];
  const Ks = [7, 64, 65, 129, 300];
  for (const K of Ks) {
    it(`NF4, M=1,3,17, N=${Ns.join(',')}, K=${K}`, async () => {
      for (const N of Ns) await checkLinear({ type: 'nf4', blocksize: 64, dq: false, N, K, seed: N * 1000 + K }, [1, 3, 17]);
    });
  }

  it('FP4 and double-quantized absmax, with bias, several blocksizes', async () => {
    await checkLinear({ type: 'fp4', blocksize: 64, dq: false, N: 33, K: 64, seed: 1 }, [1, 3, 17], { bias: true });
    await checkLinear({ type: 'nf4', blocksize: 64, dq: true, N: 130, K: 129, seed: 2 }, [1, 17], { bias: true });
    await checkLinear({ type: 'nf4', blocksize: 64, dq: true, N: 33, K: 256, seed: 3 }, [1, 3, 17]);
    await checkLinear({ type: 'fp4', blocksize: 128, dq: true, N: 5, K: 300, seed: 4 }, [1, 3]);
    // blocks straddling rows on the word-aligned path (K % 8 == 0, K % blocksize != 0)
    await checkLinear({ type: 'nf4', blocksize: 64, dq: false, N: 33, K: 72, seed: 5 }, [1, 3, 17], { bias: true });
    await checkLinear({ type: 'nf4', blocksize: 32, dq: true, N: 17, K: 40, seed: 6 }, [1, 5]);
    await checkLinear({ type: 'fp4', blocksize: 4096, dq: false, N: 130, K: 48, seed: 7 }, [1, 9]);
  });

  it('every generated tile and matvec configuration gives the same results', async () => {
    const c: Case = { type: 'nf4', blocksize: 64, dq: true, N: 37, K: 136, seed: 8 };
    const configs: Linear4Kernels[] = [];
    FWD_TILES.forEach(([tm, tn], i) => {
      const [btm, tkw] = BWD_TILES[i % BWD_TILES.length]!;
      const mvTn = MV_ROWS[i % MV_ROWS.length]!;
      const ksplit = [1, 4, 32, 2, 64, 8, 16][i % 7]!;
      configs.push({ fwd: { tm, tn, wg: i % 2 ? 32 : 64 }, bwd: { tm: btm, tkw, wg: 64 }, mv: { tn: mvTn, ksplit, wg: 64 } });
    });
    for (const [btm, tkw] of BWD_TILES) configs.push({ bwd: { tm: btm, tkw, wg: 16 }, anyWg: 16 });
    for (const kernels of configs) await checkLinear(c, [1, 3, 17, 33], { bias: true, kernels });
    // the any-K kernels with another workgroup size
    await checkLinear({ ...c, K: 133 }, [1, 3, 17], { bias: true, kernels: { anyWg: 32 } });
  });

  it('a bigger shape: M=64, N=256, K=576 (and a GPU-quantized weight)', async () => {
    await checkLinear({ type: 'nf4', blocksize: 64, dq: true, N: 256, K: 576, seed: 9 }, [64, 1]);
    // the same through gpuQuantize4 + Linear4.fromGpu
    const N = 256;
    const K = 576;
    const w = randn(N * K, 10, 0.02);
    const src = rt.upload(w);
    const gq = gpuQuantize4(rt, src, N * K, { type: 'nf4', blocksize: 64 });
    const lin = Linear4.fromGpu(rt, gq, N, K);
    const q = quantize4bit(w, { type: 'nf4', blocksize: 64 });
    const deq = dequantize4bit(q.packed, q.absmax, N * K, 'nf4', 64);
    const x = randn(64 * K, 11);
    const y = lin.matmul(rt, rt.upload(x), 64);
    expectClose(await rt.readF32(y, 64 * N), refProduct(x, 64, K, N, (k, n) => deq[n * K + k]!), 'gpu-quantized forward');
    src.destroy();
  });
});

describe('f32 matmul and copy (the baselines)', () => {
  it('matmulF32 on awkward shapes, with and without bias', async () => {
    for (const [M, N, K] of [
      [1, 1, 1],
      [3, 5, 7],
      [17, 33, 64],
      [17, 130, 65],
      [5, 33, 300],
      [64, 256, 576],
      [3, 5, 4],
      [2, 9, 12],
    ] as const) {
      const x = randn(M * K, M + N + K);
      const w = randn(N * K, M * N * K);
      const bias = randn(N, 3);
      for (const withBias of [false, true]) {
        const y = matmulF32(rt, rt.upload(x), rt.upload(w), M, N, K, { bias: withBias ? rt.upload(bias) : undefined });
        expectClose(
          await rt.readF32(y, M * N),
          refProduct(x, M, K, N, (k, n) => w[n * K + k]!, withBias ? bias : undefined),
          `f32 ${M}x${N}x${K}${withBias ? ' +bias' : ''}`,
        );
      }
    }
  });

  it('copy kernel copies exactly', async () => {
    const n = 1000;
    const a = randn(n, 1);
    const src = rt.upload(a);
    const dst = rt.create(1024 * 4);
    copyF32(rt, src, dst, n);
    expect(await rt.readF32(dst, n)).toEqual(a);
  });
});
