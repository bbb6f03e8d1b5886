// Tests for the safetensors reader and writer: round trips of every dtype, an independent
// decode of written files, unaligned tensors, the real stories260K checkpoint (from ../shared),
// malformed files (each with its own message) and a seeded fuzz of byte flips and truncations.
import { describe, it, expect } from 'vitest';
import { existsSync, openAsBlob } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobSource, bytesSource, type ByteSource } from './byte-source.ts';
import { DTYPES, DTYPE_BITS, canConvertToFloat32, f32ToBf16Bytes, f32ToF16Bytes, type DType } from './dtypes.ts';
import {
  SafetensorsError, findDuplicateKey, openSafetensors, parseHeader, planSafetensors, readHeaderLength,
  writeSafetensors, type TensorData,
} from './safetensors.ts';

const enc = new TextEncoder();

/** A file from raw header bytes (or text) and data; `length` overrides the u64 header length. */
function build(header: string | Uint8Array, data: Uint8Array | number = 0, length?: bigint): Uint8Array {
  const h = typeof header === 'string' ? enc.encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

/** A file from a header object (serialized with JSON.stringify) and `data` bytes of data. */
function buildJson(header: unknown, data: number): Uint8Array {
  return build(JSON.stringify(header), data);
}

function f32(shape: number[], begin: number, end: number) {
  return { dtype: 'F32', shape, data_offsets: [begin, end] };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Element count making a whole number of bytes for `dtype` (F4 needs even, F6 multiples of 4). */
function shapeFor(dtype: DType): number[] {
  return DTYPE_BITS[dtype] % 8 === 0 ? [2, 3] : [4, 3];
}

describe('writer → reader round trip', () => {
  const tensors: TensorData[] = [];
  DTYPES.forEach((dtype, i) => {
    const shape = shapeFor(dtype);
    const bytes = (shape[0] * shape[1] * DTYPE_BITS[dtype]) / 8;
    tensors.push({ name: `t.${dtype.toLowerCase()}`, dtype, shape, data: randomBytes(bytes, i + 1) });
    tensors.push({ name: `zero.${dtype}`, dtype, shape: [0, 5], data: new Uint8Array(0) });
    if (DTYPE_BITS[dtype] % 8 === 0) {
      tensors.push({ name: `scalar.${dtype}`, dtype, shape: [], data: randomBytes(DTYPE_BITS[dtype] / 8, 100 + i) });
    }
  });
  const metadata = { format: 'pt', note: 'ünïcode ✓ 😀', empty: '' };
  const file = writeSafetensors(tensors, metadata);

  it('reads back every dtype with the same bytes and shapes (incl. 0-rank and zero-size) and metadata', async () => {
    const r = await openSafetensors(bytesSource(file, 'rt.safetensors'));
    expect(r.names().length).toBe(tensors.length);
    expect(r.header.metadata).toEqual(metadata);
    for (const t of tensors) {
      const info = r.info(t.name);
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual(t.shape);
      expect(info.numel).toBe(t.shape.reduce((a, b) => a * b, 1));
      expect(await r.readBytes(t.name)).toEqual(t.data);
    }
    expect(r.info('scalar.F32').shape).toEqual([]);
    expect(r.info('zero.F16').numel).toBe(0);
  });

  it('lays tensors out by dtype alignment (descending) then name, naturally aligned', () => {
    const h = parseHeader(file);
    const ranks = h.tensors.map((t) => DTYPES.indexOf(t.dtype));
    for (let i = 1; i < ranks.length; i++) {
      expect(ranks[i]).toBeLessThanOrEqual(ranks[i - 1]);
      if (ranks[i] === ranks[i - 1]) expect(h.tensors[i].name > h.tensors[i - 1].name).toBe(true);
    }
    expect(h.tensors[0].dtype).toBe('U64');
    expect(h.dataStart % 8).toBe(0);
    for (const t of h.tensors) {
      const elem = Math.max(1, DTYPE_BITS[t.dtype] / 8);
      expect((h.dataStart + t.begin) % elem).toBe(0);
    }
  });

  it('parses written files a second, independent way (DataView + JSON.parse)', () => {
    const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
    const n = Number(dv.getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(file.subarray(8, 8 + n));
    expect(text.startsWith('{"__metadata__":{')).toBe(true);
    expect(text.slice(text.lastIndexOf('}') + 1)).toMatch(/^ {0,7}$/); // only trailing space padding
    const json = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(json.__metadata__).toEqual(metadata);
    let total = 0;
    for (const t of tensors) {
      const e = json[t.name];
      expect(Object.keys(e)).toEqual(['dtype', 'shape', 'data_offsets']);
      expect(e.dtype).toBe(t.dtype);
      expect(e.shape).toEqual(t.shape);
      const [b, end] = e.data_offsets;
      expect(file.subarray(8 + n + b, 8 + n + end)).toEqual(t.data);
      total += end - b;
    }
    expect(8 + n + total).toBe(file.length);
  });

  it('writes an empty file and metadata-only file', async () => {
    const empty = writeSafetensors([]);
    expect(new TextDecoder().decode(empty.subarray(8))).toBe('{}      ');
    const r = await openSafetensors(bytesSource(empty));
    expect(r.names()).toEqual([]);
    expect(r.header.metadata).toBeNull();
    const meta = parseHeader(writeSafetensors([], { a: 'b' }));
    expect(meta.metadata).toEqual({ a: 'b' });
    expect(meta.dataLength).toBe(0);
  });

  it('accepts typed arrays as data and reads F32/F16/BF16 back as floats', async () => {
    const vals = new Float32Array([1, -2.5, 0.5, 65504]);
    const file2 = writeSafetensors([
      { name: 'f32', dtype: 'F32', shape: [2, 2], data: vals },
      { name: 'f16', dtype: 'F16', shape: [4], data: f32ToF16Bytes(vals) },
      { name: 'bf16', dtype: 'BF16', shape: [4], data: f32ToBf16Bytes([1, -2.5, 0.5, 3]) },
      { name: 'i64', dtype: 'I64', shape: [2], data: new BigInt64Array([-5n, 7n]) },
      { name: 'f8', dtype: 'F8_E4M3', shape: [2], data: new Uint8Array(2) },
    ]);
    const r = await openSafetensors(bytesSource(file2));
    expect([...(await r.readFloat32('f32'))]).toEqual([1, -2.5, 0.5, 65504]);
    expect([...(await r.readFloat32('f16'))]).toEqual([1, -2.5, 0.5, 65504]);
    expect([...(await r.readFloat32('bf16'))]).toEqual([1, -2.5, 0.5, 3]);
    expect([...(await r.readFloat32('i64'))]).toEqual([-5, 7]);
    await expect(r.readFloat32('f8')).rejects.toThrow(/tensor "f8": cannot convert F8_E4M3 to F32/);
    await expect(r.readBytes('nope')).rejects.toThrow(/tensor "nope" not found/);
    expect(() => r.info('nope')).toThrow(SafetensorsError);
    expect(r.has('f32')).toBe(true);
  });

  it('plans a file piecewise with the same bytes as writeSafetensors', () => {
    const plan = planSafetensors(tensors, metadata);
    expect(plan.totalSize).toBe(file.length);
    const out = new Uint8Array(plan.totalSize);
    out.set(plan.header);
    const byName = new Map(tensors.map((t) => [t.name, t.data as Uint8Array]));
    for (const t of plan.tensors) {
      expect(t.offset).toBe(plan.dataStart + t.begin);
      out.set(byName.get(t.name)!, t.offset);
    }
    expect(out).toEqual(file);
  });

  it('rejects bad input to the writer, naming the tensor', () => {
    const t = (over: Partial<TensorData>): TensorData => ({ name: 'w', dtype: 'F32', shape: [2, 2], data: new Uint8Array(16), ...over });
    expect(() => writeSafetensors([t({ data: new Uint8Array(12) })])).toThrow('tensor "w": data has 12 bytes but F32 [2, 2] needs 16');
    expect(() => writeSafetensors([t({}), t({})])).toThrow('duplicate tensor name "w"');
    expect(() => writeSafetensors([t({ name: '__metadata__' })])).toThrow('"__metadata__" is reserved');
    expect(() => writeSafetensors([t({ dtype: 'F12' as DType })])).toThrow('tensor "w": unknown dtype "F12"');
    expect(() => writeSafetensors([t({ shape: [2, -2] })])).toThrow('tensor "w": shape[1] = -2 is negative');
    expect(() => writeSafetensors([t({ dtype: 'F4', shape: [3], data: new Uint8Array(2) })])).toThrow('not a whole number of bytes');
    expect(() => writeSafetensors([t({})], { k: 5 as unknown as string })).toThrow('metadata: __metadata__["k"] must be a string');
    expect(() => planSafetensors([{ name: 'big', dtype: 'F32', shape: [2 ** 30, 2 ** 30] }])).toThrow('numel');
  });

  it('sorts names by code point like Rust (astral characters after U+FFFF-range ones)', () => {
    const names = ['b', 'a', '\u{1F600}', '\uFF21', 'A'];
    const plan = planSafetensors(names.map((name) => ({ name, dtype: 'U8' as DType, shape: [1] })));
    expect(plan.tensors.map((t) => t.name)).toEqual(['A', 'a', 'b', '\uFF21', '\u{1F600}']);
  });
});

describe('unaligned tensors', () => {
  it('reads F32/F16/BF16/I64 tensors that start at odd file offsets', async () => {
    const vals = [1.5, -2, 3.25];
    const data = new Uint8Array(1 + 12 + 6 + 6 + 16);
    const dv = new DataView(data.buffer);
    data[0] = 7;
    vals.forEach((v, i) => dv.setFloat32(1 + 4 * i, v, true));
    data.set(f32ToF16Bytes(vals), 13);
    data.set(f32ToBf16Bytes(vals), 19);
    dv.setBigInt64(25, -3n, true);
    dv.setBigInt64(33, 1n << 40n, true);
    const header = JSON.stringify({
      a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] },
      b: { dtype: 'F32', shape: [3], data_offsets: [1, 13] },
      c: { dtype: 'F16', shape: [3], data_offsets: [13, 19] },
      d: { dtype: 'BF16', shape: [3], data_offsets: [19, 25] },
      e: { dtype: 'I64', shape: [2], data_offsets: [25, 41] },
    });
    const text = header.length % 2 === 0 ? header : header + ' '; // 8 + N even, so 'b' starts odd
    const file = build(text, data);
    const r = await openSafetensors(bytesSource(file));
    expect((r.header.dataStart + r.info('b').begin) % 2).toBe(1);
    const raw = await r.readBytes('b');
    expect(raw.byteOffset % 4).not.toBe(0); // a view at an unaligned offset
    expect([...(await r.readFloat32('b'))]).toEqual(vals);
    expect([...(await r.readFloat32('c'))]).toEqual(vals);
    expect([...(await r.readFloat32('d'))]).toEqual(vals);
    expect([...(await r.readFloat32('e'))]).toEqual([-3, 2 ** 40]);
    expect([...(await r.readFloat32('a'))]).toEqual([7]);
  });

  it('parses a header whose bytes sit at an odd offset of a larger buffer', () => {
    const file = writeSafetensors([{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array([2]) }]);
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    const h = parseHeader(big.subarray(3), { fileLength: file.length });
    expect(h.byName.get('x')!.shape).toEqual([1]);
  });
});

describe('partial header bytes and sources', () => {
  const file = writeSafetensors([{ name: 'x', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) }], { m: 'v' });
  const n = readHeaderLength(file);

  it('parses from just the first 8+N bytes, and checks the file length when given', () => {
    expect(parseHeader(file.subarray(0, 8 + n)).tensors[0].name).toBe('x');
    expect(parseHeader(file.subarray(0, 8 + n), { fileLength: file.length }).dataLength).toBe(16);
    expect(() => parseHeader(file.subarray(0, 8 + n - 1), { source: 'part' })).toThrow(
      `part: header length ${n} needs ${8 + n} bytes but only ${7 + n} are available (truncated header)`,
    );
  });

  it('reads through a Blob source', async () => {
    const r = await openSafetensors(blobSource(new Blob([file]), 'x.safetensors'));
    expect([...(await r.readFloat32('x'))]).toEqual([1, 2, 3, 4]);
    expect(r.source.name).toBe('x.safetensors');
  });

  it('bounds-checks reads', async () => {
    const s = bytesSource(file, 'f');
    await expect(s.read(file.length - 2, 4)).rejects.toThrow(RangeError);
    await expect(s.read(-1, 1)).rejects.toThrow(/outside the/);
    await expect(blobSource(new Blob([file])).read(0, file.length + 1)).rejects.toThrow(RangeError);
    expect((await s.read(file.length, 0)).length).toBe(0);
  });
});

// ---- the real model from ../shared --------------------------------------------------------

const here = path.dirname(fileURLToPath(import.meta.url));
const storiesDir = path.resolve(here, '../../../shared/models/stories260K');
const storiesFile = path.join(storiesDir, 'model.safetensors');
const haveStories = existsSync(storiesFile);
if (!haveStories) console.log(`skipping the stories260K test: ${storiesFile} not found (../shared is absent)`);

describe('stories260K (real checkpoint)', () => {
  (haveStories ? it : it.skip)('reads model.safetensors', async () => {
    const src = blobSource(await openAsBlob(storiesFile), 'model.safetensors');
    expect(src.size).toBe(1_044_984);
    const r = await openSafetensors(src);
    console.log(
      `stories260K: ${r.names().length} tensors\n` +
        r.header.tensors.map((t) => `  ${t.name} ${t.dtype} [${t.shape.join(', ')}]`).join('\n'),
    );
    const shape = (name: string) => r.info(name).shape;
    expect(r.info('model.embed_tokens.weight').dtype).toBe('F32');
    expect(shape('model.embed_tokens.weight')).toEqual([512, 64]);
    expect(r.has('lm_head.weight')).toBe(false);
    expect(shape('model.layers.0.self_attn.q_proj.weight')).toEqual([64, 64]);
    expect(shape('model.layers.0.self_attn.k_proj.weight')).toEqual([32, 64]);
    expect(shape('model.layers.0.self_attn.v_proj.weight')).toEqual([32, 64]);
    expect(shape('model.layers.0.mlp.gate_proj.weight')).toEqual([172, 64]);
    expect(shape('model.layers.4.mlp.down_proj.weight')).toEqual([64, 172]);
    expect(shape('model.norm.weight')).toEqual([64]);
    expect(r.names().length).toBe(2 + 5 * 9);
    expect(r.header.metadata).toEqual({ format: 'pt' });
    const emb = await r.readFloat32('model.embed_tokens.weight');
    expect(emb.length).toBe(512 * 64);
    expect(emb.every(Number.isFinite)).toBe(true);

    // re-write with our writer and read back: same tensors, same values
    const all = await Promise.all(r.header.tensors.map(async (t) => ({ ...t, data: await r.readBytes(t.name) })));
    const again = await openSafetensors(bytesSource(writeSafetensors(all, r.header.metadata)));
    expect(again.header.tensors.length).toBe(all.length);
    expect(await again.readFloat32('model.embed_tokens.weight')).toEqual(emb);
  });
});

// ---- malformed files ---------------------------------------------------------------------

const good = { a: f32([2, 2], 0, 16) };
const goodFile = buildJson(good, 16);

const malformed: Array<[string, Uint8Array, string]> = [
  ['file shorter than 8 bytes', new Uint8Array(5), 'file is 5 bytes, too short for the 8-byte header length'],
  ['header length > 100 MB', build('{}', 0, 100_000_001n), 'header length 100000001 is larger than the limit of 100000000'],
  ['header length that does not fit in a number', build('{}', 0, 2n ** 64n - 1n), 'header length 18446744073709551615 is larger than the limit'],
  ['header length beyond the file', build('{}', 10, 1000n), 'header length 1000 runs past the end of the 20-byte file (truncated header)'],
  ['header not UTF-8', build(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 'header is not valid UTF-8'],
  ['header not JSON', build('{"a": '), 'header is not valid JSON'],
  ['header JSON an array', build('[]'), 'header must be a JSON object, got array'],
  ['header JSON null', build('null'), 'header must be a JSON object, got null'],
  ['header JSON a number', build('42  '), 'header must be a JSON object, got number'],
  ['header not starting with "{"', build(' {}'), 'header must start with "{", starts with " "'],
  ['unknown dtype', buildJson({ a: { ...f32([1], 0, 4), dtype: 'F12' } }, 4), 'tensor "a": unknown dtype "F12"'],
  ['dtype not a string', buildJson({ a: { ...f32([1], 0, 4), dtype: 32 } }, 4), 'tensor "a": dtype must be a string, got number'],
  ['shape not an array', buildJson({ a: { ...f32([1], 0, 4), shape: 4 } }, 4), 'tensor "a": shape must be an array of non-negative integers, got number'],
  ['negative dim', buildJson({ a: f32([2, -1], 0, 0) }, 0), 'tensor "a": shape[1] = -1 is negative'],
  ['non-integer dim', buildJson({ a: f32([1.5], 0, 4) }, 4), 'tensor "a": shape[0] = 1.5 is not an integer'],
  ['dim given as a string', buildJson({ a: { ...f32([1], 0, 4), shape: ['1'] } }, 4), 'tensor "a": shape[0] must be a non-negative integer, got string'],
  ['dim beyond safe integers', buildJson({ a: f32([1e300], 0, 4) }, 4), 'tensor "a": shape[0] = 1e+300 is too large'],
  ['data_offsets wrong length', buildJson({ a: { ...f32([1], 0, 4), data_offsets: [0, 4, 8] } }, 4), 'tensor "a": data_offsets must hold 2 integers [begin, end], got 3'],
  ['data_offsets not an array', buildJson({ a: { ...f32([1], 0, 4), data_offsets: '0-4' } }, 4), 'tensor "a": data_offsets must be an array [begin, end], got string'],
  ['begin > end', buildJson({ a: f32([1], 8, 4) }, 8), 'tensor "a": data_offsets [8, 4] have begin > end'],
  ['negative offset', buildJson({ a: f32([1], -4, 0) }, 0), 'tensor "a": data_offsets[0] = -4 is negative'],
  ['non-integer offset', buildJson({ a: f32([1], 0, 4.5) }, 5), 'tensor "a": data_offsets[1] = 4.5 is not an integer'],
  ['overlapping offsets', buildJson({ a: f32([4], 0, 16), b: f32([4], 8, 24) }, 24), 'tensor "b": data_offsets [8, 24] overlap tensor "a" [0, 16]'],
  ['gap between tensors', buildJson({ a: f32([4], 0, 16), b: f32([4], 20, 36) }, 36), 'tensor "b": data_offsets [20, 36] leave a gap of 4 bytes after tensor "a" (which ends at 16)'],
  ['first tensor not at 0', buildJson({ a: f32([4], 4, 20) }, 20), 'tensor "a": data_offsets [4, 20]: the first tensor must start at offset 0'],
  ['byte length != numel × size', buildJson({ 'a.weight': f32([2, 2], 0, 12) }, 12), 'bad.safetensors: tensor "a.weight": data_offsets [0, 12] hold 12 bytes but F32 [2, 2] needs 16'],
  ['trailing bytes after the data', new Uint8Array([...goodFile, 1, 2, 3]), 'tensor data ends at ' + goodFile.length + ' (3 trailing bytes)'],
  ['truncated data', goodFile.subarray(0, goodFile.length - 3), 'truncated data: 3 bytes missing'],
  ['duplicate tensor names', build(`{"a":${JSON.stringify(f32([1], 0, 4))},"a":${JSON.stringify(f32([1], 0, 4))}}`, 4), 'duplicate tensor name "a"'],
  ['duplicate tensor names spelled with an escape', build(`{"ab":${JSON.stringify(f32([1], 0, 4))},"\\u0061b":${JSON.stringify(f32([1], 4, 8))}}`, 8), 'duplicate tensor name "ab"'],
  ['duplicate field in an entry', build('{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', 4), 'tensor "a": duplicate field "dtype"'],
  ['duplicate __metadata__ key', build('{"__metadata__":{"k":"1","k":"2"}}'), '__metadata__: duplicate key "k"'],
  ['__metadata__ with a non-string value', buildJson({ __metadata__: { format: 'pt', n: 1 } }, 0), '__metadata__["n"] must be a string, got number'],
  ['__metadata__ not an object', buildJson({ __metadata__: ['pt'] }, 0), '__metadata__ must be an object of strings, got array'],
  ['unknown field in a tensor entry', buildJson({ a: { ...f32([1], 0, 4), extra: 1 } }, 4), 'tensor "a": unknown field "extra"'],
  ['missing field in a tensor entry', buildJson({ a: { dtype: 'F32', data_offsets: [0, 4] } }, 4), 'tensor "a": missing field "shape"'],
  ['tensor entry not an object', buildJson({ a: [1, 2] }, 0), 'tensor "a": entry must be an object with dtype, shape, data_offsets, got array'],
  ['numel overflow / absurd shape', buildJson({ a: f32([2 ** 40, 2 ** 40], 0, 16) }, 16), 'tensor "a": shape [1099511627776, 1099511627776] is too large (numel 1208925819614629174706176 overflows)'],
  ['F4 tensor with odd numel', buildJson({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2), 'tensor "a": F4 [3] has 3 elements = 12 bits, not a whole number of bytes'],
  ['F6 tensor with a partial byte', buildJson({ a: { dtype: 'F6_E2M3', shape: [2], data_offsets: [0, 2] } }, 2), 'tensor "a": F6_E2M3 [2] has 2 elements = 12 bits, not a whole number of bytes'],
];

describe('malformed files', () => {
  it('has at least 20 distinct messages', () => {
    expect(new Set(malformed.map((m) => m[2])).size).toBe(malformed.length);
    expect(malformed.length).toBeGreaterThanOrEqual(20);
  });

  for (const [what, file, message] of malformed) {
    it(`rejects: ${what}`, async () => {
      const err = await openSafetensors(bytesSource(file, 'bad.safetensors')).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toContain(message);
      expect((err as Error).message.startsWith('bad.safetensors: ')).toBe(true);
      // the synchronous parser gives the same message
      expect(() => parseHeader(file, { fileLength: file.length, source: 'bad.safetensors' })).toThrow(message);
    });
  }

  it('accepts what the format allows: empty header, trailing spaces, zero-size tensors at shared offsets', () => {
    expect(parseHeader(build('{}')).tensors).toEqual([]);
    expect(parseHeader(build('{}   ')).headerLength).toBe(5);
    const h = parseHeader(buildJson({ z: f32([0], 0, 0), a: f32([1], 0, 4), y: f32([3, 0], 4, 4) }, 4));
    expect(h.tensors.map((t) => t.name)).toEqual(['z', 'a', 'y']);
    expect(parseHeader(buildJson({ __metadata__: null }, 0)).metadata).toBeNull();
  });

  it('finds duplicate keys only within one object', () => {
    expect(findDuplicateKey('{"a":{"x":1},"b":{"x":2}}')).toBeNull();
    expect(findDuplicateKey('{"a":["a","a"],"s":"{\\"a\\":1,\\"a\\":2}"}')).toBeNull();
    expect(findDuplicateKey('{"a":{"x":1,"y":[{"k":1,"k":2}]}}')).toEqual({ path: ['a', 'y', '[]'], key: 'k' });
    expect(findDuplicateKey('{"\\"":1,"\\u0022":2}')).toEqual({ path: [], key: '"' });
  });
});

// ---- fuzz --------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A source over `bytes` that records every read outside the file instead of trusting the check. */
function watchedSource(bytes: Uint8Array, outOfBounds: string[]): ByteSource {
  const inner = bytesSource(bytes, 'fuzz.safetensors');
  return {
    size: inner.size,
    name: inner.name,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > bytes.length) outOfBounds.push(`${offset}+${length} of ${bytes.length}`);
      return inner.read(offset, length);
    },
  };
}

describe('fuzz', () => {
  it('random byte flips and truncations either parse or throw SafetensorsError (500 cases)', async () => {
    const base = writeSafetensors(
      [
        { name: 'w.f32', dtype: 'F32', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        { name: 'w.f16', dtype: 'F16', shape: [4], data: f32ToF16Bytes([1, 2, 3, 4]) },
        { name: 'w.bf16', dtype: 'BF16', shape: [2, 1], data: f32ToBf16Bytes([1, 2]) },
        { name: 'w.i64', dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
        { name: 'w.f4', dtype: 'F4', shape: [6], data: new Uint8Array(3) },
        { name: 'w.u8', dtype: 'U8', shape: [], data: new Uint8Array(1) },
        { name: 'w.empty', dtype: 'F32', shape: [0], data: new Uint8Array(0) },
      ],
      { format: 'pt' },
    );
    const n = readHeaderLength(base);
    const rand = mulberry32(0x5afe7e45);
    const int = (k: number) => Math.floor(rand() * k);
    const jsonChars = '{}[]",:0123456789-.eE tfnul\\';
    const outOfBounds: string[] = [];
    let parsed = 0;
    let rejected = 0;
    for (let c = 0; c < 500; c++) {
      let f: Uint8Array = base.slice();
      const kind = c % 6;
      if (kind === 0) { // flip bits anywhere in the header region
        for (let k = 1 + int(4); k > 0; k--) f[int(8 + n)] ^= 1 << int(8);
      } else if (kind === 1) { // replace header bytes with JSON-ish characters
        for (let k = 1 + int(3); k > 0; k--) f[8 + int(n)] = jsonChars.charCodeAt(int(jsonChars.length));
      } else if (kind === 2) { // truncate
        f = f.subarray(0, int(f.length));
      } else if (kind === 3) { // append bytes
        f = new Uint8Array([...f, ...randomBytes(1 + int(20), c)]);
      } else if (kind === 4) { // corrupt the length field
        const dv = new DataView(f.buffer);
        if (rand() < 0.5) dv.setBigUint64(0, BigInt(Math.max(0, n + int(41) - 20)), true);
        else f[int(8)] = int(256);
      } else { // flip digits of the numbers in the header
        const text = new TextDecoder().decode(f.subarray(8, 8 + n));
        const digits = [...text.matchAll(/\d/g)].map((m) => m.index!);
        for (let k = 1 + int(2); k > 0; k--) f[8 + digits[int(digits.length)]] = 0x30 + int(10);
      }
      try {
        parseHeader(f.subarray(0, Math.min(f.length, 8 + n + 8)));
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`case ${c}: parseHeader threw ${String(e)}`);
      }
      try {
        const r = await openSafetensors(watchedSource(f, outOfBounds));
        for (const name of r.names()) {
          const t = r.info(name);
          expect((await r.readBytes(name)).length).toBe(t.end - t.begin);
          if (canConvertToFloat32(t.dtype)) expect((await r.readFloat32(name)).length).toBe(t.numel);
        }
        parsed++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw new Error(`case ${c}: openSafetensors threw ${String(e)}`);
        rejected++;
      }
    }
    expect(outOfBounds).toEqual([]);
    expect(parsed).toBeGreaterThan(10);
    expect(rejected).toBeGreaterThan(200);
    console.log(`fuzz: ${parsed} mutated files parsed, ${rejected} rejected with SafetensorsError`);
  });
});
