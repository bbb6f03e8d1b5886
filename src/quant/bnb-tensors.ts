// The bnb-4bit checkpoint layout of one quantized Linear (spec §3.1-§3.4), independent of file I/O:
// quantize a weight, turn it into bnb's named tensors, read them back with validation, dequantize.
import { dequantize4bit, roundToBf16, roundToF16, quantize4bit } from './blockwise4.ts';
import { type QuantType, codeTable, dynamicMap256 } from './codes.ts';
import { doubleQuantize, rebuildAbsmax } from './double-quant.ts';
import { type QuantDtype, buildQuantStateJson, parseQuantState, quantStateKey } from './quant-state.ts';

export interface Quantized4 {
  type: QuantType;
  blocksize: number;
  shape: [number, number];
  dtype: QuantDtype;
  packed: Uint8Array;
  /** f32 absmax when not nested, else null. */
  absmax: Float32Array | null;
  nested: null | { qabsmax: Uint8Array; nestedAbsmax: Float32Array; offset: number; nestedMap: Float32Array; nestedBlocksize: number };
  /** quant_map: the 16-entry code table. */
  codeMap: Float32Array;
}

export interface BnbTensor {
  name: string;
  dtype: 'U8' | 'F32';
  shape: number[];
  data: Uint8Array;
}

export type TensorGetter = (name: string) => { dtype: string; shape: number[]; data: Uint8Array } | undefined;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function f32Bytes(a: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(new Float32Array(a).buffer);
  const out = new Uint8Array(a.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(i * 4, a[i], true);
  return out;
}

function bytesF32(b: Uint8Array): Float32Array {
  const copy = new Uint8Array(b); // aligned, independent of the source (a Buffer's slice() would be a view)
  if (LITTLE_ENDIAN) return new Float32Array(copy.buffer, 0, copy.length >> 2);
  const dv = new DataView(copy.buffer);
  const out = new Float32Array(copy.length >> 2);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

function checkShape(shape: [number, number], what: string): number {
  if (shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${what}: shape ${JSON.stringify(shape)} is not [out, in] of non-negative integers`);
  }
  return shape[0] * shape[1];
}

/** Quantize a row-major [out, in] f32 weight as bnb Linear4bit does (double quant by default). */
export function quantizeLinear(
  weight: Float32Array,
  shape: [number, number],
  opts: { type: QuantType; blocksize?: number; doubleQuant?: boolean; dtype?: QuantDtype },
): Quantized4 {
  const n = checkShape(shape, 'quantizeLinear');
  if (weight.length !== n) throw new Error(`quantizeLinear: weight has ${weight.length} values, shape [${shape.join(', ')}] needs ${n}`);
  const blocksize = opts.blocksize ?? 64;
  const { packed, absmax } = quantize4bit(weight, { type: opts.type, blocksize });
  const base = { type: opts.type, blocksize, shape: [shape[0], shape[1]] as [number, number], dtype: opts.dtype ?? 'float32', packed, codeMap: codeTable(opts.type) };
  if (opts.doubleQuant === false) return { ...base, absmax, nested: null };
  const nestedMap = dynamicMap256();
  const dq = doubleQuantize(absmax, { map: nestedMap });
  return { ...base, absmax: null, nested: { qabsmax: dq.qabsmax, nestedAbsmax: dq.nestedAbsmax, offset: dq.offset, nestedMap, nestedBlocksize: dq.nestedBlocksize } };
}

/** bnb's tensors for `${prefix}.weight*`, in Linear4bit state_dict order. `weight` shares q.packed. */
export function toBnbTensors(prefix: string, q: Quantized4): BnbTensor[] {
  const w = `${prefix}.weight`;
  const out: BnbTensor[] = [{ name: w, dtype: 'U8', shape: [q.packed.length, 1], data: q.packed }];
  if (q.nested) {
    out.push({ name: `${w}.absmax`, dtype: 'U8', shape: [q.nested.qabsmax.length], data: new Uint8Array(q.nested.qabsmax) });
  } else {
    if (!q.absmax) throw new Error(`${w}: neither absmax nor nested state present`);
    out.push({ name: `${w}.absmax`, dtype: 'F32', shape: [q.absmax.length], data: f32Bytes(q.absmax) });
  }
  out.push({ name: `${w}.quant_map`, dtype: 'F32', shape: [16], data: f32Bytes(q.codeMap) });
  if (q.nested) {
    out.push({ name: `${w}.nested_absmax`, dtype: 'F32', shape: [q.nested.nestedAbsmax.length], data: f32Bytes(q.nested.nestedAbsmax) });
    out.push({ name: `${w}.nested_quant_map`, dtype: 'F32', shape: [256], data: f32Bytes(q.nested.nestedMap) });
  }
  const json = buildQuantStateJson({
    quantType: q.type,
    blocksize: q.blocksize,
    dtype: q.dtype,
    shape: q.shape,
    nested: q.nested ? { blocksize: q.nested.nestedBlocksize, dtype: 'float32', offset: q.nested.offset } : null,
  });
  const bytes = new TextEncoder().encode(json);
  out.push({ name: `${w}.${quantStateKey(q.type)}`, dtype: 'U8', shape: [bytes.length], data: bytes });
  return out;
}

/** Read and validate one quantized Linear; keeps the STORED quant_map and nested_quant_map. */
export function fromBnbTensors(prefix: string, get: TensorGetter): Quantized4 {
  const w = `${prefix}.weight`;
  const need = (suffix: string, dtype: 'U8' | 'F32', shape?: number[]) => {
    const name = suffix ? `${w}.${suffix}` : w;
    const t = get(name);
    if (!t) throw new Error(`${name}: tensor missing`);
    if (t.dtype !== dtype) throw new Error(`${name}: dtype ${t.dtype}, expected ${dtype}`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`${name}: shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 1);
    if (t.data.length !== bytes) throw new Error(`${name}: ${t.data.length} data bytes, shape [${t.shape.join(', ')}] ${dtype} needs ${bytes}`);
    return t;
  };
  const found = (['nf4', 'fp4'] as const).filter((t) => get(`${w}.${quantStateKey(t)}`) !== undefined);
  if (found.length === 0) throw new Error(`${w}.quant_state.bitsandbytes__{nf4|fp4}: tensor missing`);
  if (found.length > 1) throw new Error(`${w}: both quant_state.bitsandbytes__nf4 and __fp4 present; expected exactly one`);
  const type = found[0];
  const qsName = `${w}.${quantStateKey(type)}`;
  const qsT = need(quantStateKey(type), 'U8');
  if (qsT.shape.length !== 1) throw new Error(`${qsName}: shape [${qsT.shape.join(', ')}], expected 1-D`);
  const wt = get(w);
  if (!wt) throw new Error(`${w}: tensor missing`);
  if (wt.dtype !== 'U8') throw new Error(`${w}: dtype ${wt.dtype}, expected U8 (quant_storage other than uint8 is not supported)`);
  const qs = parseQuantState(qsName, qsT.data, { quantType: type, packedBytes: wt.data.length });
  if (qs.shape.length !== 2) throw new Error(`${qsName}: shape [${qs.shape.join(', ')}] is not 2-D [out, in]`);
  const shape: [number, number] = [qs.shape[0], qs.shape[1]];
  const n = shape[0] * shape[1];
  const packed = new Uint8Array(need('', 'U8', [(n + 1) >> 1, 1]).data);
  const nb = Math.ceil(n / qs.blocksize);
  const codeMap = bytesF32(need('quant_map', 'F32', [16]).data);
  const base = { type, blocksize: qs.blocksize, shape, dtype: qs.dtype, packed, codeMap };
  if (!qs.nested) {
    for (const s of ['nested_absmax', 'nested_quant_map']) {
      if (get(`${w}.${s}`)) throw new Error(`${w}.${s}: present but the quant_state has no nested fields`);
    }
    return { ...base, absmax: bytesF32(need('absmax', 'F32', [nb]).data), nested: null };
  }
  const nbs = qs.nested.blocksize;
  const qabsmax = new Uint8Array(need('absmax', 'U8', [nb]).data);
  const nestedAbsmax = bytesF32(need('nested_absmax', 'F32', [Math.ceil(nb / nbs)]).data);
  const nestedMap = bytesF32(need('nested_quant_map', 'F32', [256]).data);
  return { ...base, absmax: null, nested: { qabsmax, nestedAbsmax, offset: qs.nested.offset, nestedMap, nestedBlocksize: nbs } };
}

/** Prefixes of quantized Linears: names with a `.weight.quant_state.bitsandbytes__nf4|fp4` tensor. */
export function findQuantizedLinears(tensorNames: string[]): string[] {
  const re = /^(.+)\.weight\.quant_state\.bitsandbytes__(nf4|fp4)$/;
  const seen = new Set<string>();
  for (const name of tensorNames) {
    const m = re.exec(name);
    if (m) seen.add(m[1]);
  }
  return [...seen];
}

/** The f32 absmax of q (rebuilt from the nested state when double-quantized). */
export function linearAbsmax(q: Quantized4): Float32Array {
  if (!q.nested) {
    if (!q.absmax) throw new Error('Quantized4 has neither absmax nor nested state');
    return q.absmax;
  }
  const { qabsmax, nestedAbsmax, offset, nestedMap, nestedBlocksize } = q.nested;
  return rebuildAbsmax(qabsmax, nestedAbsmax, offset, nestedMap, nestedBlocksize);
}

/**
 * Dequantize to a row-major [out, in] f32 array with q.codeMap (the stored quant_map). bnb's CUDA kernel
 * uses its built-in table instead, which equals the standard quant_map except that FP4 index 8 decodes to
 * -0 there. castToDtype rounds the values to q.dtype (bf16/f16, RNE) as bnb's output tensor would be.
 */
export function dequantizeLinear(q: Quantized4, opts: { castToDtype?: boolean } = {}): Float32Array {
  const n = q.shape[0] * q.shape[1];
  const out = dequantize4bit(q.packed, linearAbsmax(q), n, q.type, q.blocksize, q.codeMap);
  if (!opts.castToDtype || q.dtype === 'float32') return out;
  return q.dtype === 'bfloat16' ? roundToBf16(out) : roundToF16(out);
}

/** transformers BitsAndBytesConfig.to_dict() for a 4-bit checkpoint's config.json (keys in order). */
export function bnbQuantizationConfig(opts: { type: QuantType; doubleQuant: boolean; computeDtype: QuantDtype; skipModules?: string[] | null }) {
  return {
    quant_method: 'bitsandbytes',
    _load_in_4bit: true,
    _load_in_8bit: false,
    load_in_4bit: true,
    load_in_8bit: false,
    bnb_4bit_quant_type: opts.type,
    bnb_4bit_use_double_quant: opts.doubleQuant,
    bnb_4bit_compute_dtype: opts.computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    llm_int8_threshold: 6.0,
    llm_int8_skip_modules: opts.skipModules ?? null,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
  };
}
