// Fused 4-bit matmul / matvec / backward (Linear4) and the plain f32 matmul against
// dequantize-then-float64-matmul, on awkward shapes (Node, Dawn; SwiftShader when there is no GPU).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../gpu/node.ts';
import { grid, type GpuRuntime } from '../../gpu/runtime.ts';
import { gaussian, mulberry32 } from '../../util/random.ts';
import { dequantize4bit, quantize4bit } from '../blockwise4.ts';
import { dynamicMap256, type QuantType } from '../codes.ts';
import { doubleQuantize, rebuildAbsmax } from '../double-quant.ts';
import { gpuCheckAbsmax, gpuDequantize4, gpuDoubleQuantize, gpuQuantize4, readQuant4 } from './gpu-quant.ts';
import { Linear4, type Linear4Kernels } from './matmul4.ts';
import { BWD_TILES, FWD_TILES, HALF_BWD_ROWS, HALF_FWD_TILES, MV_ROWS } from './wgsl-gen.ts';
import { copyF32, matmulF32 } from './matmul-f32.ts';
import { dropoutKeep, dropoutThreshold } from '../../train/rng.ts';

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
    // accumulate: dX += dY·W onto a prior dX
    const prior = randn(M * K, c.seed + 200 + M);
    const acc = rt.upload(prior);
    lin.matmulBackward(rt, dyb, M, acc, true);
    expectClose(await rt.readF32(acc, M * K), { out: dxRef.out.map((v, i) => v + prior[i]!), mag: dxRef.mag.map((v, i) => v + Math.abs(prior[i]!)) }, `${tag} M=${M} backward, accumulated`);
    for (const b of [xb, y, dyb, dx, acc]) b.destroy();
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
    // rows starting mid-block: scale segments of gcd(K, blocksize)/8 words (4 here), also in the matvec
    await checkLinear({ type: 'nf4', blocksize: 64, dq: true, N: 7, K: 1376, seed: 12 }, [1, 17]);
    await checkLinear({ type: 'nf4', blocksize: 64, dq: false, N: 9, K: 96, seed: 13 }, [1, 33], { kernels: { mv: { tn: 1, ksplit: 4, wg: 64 } } });
  });

  it('every generated tile and matvec configuration gives the same results', async () => {
    const c: Case = { type: 'nf4', blocksize: 64, dq: true, N: 37, K: 136, seed: 8 };
    const configs: Linear4Kernels[] = [];
    FWD_TILES.forEach(([tm, tn], i) => {
      const [btm, tkw] = BWD_TILES[i % BWD_TILES.length]!;
      const mvTn = MV_ROWS[i % MV_ROWS.length]!;
      const ksplit = [1, 4, 32, 2, 64, 8, 16][i % 7]!;
      configs.push({ fwd: { tm, tn, wg: i % 2 ? 32 : 64 }, bwd: { tm: btm, tkw, wg: 64 }, mv: { tn: mvTn, ksplit, wg: 64, interleave: i % 2 === 1 } });
    });
    for (const [btm, tkw] of BWD_TILES) configs.push({ bwd: { tm: btm, tkw, wg: 16 }, anyWg: 16 });
    for (const kernels of configs) await checkLinear(c, [1, 17, 33], { bias: true, kernels });
    // the backward reading dY as vec4 (N % 4 == 0), and the scalar one at the same N
    for (const [btm, tkw] of BWD_TILES) {
      for (const vec of [false, true]) await checkLinear({ ...c, N: 36 }, [1, 17, 33], { kernels: { bwd: { tm: btm, tkw, wg: 16, vec } } });
    }
    // the half-word kernels (K % 4 == 0, K % 8 != 0): every tile, both dY reads, rows starting mid-block
    for (const [tm, tn] of HALF_FWD_TILES) {
      for (const btm of HALF_BWD_ROWS) {
        for (const [N, vec] of [[36, true], [37, false], [36, false]] as const) {
          const halfCase = { ...c, N, K: 172 };
          await checkLinear(halfCase, [1, 17, 33], { bias: true, kernels: { halfFwd: { tm, tn, wg: 16 }, halfBwd: { tm: btm, wg: 16, vec } } });
        }
      }
    }
    await checkLinear({ type: 'fp4', blocksize: 32, dq: false, N: 9, K: 44, seed: 14 }, [1, 40]);
    // the any-K kernels with another workgroup size
    await checkLinear({ ...c, K: 133 }, [1, 3, 17], { bias: true, kernels: { anyWg: 32 } });
  });

  it('the LoRA expansion fused into every forward tile: y = x·Wᵀ + b + s·u·Bᵀ (and rank 0: y = x·Wᵀ + b)', async () => {
    const tiles = [
      ...FWD_TILES.map(([tm, tn]) => ({ K: 136, kernels: { fwd: { tm, tn, wg: 16 } } })),
      ...HALF_FWD_TILES.map(([tm, tn]) => ({ K: 172, kernels: { halfFwd: { tm, tn, wg: 16 } } })),
    ];
    for (const [i, { K, kernels }] of tiles.entries()) {
      const N = i % 2 ? 36 : 44; // N % 4 == 0; 44 leaves a half-full last 8-column tile
      const r = i % 2 ? 8 : 4;
      const scale = 0.75 + i;
      const { deq, data } = makeWeight({ type: 'nf4', blocksize: 64, dq: i % 3 === 0, N, K, seed: 40 + i });
      const bias = randn(N, 50 + i);
      const lin = Linear4.upload(rt, data, { bias, kernels });
      const AB = randn(r * K + N * r, 60 + i); // a module's [A | B]
      const params = rt.upload(AB);
      for (const M of [2, 17, 33]) {
        const x = randn(M * K, 70 + M);
        const u = randn(M * r, 80 + M);
        const ub = rt.upload(u);
        const epi = { u: ub, params, offset: r * K, r, scale };
        expect(lin.fusesLora(rt, M, epi)).toBe(true);
        const xb = rt.upload(x);
        const y = lin.matmul(rt, xb, M, undefined, epi);
        // [x | u] · [W | s·B]ᵀ + b
        const xu = new Float32Array(M * (K + r));
        for (let m = 0; m < M; m++) {
          xu.set(x.subarray(m * K, (m + 1) * K), m * (K + r));
          xu.set(u.subarray(m * r, (m + 1) * r), m * (K + r) + K);
        }
        const ref = refProduct(xu, M, K + r, N, (k, n) => (k < K ? deq[n * K + k]! : scale * AB[r * K + n * r + k - K]!), bias);
        expectClose(await rt.readF32(y, M * N), ref, `tile ${JSON.stringify(kernels)} K=${K} r=${r} M=${M} forward + LoRA`);
        // without LoRA the same tiles run with rank 0 (their vec4 stores), where the device allows
        const y0 = lin.matmul(rt, xb, M);
        const ref0 = refProduct(x, M, K, N, (k, n) => deq[n * K + k]!, bias);
        expectClose(await rt.readF32(y0, M * N), ref0, `tile ${JSON.stringify(kernels)} K=${K} M=${M} forward (rank 0)`);
        [y, y0, ub, xb].forEach((b) => b.destroy());
      }
      // what cannot fuse: the decode matvec, a rank or offset off the vec4 grid, the any-K kernel
      const u1 = rt.create(64);
      expect(lin.fusesLora(rt, 5, { u: u1, params, offset: r * K, r: 6, scale })).toBe(false);
      expect(lin.fusesLora(rt, 5, { u: u1, params, offset: r * K + 2, r, scale })).toBe(false);
      expect(() => lin.matmul(rt, u1, 5, undefined, { u: u1, params, offset: 2, r, scale })).toThrow(/cannot fuse/);
      u1.destroy();
      params.destroy();
      lin.destroy();
    }
    const { data } = makeWeight({ type: 'nf4', blocksize: 64, dq: false, N: 8, K: 64, seed: 90 });
    const mv = Linear4.upload(rt, data);
    const any = Linear4.upload(rt, makeWeight({ type: 'nf4', blocksize: 64, dq: false, N: 8, K: 66, seed: 91 }).data);
    const b = rt.create(4096);
    expect(mv.fusesLora(rt, 1, { u: b, params: b, offset: 0, r: 4, scale: 1 })).toBe(false);
    expect(mv.fusesLora(rt, 2, { u: b, params: b, offset: 0, r: 4, scale: 1 })).toBe(rt.device.limits.maxStorageBuffersPerShaderStage >= 10);
    expect(any.fusesLora(rt, 2, { u: b, params: b, offset: 0, r: 4, scale: 1 })).toBe(false);
    const odd = Linear4.upload(rt, makeWeight({ type: 'nf4', blocksize: 64, dq: false, N: 37, K: 64, seed: 92 }).data); // y rows not vec4
    expect(odd.fusesLora(rt, 2, { u: b, params: b, offset: 0, r: 4, scale: 1 })).toBe(false);
    [mv, any, odd].forEach((l) => l.destroy());
    b.destroy();
  });

  it('the LoRA input gradient fused into every backward tile: dX (+)= dY·W + dropout(du·A)', async () => {
    const N = 36; // vec4 dY reads need N % 4 == 0
    const K = 136;
    const configs = BWD_TILES.flatMap(([tm, tkw]) => [false, true].map((vec) => ({ tm, tkw, wg: 16, vec })));
    for (const [i, bwd] of configs.entries()) {
      const r = i % 2 ? 8 : 4;
      const { deq, data } = makeWeight({ type: 'nf4', blocksize: 64, dq: i % 3 === 0, N, K, seed: 140 + i });
      const lin = Linear4.upload(rt, data, { kernels: { bwd } });
      const AB = randn(r * K + N * r, 150 + i); // a module's [A | B]
      const params = rt.upload(AB);
      const p = i % 2 ? 0.25 : 0;
      const dropout = p ? { key: 1234 + i, p } : undefined;
      const threshold = dropoutThreshold(p);
      const keep = (e: number) => (p ? (dropoutKeep(dropout!.key, e, threshold) ? Math.fround(1 / (1 - p)) : 0) : 1);
      for (const [M, accumulate] of [[3, false], [17, true], [33, i % 3 === 1]] as const) {
        const dy = randn(M * N, 160 + M);
        const du = randn(M * r, 170 + M);
        const prior = randn(M * K, 180 + M);
        const dxb = rt.upload(accumulate ? prior : new Float32Array(M * K).fill(Number.NaN));
        const dub = rt.upload(du);
        const epi = { du: dub, params, offset: 0, r, dropout };
        expect(lin.fusesLoraGrad(rt, epi)).toBe(true);
        lin.matmulBackward(rt, rt.upload(dy), M, dxb, accumulate, epi);
        const base = refProduct(dy, M, N, K, (n, k) => deq[n * K + k]!);
        const lora = refProduct(du, M, r, K, (j, k) => AB[j * K + k]!);
        const ref = {
          out: base.out.map((v, e) => v + keep(e) * lora.out[e]! + (accumulate ? prior[e]! : 0)),
          mag: base.mag.map((v, e) => v + keep(e) * lora.mag[e]! + (accumulate ? Math.abs(prior[e]!) : 0)),
        };
        expectClose(await rt.readF32(dxb, M * K), ref, `bwd ${JSON.stringify(bwd)} r=${r} p=${p} M=${M} acc=${accumulate}`);
        if (p) expect(ref.out.some((_, e) => keep(e) === 0)).toBe(true); // the mask did drop something
        dxb.destroy();
        dub.destroy();
      }
      params.destroy();
      lin.destroy();
    }
    // what cannot fuse: K % 8 != 0 (half-word and any-K kernels), a rank off the vec4 grid
    const b = rt.create(4096);
    const half = Linear4.upload(rt, makeWeight({ type: 'nf4', blocksize: 64, dq: false, N: 8, K: 172, seed: 190 }).data);
    expect(half.fusesLoraGrad(rt, { du: b, params: b, offset: 0, r: 4 })).toBe(false);
    const word = Linear4.upload(rt, makeWeight({ type: 'nf4', blocksize: 64, dq: false, N: 8, K: 64, seed: 191 }).data);
    expect(word.fusesLoraGrad(rt, { du: b, params: b, offset: 0, r: 6 })).toBe(false);
    expect(() => word.matmulBackward(rt, b, 2, b, false, { du: b, params: b, offset: 0, r: 6 })).toThrow(/cannot fuse/);
    [half, word].forEach((l) => l.destroy());
    b.destroy();
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

/** A view of `rt` whose device reports at most `max` workgroups per dimension (forces 2D grids). */
function smallGridRuntime(rt: GpuRuntime, max: number): GpuRuntime {
  const limits = new Proxy(rt.device.limits, {
    get: (t, k) => (k === 'maxComputeWorkgroupsPerDimension' ? max : Reflect.get(t, k)),
  });
  const device = new Proxy(rt.device, {
    get: (t, k) => (k === 'limits' ? limits : Reflect.get(t, k)),
  });
  return new Proxy(rt, {
    get: (t, k) => {
      if (k === 'device') return device;
      const v = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

describe('2D dispatch grids', () => {
  it('every kernel indexes a 2D grid correctly (per-dimension limit forced to 3 workgroups)', async () => {
    const srt = smallGridRuntime(rt, 3);
    expect(grid(srt, 10)).toEqual([3, 4]);
    expect(grid(srt, 4)).toEqual([2, 2]); // balanced rows
    expect(grid(srt, 3)).toEqual([3, 1]);
    // quantize + dequantize (plain, DQ, exact) against the CPU reference
    const n = 20001;
    const data = randn(n, 21, 0.02);
    const src = rt.upload(data);
    const q = gpuQuantize4(srt, src, n, { type: 'nf4', blocksize: 32 });
    const want = quantize4bit(data, { type: 'nf4', blocksize: 32 });
    const got = await readQuant4(srt, q);
    expect(Buffer.from(got.packed).equals(Buffer.from(want.packed))).toBe(true);
    expect(Buffer.from(got.absmax.buffer).equals(Buffer.from(want.absmax.buffer))).toBe(true);
    await gpuCheckAbsmax(srt, q);
    const deqWant = dequantize4bit(want.packed, want.absmax, n, 'nf4', 32);
    for (const exact of [false, true]) {
      const out = gpuDequantize4(srt, q, undefined, { exact });
      expect(Buffer.from((await rt.readF32(out, n)).buffer).equals(Buffer.from(deqWant.buffer))).toBe(true);
    }
    const dq = await gpuDoubleQuantize(srt, q);
    const d = doubleQuantize(want.absmax);
    const rebuilt = rebuildAbsmax(d.qabsmax, d.nestedAbsmax, d.offset, dynamicMap256());
    const deqDq = dequantize4bit(want.packed, rebuilt, n, 'nf4', 32);
    for (const exact of [false, true]) {
      const out = gpuDequantize4(srt, dq, undefined, { exact });
      expect(Buffer.from((await rt.readF32(out, n)).buffer).equals(Buffer.from(deqDq.buffer))).toBe(true);
    }
    src.destroy();
    // the products, with tiles small enough to need many workgroups
    const c: Case = { type: 'nf4', blocksize: 64, dq: true, N: 130, K: 72, seed: 22 };
    const { deq, data: wdata } = makeWeight(c);
    for (const kernels of [
      { fwd: { tm: 1, tn: 4, wg: 4 }, bwd: { tm: 4, tkw: 1, wg: 4 }, mv: { tn: 1, ksplit: 1, wg: 4 }, anyWg: 4 },
      { mv: { tn: 1, ksplit: 2, wg: 4, interleave: true } },
    ] as Linear4Kernels[]) {
      const lin = Linear4.upload(srt, wdata, { kernels });
      for (const M of [1, 9]) {
        const x = randn(M * c.K, M);
        const xb = rt.upload(x);
        const y = lin.matmul(srt, xb, M);
        const yRef = refProduct(x, M, c.K, c.N, (k, nn) => deq[nn * c.K + k]!);
        expectClose(await rt.readF32(y, M * c.N), yRef, `2D grid forward M=${M}`);
        if (M === 1) expectClose(await rt.readF32(lin.matvec(srt, xb), c.N), yRef, '2D grid matvec');
        const dyv = randn(M * c.N, M + 1);
        const dx = lin.matmulBackward(srt, rt.upload(dyv), M);
        expectClose(await rt.readF32(dx, M * c.K), refProduct(dyv, M, c.N, c.K, (nn, k) => deq[nn * c.K + k]!), `2D grid backward M=${M}`);
      }
      lin.destroy();
    }
    const x = randn(6 * 20, 3);
    const w = randn(7 * 20, 4);
    const yf = matmulF32(srt, rt.upload(x), rt.upload(w), 6, 7, 20, { tile: { tm: 1, tn: 4, wg: 4 } });
    expectClose(await rt.readF32(yf, 42), refProduct(x, 6, 20, 7, (k, nn) => w[nn * 20 + k]!), '2D grid f32');
  });
});
