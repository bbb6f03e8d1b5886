// GPU quantization and dequantization of bitsandbytes 4-bit tensors (NF4 / FP4, plain or double-quantized
// absmax), bit-exact with the CPU reference in src/quant (the CUDA rules of spec §1–§2).
// Kernels: shaders/quant4.wgsl. Packed bytes live on the GPU as little-endian u32 words: byte k of the
// bnb packed array is byte (k % 4) of word k / 4; buffers are zero padded to whole words.
//
// Subnormals: `ftz` (default true) flushes subnormal inputs and results to zero like bnb's CUDA build
// (--use_fast_math), the CPU reference's default; ftz: false gives IEEE subnormals (the reference's ftz: false).
//
// Double quantization (absmax -> u8 codes + nested absmax + offset) runs on the CPU (src/quant's
// doubleQuantize) from the GPU's absmax: its offset is a mean over all blocks whose f32 result depends on
// the summation order, and the CPU reference defines that order. It touches only n/blocksize values.

import { grid, usesCpuKernels, type GpuRuntime } from '../../gpu/runtime.ts';
import { ALLOWED_BLOCKSIZES } from '../blockwise4.ts';
import { dynamicMap256, FP4_DEQUANT_LUT, FP4_THRESHOLDS, NF4_CODE, NF4_THRESHOLDS, type QuantType } from '../codes.ts';
import { doubleQuantize, NESTED_BLOCKSIZE, rebuildAbsmax } from '../double-quant.ts';

export const QUANT4_SHADER = 'quant4';
const QWG = 64;
const DWG = 64;

/** A bnb 4-bit tensor on the CPU (src/quant's `Quantized4` fits this shape). */
export interface Quant4Data {
  type: QuantType;
  blocksize: number;
  /** Element count; defaults to the product of `shape`. */
  n?: number;
  shape?: readonly number[];
  /** ceil(n/2) bytes, element 2k in the high nibble of byte k. */
  packed: Uint8Array;
  /** f32 absmax per block, or null when double-quantized. */
  absmax: Float32Array | null;
  nested?: null | {
    qabsmax: Uint8Array;
    nestedAbsmax: Float32Array;
    offset: number;
    nestedMap: Float32Array;
    nestedBlocksize?: number;
  };
}

/** Double-quantized absmax on the GPU. */
export interface GpuNestedAbsmax {
  /** u8 codes, 4 per u32 word (little-endian). */
  qabsmax: GPUBuffer;
  /** f32 nested absmax, one per `nestedBlocksize` blocks. */
  nestedAbsmax: GPUBuffer;
  /** f32 offset (already rounded to f32). */
  offset: number;
  /** The 256-entry f32 map. */
  map: GPUBuffer;
  nestedBlocksize: number;
}

/** A bnb 4-bit tensor resident on the GPU. */
export interface GpuQuant4 {
  type: QuantType;
  n: number;
  blocksize: number;
  /** ceil(n/8) u32 words holding the ceil(n/2) packed bytes, zero padded. */
  packed: GPUBuffer;
  /** f32 absmax per block (plain), or null when `nested` is set. */
  absmax: GPUBuffer | null;
  nested: GpuNestedAbsmax | null;
  /** The byte-pair code table used to dequantize: 256 × (code[b >> 4], code[b & 15]) f32 (2 KB). */
  lut: GPUBuffer;
  /** The 16 code values behind `lut`. */
  codeValues: Float32Array;
  /**
   * Whether every (rebuilt) absmax is finite and large enough that no code * absmax is subnormal, so the
   * fast floating-point dequantizer is exact; false selects the integer one. Known from the values at
   * upload; false after gpuQuantize4 until gpuCheckAbsmax (or gpuDoubleQuantize) has looked.
   */
  absmaxSafe: boolean;
}

/** The table CUDA's dequantizer uses for a type (FP4 index 8 is -0). */
export function defaultDequantCode(type: QuantType): Float32Array {
  return new Float32Array(type === 'nf4' ? NF4_CODE : FP4_DEQUANT_LUT);
}

export function log2Exact(v: number, what: string): number {
  const l = Math.log2(v);
  if (!Number.isInteger(l)) throw new Error(`${what} ${v} is not a power of two`);
  return l;
}

function checkBlocksize(bs: number): void {
  if (!ALLOWED_BLOCKSIZES.includes(bs)) {
    throw new Error(`blocksize ${bs} is not supported (expected one of ${ALLOWED_BLOCKSIZES.join(', ')})`);
  }
}

/**
 * The byte-pair table of a 16-entry code table: entry b = (code[b >> 4], code[b & 15]), the two values a
 * packed byte b decodes to (high nibble first). Entry c < 16 has code[c] as its second value.
 */
export function bytePairTable(code: Float32Array): Float32Array {
  if (code.length !== 16) throw new Error(`a 4-bit code table has 16 entries, got ${code.length}`);
  const t = new Float32Array(512);
  for (let b = 0; b < 256; b++) {
    t[2 * b] = code[b >> 4]!;
    t[2 * b + 1] = code[b & 15]!;
  }
  return t;
}

/** Uploads the byte-pair table of a code table (storage buffer, 2 KB). */
export function uploadCodeTable(rt: GpuRuntime, code: Float32Array): GPUBuffer {
  return rt.upload(bytePairTable(code), 'quant4-code-table');
}

/** A 256-entry map as a storage buffer. */
export function uploadMap(rt: GpuRuntime, map: Float32Array): GPUBuffer {
  if (map.length !== 256) throw new Error(`the nested map has 256 entries, got ${map.length}`);
  return rt.upload(map, 'quant4-nested-map');
}

/**
 * Whether the inline floating-point rebuild f32(f32(map[q] * nested) + offset) is exact: every product
 * normal or zero (so no flush can apply), and the rebuilt absmax safe for the code table.
 */
export function nestedIsSafe(
  qabsmax: Uint8Array,
  nestedAbsmax: Float32Array,
  offset: number,
  map: Float32Array,
  nestedBlocksize: number,
  code: Float32Array,
): boolean {
  const p = new Float32Array(1);
  const pb = new Uint32Array(p.buffer);
  for (let b = 0; b < qabsmax.length; b++) {
    p[0] = map[qabsmax[b]!]! * nestedAbsmax[Math.floor(b / nestedBlocksize)]!;
    const e = (pb[0]! >>> 23) & 0xff;
    if ((pb[0]! & 0x7fffffff) !== 0 && (e === 0 || e === 255)) return false;
  }
  return absmaxIsSafe(rebuildAbsmax(qabsmax, nestedAbsmax, offset, map, nestedBlocksize, false), code);
}

/** Whether the fast float dequantizer is exact for these absmax values and code table (see GpuQuant4). */
export function absmaxIsSafe(absmax: Float32Array, code: Float32Array): boolean {
  const safeExp = safeAbsmaxExponent(code);
  const u = new Uint32Array(absmax.buffer, absmax.byteOffset, absmax.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i]!;
    if ((b & 0x7fffffff) === 0) continue; // +-0: code * 0 is a zero either way
    const e = (b >>> 23) & 0xff;
    if (e < safeExp || e === 255) return false;
  }
  return true;
}

/** Uploads a CPU 4-bit tensor once. `code` overrides the dequantization table (default: CUDA's). */
export function uploadQuant4(rt: GpuRuntime, q: Quant4Data, opts: { code?: Float32Array } = {}): GpuQuant4 {
  checkBlocksize(q.blocksize);
  const n = q.n ?? (q.shape ? q.shape.reduce((a, b) => a * b, 1) : NaN);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('uploadQuant4: give n or shape');
  const nb = Math.ceil(n / q.blocksize);
  if (q.packed.length < (n + 1) >> 1) throw new Error(`packed has ${q.packed.length} bytes, need ${(n + 1) >> 1}`);
  const packedBytes = new Uint8Array(Math.max(4, Math.ceil(n / 8) * 4));
  packedBytes.set(q.packed.subarray(0, (n + 1) >> 1));
  const codeValues = new Float32Array(opts.code ?? defaultDequantCode(q.type));
  let absmax: GPUBuffer | null = null;
  let nested: GpuNestedAbsmax | null = null;
  let absmaxSafe: boolean;
  if (q.nested) {
    const nbs = q.nested.nestedBlocksize ?? NESTED_BLOCKSIZE;
    log2Exact(nbs, 'nested blocksize');
    if (q.nested.qabsmax.length < nb) throw new Error(`qabsmax has ${q.nested.qabsmax.length} codes, need ${nb}`);
    if (q.nested.nestedAbsmax.length < Math.ceil(nb / nbs)) throw new Error('nested absmax is too short');
    nested = {
      qabsmax: rt.upload(q.nested.qabsmax.subarray(0, nb), 'quant4-qabsmax'),
      nestedAbsmax: rt.upload(q.nested.nestedAbsmax, 'quant4-nested-absmax'),
      offset: Math.fround(q.nested.offset),
      map: uploadMap(rt, q.nested.nestedMap),
      nestedBlocksize: nbs,
    };
    absmaxSafe = nestedIsSafe(
      q.nested.qabsmax.subarray(0, nb),
      q.nested.nestedAbsmax.subarray(0, Math.ceil(nb / nbs)),
      q.nested.offset,
      q.nested.nestedMap,
      nbs,
      codeValues,
    );
  } else {
    if (!q.absmax || q.absmax.length < nb) throw new Error(`absmax needs ${nb} entries`);
    absmax = rt.upload(q.absmax.subarray(0, nb), 'quant4-absmax');
    absmaxSafe = absmaxIsSafe(q.absmax.subarray(0, nb), codeValues);
  }
  return {
    type: q.type,
    n,
    blocksize: q.blocksize,
    packed: rt.upload(packedBytes, 'quant4-packed'),
    absmax,
    nested,
    lut: uploadCodeTable(rt, codeValues),
    codeValues,
    absmaxSafe,
  };
}

export function destroyQuant4(t: GpuQuant4): void {
  t.packed.destroy();
  t.absmax?.destroy();
  t.lut.destroy();
  if (t.nested) {
    t.nested.qabsmax.destroy();
    t.nested.nestedAbsmax.destroy();
    t.nested.map.destroy();
  }
}

/**
 * The smallest biased exponent of absmax for which code*absmax cannot be subnormal (so a plain f32
 * multiply is exact even where the GPU flushes subnormals); smaller absmax take the integer path.
 */
export function safeAbsmaxExponent(code: Float32Array): number {
  let minAbs = Infinity;
  for (const c of code) if (c !== 0 && Math.abs(c) < minAbs) minAbs = Math.abs(c);
  if (minAbs === Infinity) return 1;
  if (minAbs < 2 ** -126) return 256; // subnormal codes: always the exact integer path
  const ec = Math.floor(Math.log2(minAbs));
  return Math.max(1, 2 - ec);
}

/**
 * Dequantizes on the GPU: f32 out[i] = ftz(code[nibble(i)] * absmax[i / blocksize]), bit-exact with
 * dequantize4bit (ftz: false = IEEE). A double-quantized absmax is rebuilt first (bit-exact with
 * rebuildAbsmax). The output holds ceil(n/8)*8 floats (the tail past n is padding); pass `out` to reuse.
 */
export function gpuDequantize4(rt: GpuRuntime, t: GpuQuant4, out?: GPUBuffer, opts: { ftz?: boolean; exact?: boolean } = {}): GPUBuffer {
  const nWords = Math.ceil(t.n / 8);
  const bytes = Math.max(32, nWords * 32);
  const dst = out ?? rt.create(bytes, 'dequant4-out');
  if (dst.size < bytes) throw new Error(`gpuDequantize4: out has ${dst.size} bytes, needs ${bytes}`);
  if (nWords === 0) return dst;
  const fast = t.absmaxSafe && !opts.exact;
  const nested = t.nested;
  const [gx, gy] = grid(rt, Math.ceil(nWords / DWG));
  const params = rt.uniform(
    [
      nWords,
      log2Exact(t.blocksize / 8, 'blocksize/8'),
      gx * DWG,
      opts.ftz === false ? 0 : 1,
      nested ? nested.offset : 0,
      0,
      nested ? log2Exact(nested.nestedBlocksize, 'nested blocksize') : 8,
    ],
    'uuuufuu',
  );
  // GPUs: one dispatch with the rebuild inline. CPU implementations: the exact rebuild pass first (3 extra
  // loads per word cost 2x there), then the plain kernel.
  if (nested && fast && !usesCpuKernels(rt)) {
    rt.dispatch(QUANT4_SHADER, 'dequant4_dq', [params, t.lut, t.packed, nested.qabsmax, dst, nested.nestedAbsmax, nested.map], [gx, gy], {
      DWG,
    });
    return dst;
  }
  let absmax = t.absmax;
  let pooled: GPUBuffer | null = null;
  if (nested) {
    pooled = rt.pool.acquire(Math.ceil(t.n / t.blocksize) * 4, 'dequant4-absmax');
    absmax = gpuRebuildAbsmax(rt, t, pooled, opts);
  }
  rt.dispatch(QUANT4_SHADER, fast ? 'dequant4' : 'dequant4_exact', [params, t.lut, t.packed, absmax!, dst], [gx, gy], { DWG });
  // later work in the same command stream may reuse the pooled buffer: it runs after this dispatch
  if (pooled) rt.pool.release(pooled);
  return dst;
}

/** Rebuilds the f32 absmax of a double-quantized tensor on the GPU (bit-exact with rebuildAbsmax). */
export function gpuRebuildAbsmax(rt: GpuRuntime, t: GpuQuant4, out?: GPUBuffer, opts: { ftz?: boolean } = {}): GPUBuffer {
  if (!t.nested) throw new Error('gpuRebuildAbsmax: the tensor is not double-quantized');
  const nb = Math.ceil(t.n / t.blocksize);
  const dst = out ?? rt.create(nb * 4, 'absmax-f32');
  const [gx, gy] = grid(rt, Math.ceil(nb / DWG));
  const params = rt.uniform(
    [nb, gx * DWG, opts.ftz === false ? 0 : 1, t.nested.offset, log2Exact(t.nested.nestedBlocksize, 'nested blocksize')],
    'uuufu',
  );
  rt.dispatch(QUANT4_SHADER, 'rebuild_absmax_f32', [params, t.nested.qabsmax, t.nested.nestedAbsmax, t.nested.map, dst], [gx, gy], {
    DWG,
  });
  return dst;
}

export interface Quantize4Options {
  type: QuantType;
  blocksize?: number;
  /** Flush subnormals like CUDA fast math (default true); false: IEEE. */
  ftz?: boolean;
}

/**
 * Quantizes n f32 values (a GPU buffer) to bnb 4-bit with plain f32 absmax, bit-exact with src/quant's
 * quantize4bit (the CUDA rules). One workgroup of 64 threads per block (or per 512/blocksize blocks).
 */
export function gpuQuantize4(rt: GpuRuntime, src: GPUBuffer, n: number, opts: Quantize4Options): GpuQuant4 {
  const bs = opts.blocksize ?? 64;
  checkBlocksize(bs);
  if (src.size < n * 4) throw new Error(`gpuQuantize4: source has ${src.size} bytes, needs ${n * 4}`);
  const nWords = Math.ceil(n / 8);
  const nb = Math.ceil(n / bs);
  const wpb = bs / 8;
  const tpb = Math.min(QWG, wpb);
  const bpw = QWG / tpb;
  const packed = rt.create(Math.max(4, nWords * 4), 'quant4-packed');
  const absmax = rt.create(Math.max(4, nb * 4), 'quant4-absmax');
  const codeValues = defaultDequantCode(opts.type);
  if (nb > 0) {
    const [gx, gy] = grid(rt, Math.ceil(nb / bpw));
    const params = rt.uniform([
      n,
      nWords,
      nb,
      wpb,
      tpb,
      gx,
      opts.type === 'nf4' ? 0 : 1,
      opts.ftz === false ? 0 : 1,
      bs,
      0,
      0,
      0,
      ...thresholdWords(),
    ]);
    rt.dispatch(QUANT4_SHADER, 'quantize4', [params, src, packed, absmax], [gx, gy], { QWG });
  }
  return {
    type: opts.type,
    n,
    blocksize: bs,
    packed,
    absmax,
    nested: null,
    lut: uploadCodeTable(rt, codeValues),
    codeValues,
    absmaxSafe: false,
  };
}

/**
 * Reads back the absmax of a GPU-quantized tensor and records whether the fast dequantizer is exact for it
 * (see GpuQuant4.absmaxSafe). Returns the flag.
 */
export async function gpuCheckAbsmax(rt: GpuRuntime, t: GpuQuant4): Promise<boolean> {
  const nb = Math.ceil(t.n / t.blocksize);
  if (nb === 0) return (t.absmaxSafe = true);
  if (t.absmax) {
    t.absmaxSafe = absmaxIsSafe(await rt.readF32(t.absmax, nb), t.codeValues);
  } else {
    const nd = t.nested!;
    const qabsmax = new Uint8Array(await rt.read(nd.qabsmax, Math.ceil(nb / 4) * 4)).slice(0, nb);
    const nestedAbsmax = await rt.readF32(nd.nestedAbsmax, Math.ceil(nb / nd.nestedBlocksize));
    const map = await rt.readF32(nd.map, 256);
    t.absmaxSafe = nestedIsSafe(qabsmax, nestedAbsmax, nd.offset, map, nd.nestedBlocksize, t.codeValues);
  }
  return t.absmaxSafe;
}

let thresholdCache: number[] | null = null;
/** The NF4 (15, padded to 16) and FP4 (7, padded to 8) thresholds of src/quant/codes.ts as f32 bits. */
function thresholdWords(): number[] {
  if (!thresholdCache) {
    const bits = (a: Float32Array) => Array.from(new Uint32Array(new Float32Array(a).buffer));
    const nf4 = bits(NF4_THRESHOLDS);
    const fp4 = bits(FP4_THRESHOLDS);
    if (nf4.length !== 15 || fp4.length !== 7) throw new Error('unexpected threshold tables in src/quant/codes.ts');
    thresholdCache = [...nf4, 0x7f800000, ...fp4, 0x7f800000];
  }
  return thresholdCache;
}

/**
 * Double-quantizes the absmax of a GPU-quantized tensor (on the CPU, see the header) and returns the
 * tensor with nested absmax; the plain absmax buffer is destroyed. Bit-exact with quantizeLinear's path.
 */
export async function gpuDoubleQuantize(
  rt: GpuRuntime,
  t: GpuQuant4,
  opts: { offset?: number; map?: Float32Array; ftz?: boolean } = {},
): Promise<GpuQuant4> {
  if (!t.absmax) throw new Error('gpuDoubleQuantize: the tensor is already double-quantized');
  const nb = Math.ceil(t.n / t.blocksize);
  const absmax = await rt.readF32(t.absmax, nb);
  const map = opts.map ?? dynamicMap256();
  const dq = doubleQuantize(absmax, { offset: opts.offset, map, ftz: opts.ftz });
  t.absmax.destroy();
  return {
    ...t,
    absmaxSafe: nestedIsSafe(dq.qabsmax, dq.nestedAbsmax, dq.offset, map, dq.nestedBlocksize, t.codeValues),
    absmax: null,
    nested: {
      qabsmax: rt.upload(dq.qabsmax, 'quant4-qabsmax'),
      nestedAbsmax: rt.upload(dq.nestedAbsmax, 'quant4-nested-absmax'),
      offset: dq.offset,
      map: uploadMap(rt, map),
      nestedBlocksize: dq.nestedBlocksize,
    },
  };
}

/** Reads a GPU 4-bit tensor back: packed bytes (ceil(n/2)) and the f32 absmax (rebuilt if nested). */
export async function readQuant4(rt: GpuRuntime, t: GpuQuant4, opts: { ftz?: boolean } = {}): Promise<{ packed: Uint8Array; absmax: Float32Array }> {
  const nb = Math.ceil(t.n / t.blocksize);
  const words = Math.max(1, Math.ceil(t.n / 8));
  const packed = new Uint8Array(await rt.read(t.packed, words * 4)).slice(0, (t.n + 1) >> 1);
  let absmax: Float32Array;
  if (t.absmax) {
    absmax = nb ? await rt.readF32(t.absmax, nb) : new Float32Array(0);
  } else {
    const buf = gpuRebuildAbsmax(rt, t, undefined, opts);
    absmax = nb ? await rt.readF32(buf, nb) : new Float32Array(0);
    buf.destroy();
  }
  return { packed, absmax };
}

/** Reads the first n floats of a dequantized buffer. */
export async function readDequantized(rt: GpuRuntime, buf: GPUBuffer, n: number): Promise<Float32Array> {
  if (n === 0) return new Float32Array(0);
  return rt.readF32(buf, n);
}
