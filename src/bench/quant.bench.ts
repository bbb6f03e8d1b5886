// 4-bit kernel benchmarks, measured side by side in one run (the machine's load drifts, so only
// same-run ratios mean much):
//   - dequantization throughput vs the vec4 copy kernel of the same output bytes (goal >= 0.7x)
//   - fused NF4 matmul vs the f32 matmul of the same shape and tile (goal >= 1.0x), and GFLOP/s vs the
//     best peer 4-bit kernel of shared/specs/peer-kernels.md (1.34 GFLOP/s at 256x1024x1024; goal >= 2.7)
//   - decode matvec 1x2048x2048 (goal <= 2 ms)
//   - quantization error of NF4, FP4 and plain absmax int4 on Gaussian weights (CPU)
// Shapes are written M×K×N (x [M,K], W [N,K]), as in peer-kernels.md.

import { usesCpuKernels, type GpuRuntime } from '../gpu/runtime.ts';
import { dequantize4bit, quantize4bit } from '../quant/blockwise4.ts';
import type { QuantType } from '../quant/codes.ts';
import { doubleQuantize } from '../quant/double-quant.ts';
import { dynamicMap256 } from '../quant/codes.ts';
import { destroyQuant4, gpuDequantize4, uploadQuant4 } from '../quant/gpu/gpu-quant.ts';
import { Linear4 } from '../quant/gpu/matmul4.ts';
import { copyF32, matmulF32, pickFwdTile } from '../quant/gpu/matmul-f32.ts';
import { gaussian, mulberry32 } from '../util/random.ts';
import { type BenchResult, gbps, matmulGflops, timeGpu, type TimeOptions, type Timing } from './harness.ts';

/** peer-kernels.md: onnxruntime-web MatMulNBits 4-bit (block 32), the best peer 4-bit kernel, GFLOP/s. */
export const PEER_4BIT_GFLOPS: Record<string, number> = {
  '256x1024x1024': 1.34,
  '256x1024x4096': 1.02,
  '1x2048x2048': 0.09,
  '512x576x1536': 1.37,
};
/** peer-kernels.md: a plain register-tiled f32 WGSL matmul (4×4 outputs per invocation), GFLOP/s. */
export const PEER_F32_TILE_GFLOPS: Record<string, number> = {
  '256x1024x1024': 1.98,
  '256x1024x4096': 1.97,
  '1x2048x2048': 0.9,
  '512x576x1536': 2.05,
};

export interface QuantBenchOptions {
  /** Fewer repeats and smaller dequant sizes (CI smoke run). */
  quick: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  const g = gaussian(mulberry32(seed));
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = g() * scale;
  return a;
}

export interface QuantError {
  type: string;
  /** Root mean square error of the reconstructed weights. */
  rmse: number;
  /** Σ|w − ŵ| / Σ|w| (mean absolute error relative to the mean magnitude). */
  meanRelError: number;
}

/** Symmetric absmax int4 per block: 15 levels −7..7, q = round(w / (absmax/7)). Returns the reconstruction. */
export function absmaxInt4RoundTrip(w: Float32Array, blocksize = 64): Float32Array {
  const out = new Float32Array(w.length);
  for (let s = 0; s < w.length; s += blocksize) {
    const e = Math.min(w.length, s + blocksize);
    let m = 0;
    for (let i = s; i < e; i++) m = Math.max(m, Math.abs(w[i]!));
    const step = m / 7;
    for (let i = s; i < e; i++) {
      const q = step > 0 ? Math.max(-7, Math.min(7, Math.round(w[i]! / step))) : 0;
      out[i] = q * step;
    }
  }
  return out;
}

/** Quantization error of NF4, FP4 (bnb, blocksize 64) and absmax int4 on n Gaussian weights (CPU only). */
export function quantizationErrors(n = 1 << 18, seed = 1234): QuantError[] {
  const w = randn(n, seed, 0.02);
  const measure = (type: string, r: Float32Array): QuantError => {
    let se = 0;
    let ae = 0;
    let am = 0;
    for (let i = 0; i < n; i++) {
      const d = w[i]! - r[i]!;
      se += d * d;
      ae += Math.abs(d);
      am += Math.abs(w[i]!);
    }
    return { type, rmse: Math.sqrt(se / n), meanRelError: ae / am };
  };
  const res: QuantError[] = [];
  for (const type of ['nf4', 'fp4'] as QuantType[]) {
    const q = quantize4bit(w, { type, blocksize: 64 });
    res.push(measure(type, dequantize4bit(q.packed, q.absmax, n, type, 64)));
  }
  res.push(measure('int4-absmax', absmaxInt4RoundTrip(w, 64)));
  return res;
}

/** Runs the 4-bit benchmarks on `rt`. */
export async function benchQuant(rt: GpuRuntime, opts: QuantBenchOptions): Promise<BenchResult[]> {
  const log = opts.log ?? (() => {});
  const results: BenchResult[] = [];
  const time = (run: () => void): Promise<Timing> => timeGpu(rt, run, topt);
  const topt: TimeOptions = opts.quick ? { repeats: 3, targetMs: 150, warmup: 1 } : { repeats: 7, targetMs: 400, warmup: 2 };
  // process CPU time is only meaningful when the adapter runs in this process (CPU implementations)
  const cpu = usesCpuKernels(rt);
  const cpuOf = (t: Timing): number | undefined => (cpu ? t.cpuMs : undefined);
  const push = (r: BenchResult) => {
    results.push(r);
    log(`${r.name} ${r.shape}: ${r.ms.toFixed(3)} ms${r.gflops !== undefined ? ` ${r.gflops.toFixed(2)} GFLOP/s` : ''}${
      r.gbps !== undefined ? ` ${r.gbps.toFixed(2)} GB/s` : ''
    }${r.ratio !== undefined ? ` ratio ${r.ratio.toFixed(2)}` : ''}`);
  };

  // ---- dequantization vs copy --------------------------------------------------------------------------
  {
    const n = opts.quick ? 1 << 20 : 1 << 22;
    const w = randn(n, 1, 0.02);
    const q = quantize4bit(w, { type: 'nf4', blocksize: 64 });
    const t = uploadQuant4(rt, { type: 'nf4', blocksize: 64, n, packed: q.packed, absmax: q.absmax });
    const dq = doubleQuantize(q.absmax);
    const tdq = uploadQuant4(rt, {
      type: 'nf4',
      blocksize: 64,
      n,
      packed: q.packed,
      absmax: null,
      nested: { qabsmax: dq.qabsmax, nestedAbsmax: dq.nestedAbsmax, offset: dq.offset, nestedMap: dynamicMap256() },
    });
    const out = rt.create(n * 4, 'bench-dequant-out');
    const src = rt.upload(w);
    const dst = rt.create(n * 4, 'bench-copy-out');
    const shape = `n=${n}`;
    const tc = await time(() => copyF32(rt, src, dst, n));
    const td = await time(() => gpuDequantize4(rt, t, out));
    const tdd = await time(() => gpuDequantize4(rt, tdq, out));
    const copyBytes = 8 * n;
    push({
      name: 'copy f32 (vec4)',
      shape,
      ms: tc.ms,
      gbps: gbps(copyBytes, tc.ms),
      timing: tc.method,
      cpuMs: cpuOf(tc),
      minMs: tc.minMs,
      maxMs: tc.maxMs,
      note: 'read+write bytes',
    });
    const deqBytes = 4 * n + n / 2 + (4 * n) / 64;
    for (const [name, tt] of [
      ['dequant NF4 -> f32', td],
      ['dequant NF4+DQ -> f32', tdd],
    ] as const) {
      const ratio = tc.ms / tt.ms;
      push({
        name,
        shape,
        ms: tt.ms,
        gbps: gbps(deqBytes, tt.ms),
        ratio,
        ratioOf: 'copy time / dequant time (same output bytes)',
        goal: '>= 0.7x copy',
        met: ratio >= 0.7,
        timing: tt.method,
        cpuMs: cpuOf(tt),
        minMs: tt.minMs,
        maxMs: tt.maxMs,
        extra: { outputGBps: gbps(4 * n, tt.ms) },
      });
    }
    for (const b of [out, src, dst]) b.destroy();
    destroyQuant4(t);
    destroyQuant4(tdq);
  }

  // ---- fused matmul vs f32 matmul ---------------------------------------------------------------------
  for (const [M, K, N] of [
    [256, 1024, 1024],
    [512, 576, 1536],
  ] as const) {
    const shape = `${M}x${K}x${N}`;
    const w = randn(N * K, 2, 0.02);
    const q = quantize4bit(w, { type: 'nf4', blocksize: 64 });
    const tile = pickFwdTile(rt, M, N);
    const lin = Linear4.upload(rt, { type: 'nf4', blocksize: 64, shape: [N, K], packed: q.packed, absmax: q.absmax }, { kernels: { fwd: tile } });
    const dq = doubleQuantize(q.absmax);
    const linDq = Linear4.upload(
      rt,
      {
        type: 'nf4',
        blocksize: 64,
        shape: [N, K],
        packed: q.packed,
        absmax: null,
        nested: { qabsmax: dq.qabsmax, nestedAbsmax: dq.nestedAbsmax, offset: dq.offset, nestedMap: dynamicMap256() },
      },
      { kernels: { fwd: tile } },
    );
    const x = rt.upload(randn(M * K, 3));
    const wf = rt.upload(dequantize4bit(q.packed, q.absmax, N * K, 'nf4', 64));
    const y = rt.create(M * N * 4);
    const tf = await time(() => matmulF32(rt, x, wf, M, N, K, { out: y, tile }));
    const t4 = await time(() => lin.matmul(rt, x, M, y));
    const t4d = await time(() => linDq.matmul(rt, x, M, y));
    const tileName = `${tile.tm}x${tile.tn}`;
    const gfF32 = matmulGflops(M, K, N, tf.ms);
    push({
      name: `f32 matmul (tile ${tileName})`,
      shape,
      ms: tf.ms,
      gflops: gfF32,
      timing: tf.method,
      cpuMs: cpuOf(tf),
      minMs: tf.minMs,
      maxMs: tf.maxMs,
      extra: { peerF32TileGflops: PEER_F32_TILE_GFLOPS[shape] ?? NaN },
    });
    for (const [name, tt] of [
      [`fused NF4 matmul (tile ${tileName})`, t4],
      [`fused NF4+DQ matmul (tile ${tileName})`, t4d],
    ] as const) {
      const gf = matmulGflops(M, K, N, tt.ms);
      const peer = PEER_4BIT_GFLOPS[shape] ?? NaN;
      const ratio = tf.ms / tt.ms;
      push({
        name,
        shape,
        ms: tt.ms,
        gflops: gf,
        ratio,
        ratioOf: 'f32 time / fused time (same shape and tile)',
        goal: `>= 1.0x f32 tile; >= ${(2 * peer).toFixed(2)} GFLOP/s (2x best peer 4-bit ${peer})`,
        met: ratio >= 1 && gf >= 2 * peer,
        timing: tt.method,
        cpuMs: cpuOf(tt),
        minMs: tt.minMs,
        maxMs: tt.maxMs,
        extra: {
          vsPeer4bit: gf / peer,
          vsPeerF32Tile: gf / (PEER_F32_TILE_GFLOPS[shape] ?? NaN),
          weightMiB: lin.weightBytes / 2 ** 20,
          f32WeightMiB: (N * K * 4) / 2 ** 20,
        },
      });
    }
    for (const b of [x, wf, y]) b.destroy();
    lin.destroy();
    linDq.destroy();
  }

  // ---- decode matvec ----------------------------------------------------------------------------------
  {
    const [M, K, N] = [1, 2048, 2048];
    const shape = `${M}x${K}x${N}`;
    const w = randn(N * K, 4, 0.02);
    const q = quantize4bit(w, { type: 'nf4', blocksize: 64 });
    const lin = Linear4.upload(rt, { type: 'nf4', blocksize: 64, shape: [N, K], packed: q.packed, absmax: q.absmax });
    const x = rt.upload(randn(K, 5));
    const wf = rt.upload(dequantize4bit(q.packed, q.absmax, N * K, 'nf4', 64));
    const y = rt.create(N * 4);
    const tf = await time(() => matmulF32(rt, x, wf, M, N, K, { out: y }));
    const tm = await time(() => lin.matvec(rt, x, y));
    push({
      name: 'f32 matvec (tile 1x4)',
      shape,
      ms: tf.ms,
      gflops: matmulGflops(M, K, N, tf.ms),
      gbps: gbps(N * K * 4, tf.ms),
      timing: tf.method,
      cpuMs: cpuOf(tf),
      minMs: tf.minMs,
      maxMs: tf.maxMs,
    });
    const peer = PEER_4BIT_GFLOPS[shape] ?? NaN;
    const gf = matmulGflops(M, K, N, tm.ms);
    push({
      name: 'NF4 decode matvec',
      shape,
      ms: tm.ms,
      gflops: gf,
      gbps: gbps(lin.weightBytes, tm.ms),
      ratio: tf.ms / tm.ms,
      ratioOf: 'f32 matvec time / NF4 matvec time',
      goal: '<= 2 ms',
      met: tm.ms <= 2,
      timing: tm.method,
      cpuMs: cpuOf(tm),
      minMs: tm.minMs,
      maxMs: tm.maxMs,
      extra: { vsPeer4bit: gf / peer, vsPeerF32Tile: gf / (PEER_F32_TILE_GFLOPS[shape] ?? NaN), packedMiB: lin.weightBytes / 2 ** 20 },
    });
    for (const b of [x, wf, y]) b.destroy();
    lin.destroy();
  }

  // ---- quantization error (CPU) -------------------------------------------------------------------
  {
    const errs = quantizationErrors(opts.quick ? 1 << 16 : 1 << 20);
    const nf4 = errs.find((e) => e.type === 'nf4')!;
    for (const e of errs) {
      push({
        name: `quantization error ${e.type}`,
        shape: 'gaussian, block 64',
        ms: 0,
        goal: e.type === 'nf4' ? 'lowest RMSE' : undefined,
        met: e.type === 'nf4' ? errs.every((o) => o === e || o.rmse > e.rmse) : undefined,
        ratio: e.rmse / nf4.rmse,
        ratioOf: 'RMSE / NF4 RMSE',
        extra: { rmse: e.rmse, meanRelError: e.meanRelError },
      });
    }
  }
  return results;
}
