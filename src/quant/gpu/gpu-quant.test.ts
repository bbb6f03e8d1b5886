// GPU 4-bit quantize / dequantize are bit-exact with the CPU reference (src/quant), on awkward sizes,
// every allowed kind of blocksize, all-zero blocks, values exactly at the thresholds, and huge, tiny
// and subnormal magnitudes (Node, Dawn; SwiftShader when there is no GPU).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../gpu/node.ts';
import type { GpuRuntime } from '../../gpu/runtime.ts';
import { gaussian, mulberry32 } from '../../util/random.ts';
import { dequantize4bit, quantize4bit } from '../blockwise4.ts';
import { dynamicMap256, FP4_THRESHOLDS, NF4_THRESHOLDS, type QuantType } from '../codes.ts';
import { doubleQuantize, rebuildAbsmax } from '../double-quant.ts';
import {
  absmaxIsSafe,
  destroyQuant4,
  gpuDequantize4,
  gpuCheckAbsmax,
  gpuDoubleQuantize,
  gpuQuantize4,
  gpuRebuildAbsmax,
  readDequantized,
  readQuant4,
  uploadQuant4,
} from './gpu-quant.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('quant4');
});
afterAll(() => rt?.destroy());

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function f32FromBits(u: number): number {
  return new Float32Array(new Uint32Array([u >>> 0]).buffer)[0]!;
}

function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length).toBe(want.length);
  const g = bitsOf(got);
  const w = bitsOf(want);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) {
      throw new Error(
        `${what}: element ${i} differs: got ${got[i]} (0x${g[i]!.toString(16)}), want ${want[i]} (0x${w[i]!.toString(16)})`,
      );
    }
  }
}

function expectSameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${what}: byte ${i} differs: got 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}`);
  }
}

/** Gaussian data of n values with a zoo of special blocks planted at block boundaries. */
function awkwardData(n: number, bs: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const g = gaussian(rand);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = g() * 0.05;
  const nb = Math.ceil(n / bs);
  const nf4t = [...NF4_THRESHOLDS];
  const fp4t = [...FP4_THRESHOLDS].flatMap((t) => [t, -t]);
  const next = (x: number, d: number) => {
    const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
    return f32FromBits(x === 0 ? (d > 0 ? 1 : 0x80000001) : u + (x > 0 ? d : -d));
  };
  for (let b = 0; b < nb; b++) {
    const s = b * bs;
    const e = Math.min(n, s + bs);
    const kind = b % 14;
    for (let i = s; i < e; i++) {
      const j = i - s;
      switch (kind) {
        case 1: // all zeros (and negative zeros)
          a[i] = j % 3 === 0 ? -0 : 0;
          break;
        case 2: // values exactly at the thresholds and one ulp around them, absmax 1 so x = a
          if (j === 0) a[i] = 1;
          else {
            const t = (j & 1 ? nf4t : fp4t)[(j >> 1) % (j & 1 ? nf4t.length : fp4t.length)]!;
            a[i] = next(t, (j % 3) - 1);
          }
          break;
        case 3: // huge: absmax near FLT_MAX (subnormal reciprocal)
          a[i] = j === 0 ? 3.4028234663852886e38 : Math.max(-3e38, Math.min(3e38, a[i]! * 6e39));
          break;
        case 11: // infinities (absmax = inf, r = 0: x = +-0, and NaN for the infinities)
          a[i] = j === 1 ? Infinity : j === 4 ? -Infinity : a[i]!;
          break;
        case 12: // NaNs among ordinary values (ignored by absmax, code 0)
          a[i] = j % 7 === 3 ? NaN : a[i]!;
          break;
        case 13: // all NaN (a full block's absmax is -FLT_MAX, a partial one's 0)
          a[i] = NaN;
          break;
        case 4: // huge, just above 2^126
          a[i] = a[i]! * 1.9e39;
          break;
        case 5: // tiny normals
          a[i] = a[i]! * 1e-36;
          break;
        case 6: // subnormals (reciprocal overflows to inf), with zeros
          a[i] = j % 5 === 0 ? 0 : a[i]! * 1e-40;
          break;
        case 7: // random finite bit patterns: enormous dynamic range inside the block
          {
            let u = Math.floor(rand() * 2 ** 32) >>> 0;
            if ((u & 0x7f800000) === 0x7f800000) u &= 0xbfffffff;
            a[i] = f32FromBits(u);
          }
          break;
        case 8: // a big value with subnormal neighbours (x underflows, FP4 sign of tiny negatives)
          a[i] = j === 0 ? 1e30 : j % 2 ? -1e-44 : -3e-39;
          break;
        case 9: // exact powers of two (exact reciprocals) and their negatives
          a[i] = (j & 1 ? -1 : 1) * 2 ** ((j % 40) - 20);
          break;
        case 10: // single nonzero value, the rest zero
          a[i] = j === (b % bs) % (e - s) ? -0.37 : 0;
          break;
        default:
          break;
      }
    }
  }
  return a;
}

const SIZES: Array<[number, number]> = [
  [1, 64],
  [63, 32],
  [65, 64],
  [4097, 128],
  [100003, 64],
  [9000, 4096],
  [13, 4096],
  [20001, 256],
];

describe('GPU 4-bit quantize (bit-exact with the CPU reference)', () => {
  for (const type of ['nf4', 'fp4'] as QuantType[]) {
    for (const [n, bs] of SIZES) {
      it(`${type} n=${n} blocksize=${bs}, CUDA fast-math (FTZ) and IEEE subnormals`, async () => {
        const data = awkwardData(n, bs, n * 31 + bs);
        const src = rt.upload(data);
        for (const ftz of [true, false]) {
          const want = quantize4bit(data, { type, blocksize: bs, ftz });
          const q = gpuQuantize4(rt, src, n, { type, blocksize: bs, ftz });
          const got = await readQuant4(rt, q);
          expectSameBits(got.absmax, want.absmax, `${type} ftz=${ftz} absmax`);
          expectSameBytes(got.packed, want.packed, `${type} ftz=${ftz} packed`);
          destroyQuant4(q);
        }
        src.destroy();
      });
    }
  }

  it('covers every allowed blocksize, and double quant from the GPU absmax matches the CPU', async () => {
    for (const bs of [32, 64, 128, 256, 512, 1024, 2048, 4096]) {
      const n = 3 * bs + 17;
      const data = awkwardData(n, bs, bs);
      const want = quantize4bit(data, { type: 'nf4', blocksize: bs });
      const src = rt.upload(data);
      const q = gpuQuantize4(rt, src, n, { type: 'nf4', blocksize: bs });
      const got = await readQuant4(rt, q);
      expectSameBits(got.absmax, want.absmax, `bs=${bs} absmax`);
      expectSameBytes(got.packed, want.packed, `bs=${bs} packed`);
      expect(q.absmaxSafe).toBe(false); // unknown until checked
      expect(await gpuCheckAbsmax(rt, q)).toBe(absmaxIsSafe(want.absmax, q.codeValues));
      const dq = await gpuDoubleQuantize(rt, q);
      const wantDq = doubleQuantize(want.absmax);
      const rebuilt = await readQuant4(rt, dq);
      expectSameBits(rebuilt.absmax, rebuildAbsmax(wantDq.qabsmax, wantDq.nestedAbsmax, wantDq.offset, dynamicMap256()), `bs=${bs} rebuilt`);
      src.destroy();
      destroyQuant4(dq);
    }
  });
});

describe('GPU 4-bit dequantize (bit-exact with the CPU reference)', () => {
  for (const type of ['nf4', 'fp4'] as QuantType[]) {
    for (const [n, bs] of SIZES) {
      it(`${type} n=${n} blocksize=${bs}, plain and double-quantized absmax`, async () => {
        const data = awkwardData(n, bs, n * 7 + bs);
        const q = quantize4bit(data, { type, blocksize: bs });
        // plain f32 absmax, FTZ and IEEE; the zoo has unsafe absmax (tiny, huge, inf) unless n is tiny
        const t = uploadQuant4(rt, { type, blocksize: bs, n, packed: q.packed, absmax: q.absmax });
        if (n > 3 * bs) expect(t.absmaxSafe).toBe(false);
        for (const ftz of [true, false]) {
          const out = gpuDequantize4(rt, t, undefined, { ftz });
          expectSameBits(await readDequantized(rt, out, n), dequantize4bit(q.packed, q.absmax, n, type, bs, undefined, ftz), `${type} plain ftz=${ftz}`);
          out.destroy();
        }
        destroyQuant4(t);
        // double-quantized absmax (gaussian weights only: the zoo's absmax range is not representable)
        const gdata = awkwardData(n, bs, 5).map((v, i) => (i % bs === 0 ? 0.2 : Math.max(-0.2, Math.min(0.2, v))));
        const gq = quantize4bit(gdata, { type, blocksize: bs });
        const dq = doubleQuantize(gq.absmax);
        const map = dynamicMap256();
        const rebuilt = rebuildAbsmax(dq.qabsmax, dq.nestedAbsmax, dq.offset, map);
        const td = uploadQuant4(rt, {
          type,
          blocksize: bs,
          n,
          packed: gq.packed,
          absmax: null,
          nested: { qabsmax: dq.qabsmax, nestedAbsmax: dq.nestedAbsmax, offset: dq.offset, nestedMap: map },
        });
        expect(td.absmaxSafe).toBe(true);
        // the fast (float) kernel and the integer one agree bit for bit with the reference
        for (const exact of [false, true]) {
          const outd = gpuDequantize4(rt, td, undefined, { exact });
          expectSameBits(await readDequantized(rt, outd, n), dequantize4bit(gq.packed, rebuilt, n, type, bs), `${type} double quant exact=${exact}`);
          outd.destroy();
        }
        const tp = uploadQuant4(rt, { type, blocksize: bs, n, packed: gq.packed, absmax: gq.absmax });
        expect(tp.absmaxSafe).toBe(true);
        for (const exact of [false, true]) {
          const outp = gpuDequantize4(rt, tp, undefined, { exact });
          expectSameBits(await readDequantized(rt, outp, n), dequantize4bit(gq.packed, gq.absmax, n, type, bs), `${type} gaussian exact=${exact}`);
          outp.destroy();
        }
        destroyQuant4(tp);
        const ab = gpuRebuildAbsmax(rt, td);
        expectSameBits(await rt.readF32(ab, rebuilt.length), rebuilt, `${type} rebuilt absmax`);
        ab.destroy();
        destroyQuant4(td);
      });
    }
  }

  it('random packed bytes with absmax of every magnitude (subnormal products included)', async () => {
    const rand = mulberry32(99);
    const n = 50001;
    const bs = 32;
    const nb = Math.ceil(n / bs);
    const packed = new Uint8Array((n + 1) >> 1).map(() => Math.floor(rand() * 256));
    const absmaxBits = new Uint32Array(nb).map((_, b) => {
      if (b === 5) return 0x7f800000; // inf
      if (b === 6) return 0x7fc00001; // NaN
      if (b === 7) return 0xff7fffff; // -FLT_MAX (an all-NaN block's absmax)
      if (b % 4 === 0) return Math.floor(rand() * 0x00800000); // subnormal absmax
      if (b % 4 === 1) return Math.floor(rand() * 0x08000000); // tiny normals: subnormal products
      return Math.floor(rand() * 0x7f000000); // anything finite
    });
    const absmax = new Float32Array(absmaxBits.buffer);
    for (const type of ['nf4', 'fp4'] as QuantType[]) {
      const t = uploadQuant4(rt, { type, blocksize: bs, n, packed, absmax });
      for (const ftz of [true, false]) {
        const out = gpuDequantize4(rt, t, undefined, { ftz });
        expectSameBits(await readDequantized(rt, out, n), dequantize4bit(packed, absmax, n, type, bs, undefined, ftz), `${type} random ftz=${ftz}`);
        out.destroy();
      }
      destroyQuant4(t);
    }
  });

  it('double quant: the rebuild is not contracted into an FMA (adversarial offsets)', async () => {
    // Products map[q]*nested whose low bits matter when the offset is added: an FMA would differ.
    const rand = mulberry32(5);
    const nb = 4096;
    const n = nb * 64;
    const qabsmax = new Uint8Array(nb).map(() => Math.floor(rand() * 256));
    const nestedAbsmax = new Float32Array(nb / 256).map(() => Math.fround(0.1 + rand() * 0.01));
    const map = dynamicMap256();
    const packed = new Uint8Array(n / 2).map(() => Math.floor(rand() * 256));
    let fmaDiffers = 0;
    for (const offset of [Math.fround(0.0123456), Math.fround(-0.09876), Math.fround(1 / 3)]) {
      const rebuilt = rebuildAbsmax(qabsmax, nestedAbsmax, offset, map);
      for (let b = 0; b < nb; b++) {
        const exact = map[qabsmax[b]!]! * nestedAbsmax[b >> 8]! + offset; // double: ~ an FMA
        if (Math.fround(exact) !== rebuilt[b]) fmaDiffers++;
      }
      const t = uploadQuant4(rt, { type: 'nf4', blocksize: 64, n, packed, absmax: null, nested: { qabsmax, nestedAbsmax, offset, nestedMap: map } });
      const ab = gpuRebuildAbsmax(rt, t);
      expectSameBits(await rt.readF32(ab, nb), rebuilt, 'rebuilt absmax');
      const out = gpuDequantize4(rt, t);
      expectSameBits(await readDequantized(rt, out, n), dequantize4bit(packed, rebuilt, n, 'nf4', 64), 'dequant');
      ab.destroy();
      out.destroy();
      destroyQuant4(t);
    }
    // the data would catch a fused multiply-add
    expect(fmaDiffers).toBeGreaterThan(50);
  });
});
