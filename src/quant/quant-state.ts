// The bnb `quant_state.bitsandbytes__{nf4,fp4}` JSON (spec §3.2): written byte-identical to Python's
// json.dumps(QuantState.as_dict non-tensor items) and parsed back with validation.
import { pythonJsonFloat } from '../util/python.ts';
import { ALLOWED_BLOCKSIZES } from './blockwise4.ts';
import { type QuantType, isQuantType } from './codes.ts';

export type QuantDtype = 'float32' | 'float16' | 'bfloat16';
export const QUANT_DTYPES: readonly QuantDtype[] = ['float32', 'float16', 'bfloat16'];
const NESTED_BLOCKSIZES = [64, 128, 256, 512, 1024, 2048, 4096];

export interface QuantStateInfo {
  quantType: QuantType;
  blocksize: number;
  /** dtype bnb dequantizes to (the original weight dtype). */
  dtype: QuantDtype;
  shape: number[];
  nested: null | { blocksize: number; dtype: 'float32'; offset: number };
}

export function quantStateKey(type: QuantType): string {
  return `quant_state.bitsandbytes__${type}`;
}

/** The JSON string bnb packs: keys in QuantState.as_dict order, json.dumps default separators. */
export function buildQuantStateJson(qs: QuantStateInfo): string {
  const parts = [
    `"quant_type": ${JSON.stringify(qs.quantType)}`,
    `"blocksize": ${qs.blocksize}`,
    `"dtype": ${JSON.stringify(qs.dtype)}`,
    `"shape": [${qs.shape.join(', ')}]`,
  ];
  if (qs.nested) {
    parts.push(
      `"nested_blocksize": ${qs.nested.blocksize}`,
      `"nested_dtype": ${JSON.stringify(qs.nested.dtype)}`,
      `"nested_offset": ${pythonJsonFloat(qs.nested.offset)}`,
    );
  }
  return `{${parts.join(', ')}}`;
}

const KNOWN_KEYS = new Set(['quant_type', 'blocksize', 'dtype', 'shape', 'nested_blocksize', 'nested_dtype', 'nested_offset']);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parse and validate a quant_state JSON. `tensor` names the quant_state tensor in errors. Optional
 * expectations: the quant type implied by the tensor name, and the packed weight byte count.
 */
export function parseQuantState(
  tensor: string,
  json: string | Uint8Array,
  expect: { quantType?: QuantType; packedBytes?: number } = {},
): QuantStateInfo {
  const text = typeof json === 'string' ? json : new TextDecoder('utf-8', { fatal: true }).decode(json);
  const fail = (msg: string): never => {
    throw new Error(`${tensor}: ${msg}`);
  };
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    fail(`quant_state is not valid JSON (${(e as Error).message})`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return fail('quant_state JSON is not an object');
  const d = o as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!KNOWN_KEYS.has(k)) fail(`unknown quant_state key "${k}"`);
  const qt = d.quant_type;
  if (!isQuantType(qt)) return fail(`unknown quant_type ${JSON.stringify(qt)} (expected "nf4" or "fp4")`);
  if (expect.quantType && qt !== expect.quantType) fail(`quant_type "${qt}" does not match the tensor name suffix "${expect.quantType}"`);
  const bs = d.blocksize;
  if (!isInt(bs) || !ALLOWED_BLOCKSIZES.includes(bs)) fail(`blocksize ${JSON.stringify(bs)} is not allowed (expected one of ${ALLOWED_BLOCKSIZES.join(', ')})`);
  const dtype = d.dtype;
  if (!QUANT_DTYPES.includes(dtype as QuantDtype)) fail(`dtype ${JSON.stringify(dtype)} is not one of ${QUANT_DTYPES.join(', ')}`);
  const shape = d.shape;
  if (!Array.isArray(shape) || !shape.every(isInt)) return fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  const n = shape.reduce((a: number, b: number) => a * b, 1);
  if (expect.packedBytes !== undefined && (n + 1) >> 1 !== expect.packedBytes) {
    fail(`shape [${shape.join(', ')}] has ${n} values = ${(n + 1) >> 1} packed bytes, but the weight has ${expect.packedBytes} bytes`);
  }
  const nestedKeys = ['nested_blocksize', 'nested_dtype', 'nested_offset'].filter((k) => k in d);
  let nested: QuantStateInfo['nested'] = null;
  if (nestedKeys.length > 0) {
    if (nestedKeys.length !== 3) fail(`nested fields inconsistent: has ${nestedKeys.join(', ')} but needs nested_blocksize, nested_dtype and nested_offset`);
    const nbs = d.nested_blocksize;
    if (!isInt(nbs) || !NESTED_BLOCKSIZES.includes(nbs)) fail(`nested_blocksize ${JSON.stringify(nbs)} is not allowed (bnb uses 256)`);
    if (d.nested_dtype !== 'float32') fail(`nested_dtype ${JSON.stringify(d.nested_dtype)} is not "float32"`);
    const off = d.nested_offset;
    if (typeof off !== 'number' || !Number.isFinite(off)) fail(`nested_offset ${JSON.stringify(off)} is not a finite number`);
    nested = { blocksize: nbs as number, dtype: 'float32', offset: Math.fround(off as number) };
  }
  return { quantType: qt, blocksize: bs as number, dtype: dtype as QuantDtype, shape: shape as number[], nested };
}
