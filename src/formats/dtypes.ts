// Safetensors dtypes: the dtype table (bit sizes, writer alignment order) and conversions
// between f16 / bf16 / f32 bit patterns, plus `toFloat32` for raw little-endian tensor bytes.
// Pure TypeScript: runs in the browser and in Node. Never builds a typed array view at an
// unaligned byte offset (it copies first).

/** Every safetensors dtype string, in the Rust enum's declaration (= alignment) order. */
export const DTYPES = [
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0',
  'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32',
  'C64', 'F64', 'I64', 'U64',
] as const;

export type DType = (typeof DTYPES)[number];

/** Size of one element in bits. */
export const DTYPE_BITS: Readonly<Record<DType, number>> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32,
  F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
};

const RANK = new Map<string, number>(DTYPES.map((d, i) => [d, i]));

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && RANK.has(s);
}

/** Position in the alignment order (the writer lays out higher ranks first). */
export function dtypeRank(d: DType): number {
  return RANK.get(d)!;
}

/** Byte length of `numel` elements; throws RangeError when it is not a whole number of bytes. */
export function dtypeByteLength(dtype: DType, numel: number): number {
  const bits = numel * DTYPE_BITS[dtype];
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) {
    throw new RangeError(`${dtype}: ${numel} elements are ${bits} bits, not a whole number of bytes`);
  }
  return bits / 8;
}

// ---- scalar bit conversions -------------------------------------------------------------

const scratch = new DataView(new ArrayBuffer(4));

function f32Bits(x: number): number {
  scratch.setFloat32(0, x);
  return scratch.getUint32(0);
}

function bitsF32(b: number): number {
  scratch.setUint32(0, b >>> 0);
  return scratch.getFloat32(0);
}

/** f16 bit pattern → f32 bit pattern (exact; NaN payload kept). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalise the mantissa
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) { m <<= 1; e--; }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

export function f16ToF32(h: number): number {
  return bitsF32(f16BitsToF32Bits(h & 0xffff));
}

export function bf16ToF32(b: number): number {
  return bitsF32((b & 0xffff) << 16);
}

/** f32 value → f16 bit pattern, round-to-nearest-even; overflow → ±inf, NaN stays NaN. */
export function f32ToF16(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1))) m++;
    return sign | m; // m may carry into the smallest normal: still the right encoding
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry up to inf: correct
  return sign | h;
}

/** f32 value → bf16 bit pattern, round-to-nearest-even; NaN stays NaN (quiet bit set). */
export function f32ToBf16(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---- array conversions ------------------------------------------------------------------

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let f16Table: Float32Array | null = null;
function f16Lut(): Float32Array {
  if (!f16Table) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
    f16Table = new Float32Array(bits.buffer);
  }
  return f16Table;
}

function checkMultiple(bytes: Uint8Array, size: number, what: string): number {
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${what}: ${bytes.byteLength} bytes is not a multiple of ${size}`);
  }
  return bytes.byteLength / size;
}

/** A copy of `bytes` at offset 0 of a fresh buffer (always aligned). */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  // Not bytes.slice(): on a Node Buffer that is a view of the shared pool, not a copy.
  return new Uint8Array(bytes).buffer;
}

/** Little-endian f16 bytes → Float32Array (new memory). */
export function f16BytesToF32(bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const n = checkMultiple(bytes, 2, 'F16');
  const out = new Float32Array(n);
  const lut = f16Lut();
  if (LITTLE_ENDIAN) {
    const h = new Uint16Array(alignedCopy(bytes));
    for (let i = 0; i < n; i++) out[i] = lut[h[i]];
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = lut[dv.getUint16(2 * i, true)];
  }
  return out;
}

/** Little-endian bf16 bytes → Float32Array (new memory). */
export function bf16BytesToF32(bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const n = checkMultiple(bytes, 2, 'BF16');
  const out = new Uint32Array(n);
  if (LITTLE_ENDIAN) {
    const h = new Uint16Array(alignedCopy(bytes));
    for (let i = 0; i < n; i++) out[i] = h[i] << 16;
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true) << 16;
  }
  return new Float32Array(out.buffer);
}

/** Float32Array → little-endian f16 bytes (RNE). */
export function f32ToF16Bytes(values: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint16(2 * i, f32ToF16(values[i]), true);
  return out;
}

/** Float32Array → little-endian bf16 bytes (RNE). */
export function f32ToBf16Bytes(values: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setUint16(2 * i, f32ToBf16(values[i]), true);
  return out;
}

type Getter = (dv: DataView, offset: number) => number;

const GETTERS: Partial<Record<DType, [number, Getter]>> = {
  BOOL: [1, (dv, o) => (dv.getUint8(o) ? 1 : 0)],
  U8: [1, (dv, o) => dv.getUint8(o)],
  I8: [1, (dv, o) => dv.getInt8(o)],
  I16: [2, (dv, o) => dv.getInt16(o, true)],
  U16: [2, (dv, o) => dv.getUint16(o, true)],
  I32: [4, (dv, o) => dv.getInt32(o, true)],
  U32: [4, (dv, o) => dv.getUint32(o, true)],
  F32: [4, (dv, o) => dv.getFloat32(o, true)],
  F64: [8, (dv, o) => dv.getFloat64(o, true)],
  I64: [8, (dv, o) => Number(dv.getBigInt64(o, true))],
  U64: [8, (dv, o) => Number(dv.getBigUint64(o, true))],
};

/** Dtypes that `toFloat32` accepts. */
export function canConvertToFloat32(dtype: DType): boolean {
  return dtype === 'F16' || dtype === 'BF16' || GETTERS[dtype] !== undefined;
}

/**
 * Raw little-endian tensor bytes → Float32Array (always new memory, never a view of `bytes`).
 * Accepts F32, F16, BF16, F64, BOOL, I8, U8, I16, U16, I32, U32, I64, U64 at any byte offset.
 */
export function toFloat32(dtype: DType, bytes: Uint8Array): Float32Array<ArrayBuffer> {
  if (dtype === 'F16') return f16BytesToF32(bytes);
  if (dtype === 'BF16') return bf16BytesToF32(bytes);
  const entry = GETTERS[dtype];
  if (!entry) throw new TypeError(`toFloat32: cannot convert ${dtype} to F32`);
  const [size, get] = entry;
  const n = checkMultiple(bytes, size, dtype);
  if (LITTLE_ENDIAN && dtype === 'F32') return new Float32Array(alignedCopy(bytes), 0, n);
  if (LITTLE_ENDIAN && dtype === 'U8') return Float32Array.from(bytes);
  if (LITTLE_ENDIAN && dtype === 'I8') return Float32Array.from(new Int8Array(alignedCopy(bytes)));
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = get(dv, i * size);
  return out;
}
