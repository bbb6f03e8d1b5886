// Safetensors reader and writer (format facts: shared/specs/qlora-formats.md §6.1).
// Layout: u64 LE header length N, N bytes of UTF-8 JSON (starts with '{', space padded),
// then the data buffer. The reader validates like the reference Rust library and reads
// tensors from any ByteSource; the writer lays tensors out like the Rust library.
// No DOM or Node APIs: runs in the browser and in Node.

import type { ByteSource } from './byte-source.ts';
import { DTYPE_BITS, canConvertToFloat32, dtypeRank, isDType, toFloat32, type DType } from './dtypes.ts';

export const MAX_HEADER_LENGTH = 100_000_000;

export class SafetensorsError extends Error {
  readonly source: string | undefined;
  constructor(message: string, source?: string) {
    super(source ? `${source}: ${message}` : message);
    this.name = 'SafetensorsError';
    this.source = source;
  }
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the data buffer; `end` is exclusive. */
  begin: number;
  end: number;
  numel: number;
}

export interface SafetensorsHeader {
  headerLength: number;
  /** Absolute file offset of the data buffer: 8 + headerLength. */
  dataStart: number;
  /** In file offset order. */
  tensors: TensorInfo[];
  byName: Map<string, TensorInfo>;
  metadata: Record<string, string> | null;
  /** Bytes of tensor data (the last tensor's end). */
  dataLength: number;
}

const FIELDS = ['dtype', 'shape', 'data_offsets'];

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function tensorLabel(name: string): string {
  return `tensor ${JSON.stringify(name)}`;
}

/** Code point order (= UTF-8 byte order, as Rust and Python sort strings). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // surrogate pairs encode code points above U+FFFF: move them after U+E000..U+FFFF
    x = x >= 0xe000 ? x - 0x800 : x >= 0xd800 ? x + 0x2000 : x;
    y = y >= 0xe000 ? y - 0x800 : y >= 0xd800 ? y + 0x2000 : y;
    return x - y;
  }
  return a.length - b.length;
}

/** Checks a non-negative safe integer; `label` names the field in the error. */
function checkUint(label: string, v: unknown, bad: (m: string) => Error): number {
  if (typeof v !== 'number') throw bad(`${label} must be a non-negative integer, got ${kind(v)}`);
  if (!Number.isInteger(v)) throw bad(`${label} = ${v} is not an integer`);
  if (v < 0) throw bad(`${label} = ${v} is negative`);
  if (!Number.isSafeInteger(v)) throw bad(`${label} = ${v} is too large`);
  return v;
}

/** Element count and byte length of a tensor; throws on overflow or a fractional byte length. */
function sizeOf(where: string, dtype: DType, shape: readonly number[], bad: (m: string) => Error) {
  let numel = 1n;
  for (const d of shape) numel *= BigInt(d);
  const bits = numel * BigInt(DTYPE_BITS[dtype]);
  if (numel > BigInt(Number.MAX_SAFE_INTEGER) || bits / 8n > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw bad(`${where}: shape ${fmtShape(shape)} is too large (numel ${numel} overflows)`);
  }
  if (bits % 8n !== 0n) {
    throw bad(`${where}: ${dtype} ${fmtShape(shape)} has ${numel} elements = ${bits} bits, not a whole number of bytes`);
  }
  return { numel: Number(numel), bytes: Number(bits / 8n) };
}

/**
 * In text that JSON.parse accepted, the first object key that repeats within one object:
 * `path` holds the keys of the enclosing containers below the root ('[]' for arrays).
 */
export function findDuplicateKey(text: string): { path: string[]; key: string } | null {
  interface Frame { keys: Set<string> | null; name: string; expectKey: boolean; last: string }
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: find its end, skipping escapes
      let j = i + 1;
      let escaped = false;
      while (j < text.length && text.charCodeAt(j) !== 0x22) {
        if (text.charCodeAt(j) === 0x5c) { escaped = true; j++; }
        j++;
      }
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (top.keys.has(key)) return { path: stack.slice(1).map((f) => f.name), key };
        top.keys.add(key);
        top.expectKey = false;
        top.last = key;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) { // { or [
      const parent = stack[stack.length - 1];
      const name = parent ? (parent.keys ? parent.last : '[]') : '';
      stack.push({ keys: c === 0x7b ? new Set() : null, name, expectKey: c === 0x7b, last: '' });
    } else if (c === 0x7d || c === 0x5d) { // } or ]
      stack.pop();
    } else if (c === 0x2c) { // ,
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
  }
  return null;
}

/** The u64 LE header length in the first 8 bytes; rejects values above 100,000,000. */
export function readHeaderLength(first8: Uint8Array, source?: string): number {
  if (first8.byteLength < 8) {
    throw new SafetensorsError(`only ${first8.byteLength} bytes, too short for the 8-byte header length`, source);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_LENGTH)) {
    throw new SafetensorsError(`header length ${n} is larger than the limit of ${MAX_HEADER_LENGTH} bytes`, source);
  }
  return Number(n);
}

function describeDuplicate(path: string[], key: string): string {
  const k = JSON.stringify(key);
  if (path.length === 0) return key === '__metadata__' ? 'duplicate "__metadata__" entry' : `duplicate tensor name ${k}`;
  if (path.length === 1 && path[0] === '__metadata__') return `__metadata__: duplicate key ${k}`;
  if (path.length === 1) return `${tensorLabel(path[0])}: duplicate field ${k}`;
  return `duplicate key ${k} in ${path.map((p) => JSON.stringify(p)).join(' > ')}`;
}

function checkMetadata(v: unknown, bad: (m: string) => Error): Record<string, string> | null {
  if (v === null) return null;
  if (kind(v) !== 'object') throw bad(`__metadata__ must be an object of strings, got ${kind(v)}`);
  const meta = v as Record<string, unknown>;
  for (const [k, val] of Object.entries(meta)) {
    if (typeof val !== 'string') throw bad(`__metadata__[${JSON.stringify(k)}] must be a string, got ${kind(val)}`);
  }
  return meta as Record<string, string>;
}

function checkEntry(name: string, v: unknown, bad: (m: string) => Error): TensorInfo {
  const where = tensorLabel(name);
  if (kind(v) !== 'object') throw bad(`${where}: entry must be an object with dtype, shape, data_offsets, got ${kind(v)}`);
  const e = v as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (!FIELDS.includes(k)) throw bad(`${where}: unknown field ${JSON.stringify(k)} (expected dtype, shape, data_offsets)`);
  }
  for (const f of FIELDS) if (!Object.hasOwn(e, f)) throw bad(`${where}: missing field "${f}"`);
  const dtype = e.dtype;
  if (typeof dtype !== 'string') throw bad(`${where}: dtype must be a string, got ${kind(dtype)}`);
  if (!isDType(dtype)) throw bad(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(e.shape)) throw bad(`${where}: shape must be an array of non-negative integers, got ${kind(e.shape)}`);
  const shape = e.shape.map((d, i) => checkUint(`${where}: shape[${i}]`, d, bad));
  const offs = e.data_offsets;
  if (!Array.isArray(offs)) throw bad(`${where}: data_offsets must be an array [begin, end], got ${kind(offs)}`);
  if (offs.length !== 2) throw bad(`${where}: data_offsets must hold 2 integers [begin, end], got ${offs.length}`);
  const begin = checkUint(`${where}: data_offsets[0]`, offs[0], bad);
  const end = checkUint(`${where}: data_offsets[1]`, offs[1], bad);
  if (begin > end) throw bad(`${where}: data_offsets [${begin}, ${end}] have begin > end`);
  const { numel, bytes } = sizeOf(where, dtype, shape, bad);
  if (end - begin !== bytes) {
    throw bad(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${fmtShape(shape)} needs ${bytes}`);
  }
  return { name, dtype, shape, begin, end, numel };
}

/**
 * Parses and validates the header from `bytes`, which must hold at least the first 8+N bytes
 * of the file (a partial download is fine). With `fileLength`, also checks that the data
 * buffer ends exactly at the end of the file.
 */
export function parseHeader(bytes: Uint8Array, opts: { fileLength?: number; source?: string } = {}): SafetensorsHeader {
  const { fileLength, source } = opts;
  const bad = (m: string) => new SafetensorsError(m, source);
  if (fileLength !== undefined && fileLength < 8) throw bad(`file is ${fileLength} bytes, too short for the 8-byte header length`);
  const headerLength = readHeaderLength(bytes, source);
  const dataStart = 8 + headerLength;
  if (fileLength !== undefined && dataStart > fileLength) {
    throw bad(`header length ${headerLength} runs past the end of the ${fileLength}-byte file (truncated header)`);
  }
  if (bytes.byteLength < dataStart) {
    throw bad(`header length ${headerLength} needs ${dataStart} bytes but only ${bytes.byteLength} are available (truncated header)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw bad('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`header is not valid JSON (${String((e as Error)?.message ?? e).slice(0, 120)})`);
  }
  if (kind(json) !== 'object') throw bad(`header must be a JSON object, got ${kind(json)}`);
  if (text.charCodeAt(0) !== 0x7b) throw bad(`header must start with "{", starts with ${JSON.stringify(text[0])}`);
  const dup = findDuplicateKey(text);
  if (dup) throw bad(describeDuplicate(dup.path, dup.key));

  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') metadata = checkMetadata(entry, bad);
    else tensors.push(checkEntry(name, entry, bad));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end || compareCodePoints(a.name, b.name));
  let pos = 0;
  let prev: TensorInfo | null = null;
  for (const t of tensors) {
    if (t.begin !== pos) {
      const where = `${tensorLabel(t.name)}: data_offsets [${t.begin}, ${t.end}]`;
      if (!prev) throw bad(`${where}: the first tensor must start at offset 0`);
      if (t.begin > pos) throw bad(`${where} leave a gap of ${t.begin - pos} bytes after ${tensorLabel(prev.name)} (which ends at ${pos})`);
      throw bad(`${where} overlap ${tensorLabel(prev.name)} [${prev.begin}, ${prev.end}]`);
    }
    pos = t.end;
    prev = t;
  }
  const dataLength = pos;
  if (fileLength !== undefined && dataStart + dataLength !== fileLength) {
    const expected = dataStart + dataLength;
    if (fileLength < expected) {
      throw bad(`file is ${fileLength} bytes but the header describes ${expected} (truncated data: ${expected - fileLength} bytes missing)`);
    }
    throw bad(`file is ${fileLength} bytes but the tensor data ends at ${expected} (${fileLength - expected} trailing bytes)`);
  }
  return { headerLength, dataStart, tensors, byName: new Map(tensors.map((t) => [t.name, t])), metadata, dataLength };
}

// ---- reader -----------------------------------------------------------------------------

export interface SafetensorsReader {
  readonly source: ByteSource;
  readonly header: SafetensorsHeader;
  /** Tensor names in file offset order. */
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The tensor's raw little-endian bytes (for an in-memory source, a view: don't mutate). */
  readBytes(name: string): Promise<Uint8Array>;
  /** The tensor converted to F32 (new memory); see `toFloat32` for the dtypes accepted. */
  readFloat32(name: string): Promise<Float32Array<ArrayBuffer>>;
}

async function readExact(src: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const b = await src.read(offset, length);
  if (b.byteLength !== length) {
    throw new SafetensorsError(`short read: got ${b.byteLength} of ${length} bytes at offset ${offset}`, src.name);
  }
  return b;
}

/** Reads and validates the header of `src`; tensor data is read on demand. */
export async function openSafetensors(src: ByteSource): Promise<SafetensorsReader> {
  if (src.size < 8) throw new SafetensorsError(`file is ${src.size} bytes, too short for the 8-byte header length`, src.name);
  const n = readHeaderLength(await readExact(src, 0, 8), src.name);
  if (8 + n > src.size) {
    throw new SafetensorsError(`header length ${n} runs past the end of the ${src.size}-byte file (truncated header)`, src.name);
  }
  const header = parseHeader(await readExact(src, 0, 8 + n), { fileLength: src.size, source: src.name });
  const info = (name: string): TensorInfo => {
    const t = header.byName.get(name);
    if (!t) throw new SafetensorsError(`${tensorLabel(name)} not found (the file has ${header.tensors.length} tensors)`, src.name);
    return t;
  };
  const readBytes = async (name: string) => {
    const t = info(name);
    return readExact(src, header.dataStart + t.begin, t.end - t.begin);
  };
  return {
    source: src,
    header,
    names: () => header.tensors.map((t) => t.name),
    has: (name) => header.byName.has(name),
    info,
    readBytes,
    async readFloat32(name) {
      const t = info(name);
      if (!canConvertToFloat32(t.dtype)) {
        throw new SafetensorsError(`${tensorLabel(name)}: cannot convert ${t.dtype} to F32`, src.name);
      }
      return toFloat32(t.dtype, await readBytes(name));
    },
  };
}

// ---- writer -----------------------------------------------------------------------------

export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

export interface PlannedTensor extends TensorInfo {
  /** Absolute file offset of the tensor's first byte (dataStart + begin). */
  offset: number;
}

export interface SafetensorsPlan {
  /** The file's first bytes: the u64 LE length and the space-padded JSON header. */
  header: Uint8Array<ArrayBuffer>;
  headerLength: number;
  dataStart: number;
  /** Size of the whole file. */
  totalSize: number;
  /** In layout order: by dtype alignment (descending), then name. */
  tensors: PlannedTensor[];
}

/**
 * Lays out a file like the Rust library: tensors sorted by dtype alignment (descending) then
 * name, `__metadata__` first in the header, header padded with spaces to a multiple of 8.
 * Write `plan.header`, then each tensor's bytes at its `offset`, to produce the file piecewise.
 */
export function planSafetensors(specs: readonly TensorSpec[], metadata?: Record<string, string> | null): SafetensorsPlan {
  const bad = (m: string) => new SafetensorsError(m);
  const seen = new Set<string>();
  const sized = specs.map((s) => {
    const where = tensorLabel(String(s.name));
    if (typeof s.name !== 'string') throw bad(`tensor name must be a string, got ${kind(s.name)}`);
    if (s.name === '__metadata__') throw bad(`${where}: "__metadata__" is reserved`);
    if (seen.has(s.name)) throw bad(`duplicate tensor name ${JSON.stringify(s.name)}`);
    seen.add(s.name);
    if (!isDType(s.dtype)) throw bad(`${where}: unknown dtype ${JSON.stringify(s.dtype)}`);
    if (!Array.isArray(s.shape)) throw bad(`${where}: shape must be an array, got ${kind(s.shape)}`);
    const shape = s.shape.map((d, i) => checkUint(`${where}: shape[${i}]`, d, bad));
    return { name: s.name, dtype: s.dtype, shape, ...sizeOf(where, s.dtype, shape, bad) };
  });
  sized.sort((a, b) => dtypeRank(b.dtype) - dtypeRank(a.dtype) || compareCodePoints(a.name, b.name));

  const entries: string[] = [];
  if (metadata) {
    checkMetadata(metadata, (m) => bad(`metadata: ${m}`));
    entries.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let pos = 0;
  const infos = sized.map((s) => {
    const t = { name: s.name, dtype: s.dtype, shape: s.shape, begin: pos, end: pos + s.bytes, numel: s.numel };
    pos = t.end;
    entries.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":${JSON.stringify(t.shape)},"data_offsets":[${t.begin},${t.end}]}`);
    return t;
  });
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const headerLength = json.byteLength + ((8 - (json.byteLength % 8)) % 8);
  if (headerLength > MAX_HEADER_LENGTH) throw bad(`header of ${headerLength} bytes exceeds the ${MAX_HEADER_LENGTH}-byte limit`);
  const header = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerLength), true);
  header.set(json, 8);
  const dataStart = 8 + headerLength;
  if (!Number.isSafeInteger(dataStart + pos)) throw bad(`total size ${dataStart + pos} is too large`);
  return {
    header,
    headerLength,
    dataStart,
    totalSize: dataStart + pos,
    tensors: infos.map((t) => ({ ...t, offset: dataStart + t.begin })),
  };
}

export interface TensorData extends TensorSpec {
  /** Raw little-endian bytes (a typed array's memory is taken as is). */
  data: Uint8Array | ArrayBufferView;
}

function asBytes(v: Uint8Array | ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Writes a whole safetensors file in memory. */
export function writeSafetensors(tensors: readonly TensorData[], metadata?: Record<string, string> | null): Uint8Array<ArrayBuffer> {
  const plan = planSafetensors(tensors, metadata);
  const data = new Map(tensors.map((t) => [t.name, t.data]));
  const out = new Uint8Array(plan.totalSize);
  out.set(plan.header);
  for (const t of plan.tensors) {
    const v = data.get(t.name);
    if (!v || !ArrayBuffer.isView(v)) throw new SafetensorsError(`${tensorLabel(t.name)}: data must be a Uint8Array or ArrayBufferView`);
    const bytes = asBytes(v);
    if (bytes.byteLength !== t.end - t.begin) {
      throw new SafetensorsError(`${tensorLabel(t.name)}: data has ${bytes.byteLength} bytes but ${t.dtype} ${fmtShape(t.shape)} needs ${t.end - t.begin}`);
    }
    out.set(bytes, t.offset);
  }
  return out;
}
