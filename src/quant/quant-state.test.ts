// Tests of Python float repr, the quant_state JSON writer (byte-identical to json.dumps) and its parser.
import { describe, expect, it } from 'vitest';
import { type QuantStateInfo, buildQuantStateJson, parseQuantState, quantStateKey } from './quant-state.ts';
import { pythonFloatRepr } from '../util/python.ts';

describe('pythonFloatRepr', () => {
  it('matches repr() output captured from CPython 3.12', () => {
    const cases: Array<[number, string]> = [
      [0.1, '0.1'], [1e-5, '1e-05'], [1.0, '1.0'], [3e20, '3e+20'], [1.5e-7, '1.5e-07'], [1e16, '1e+16'],
      [1e15, '1000000000000000.0'], [123456789012345678, '1.2345678901234568e+17'], [0.0001, '0.0001'],
      [1e22, '1e+22'], [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'], [-0, '-0.0'],
      [0, '0.0'], [2.5, '2.5'], [100, '100.0'], [9.999999999999999e15, '1e+16'], [0.03125, '0.03125'],
      [12345.678, '12345.678'], [1e21, '1e+21'], [1e-7, '1e-07'], [-2.5e-5, '-2.5e-05'], [123.0, '123.0'],
      [0.000123, '0.000123'], [Math.fround(0.1), '0.10000000149011612'], [NaN, 'nan'], [-Infinity, '-inf'],
    ];
    for (const [x, s] of cases) expect(pythonFloatRepr(x)).toBe(s);
  });
});

const nested: QuantStateInfo = {
  quantType: 'nf4', blocksize: 64, dtype: 'bfloat16', shape: [192, 576],
  nested: { blocksize: 256, dtype: 'float32', offset: 0.03125 },
};

describe('buildQuantStateJson', () => {
  it('is byte-identical to Python json.dumps of QuantState.as_dict', () => {
    // python: json.dumps({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": (192, 576),
    //   "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.03125})
    expect(buildQuantStateJson(nested)).toBe(
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [192, 576], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.03125}',
    );
    expect(buildQuantStateJson({ quantType: 'fp4', blocksize: 128, dtype: 'float16', shape: [3, 5], nested: null })).toBe(
      '{"quant_type": "fp4", "blocksize": 128, "dtype": "float16", "shape": [3, 5]}',
    );
    // the offset of a real checkpoint is an f32 written as a Python float; integral values get ".0"
    const real = buildQuantStateJson({ ...nested, nested: { ...nested.nested!, offset: Math.fround(1.52549) } });
    expect(real.endsWith('"nested_offset": 1.5254900455474854}')).toBe(true);
    expect(buildQuantStateJson({ ...nested, nested: { ...nested.nested!, offset: 1 } }).endsWith('"nested_offset": 1.0}')).toBe(true);
  });
  it('quantStateKey', () => expect(quantStateKey('fp4')).toBe('quant_state.bitsandbytes__fp4'));
});

describe('parseQuantState', () => {
  const T = 'm.q_proj.weight.quant_state.bitsandbytes__nf4';
  const json = (o: Record<string, unknown>) =>
    JSON.stringify({ quant_type: 'nf4', blocksize: 64, dtype: 'bfloat16', shape: [192, 576], ...o });
  it('round-trips what buildQuantStateJson writes (string or UTF-8 bytes)', () => {
    const s = buildQuantStateJson(nested);
    expect(parseQuantState(T, s, { quantType: 'nf4', packedBytes: 55296 })).toEqual(nested);
    expect(parseQuantState(T, new TextEncoder().encode(s))).toEqual(nested);
    expect(parseQuantState(T, json({})).nested).toBeNull();
  });
  it.each([
    ['invalid JSON', '{"quant_type": "nf4",', /m\.q_proj.*not valid JSON/],
    ['not an object', '[1, 2]', /not an object/],
    ['unknown quant_type', json({ quant_type: 'int4' }), /unknown quant_type "int4"/],
    ['blocksize not allowed', json({ blocksize: 48 }), /blocksize 48 is not allowed/],
    ['bad dtype', json({ dtype: 'float64' }), /dtype "float64" is not one of/],
    ['bad shape', json({ shape: [192, -1] }), /shape \[192,-1\] is not a list of non-negative integers/],
    ['unknown key', json({ foo: 1 }), /unknown quant_state key "foo"/],
    ['partial nested fields', json({ nested_blocksize: 256, nested_offset: 0.1 }), /nested fields inconsistent: has nested_blocksize, nested_offset/],
    ['nested_dtype', json({ nested_blocksize: 256, nested_dtype: 'float16', nested_offset: 0.1 }), /nested_dtype "float16" is not "float32"/],
    ['nested_blocksize', json({ nested_blocksize: 100, nested_dtype: 'float32', nested_offset: 0.1 }), /nested_blocksize 100 is not allowed/],
    ['nested_offset', json({ nested_blocksize: 256, nested_dtype: 'float32', nested_offset: 'x' }), /nested_offset "x" is not a finite number/],
  ])('rejects %s with the tensor name', (_what, text, re) => {
    expect(() => parseQuantState(T, text)).toThrow(re);
    expect(() => parseQuantState(T, text)).toThrow(T);
  });
  it('rejects a shape that does not match the packed byte count, and a type that does not match the name', () => {
    expect(() => parseQuantState(T, json({}), { packedBytes: 55295 })).toThrow(
      /shape \[192, 576\] has 110592 values = 55296 packed bytes, but the weight has 55295 bytes/,
    );
    expect(() => parseQuantState(T, json({}), { quantType: 'fp4' })).toThrow(/does not match the tensor name suffix "fp4"/);
  });
});
