// Tests of the bnb-4bit tensor layout: SmolLM2 shapes, round trip, malformed checkpoints, config.
import { describe, expect, it } from 'vitest';
import {
  type BnbTensor, type Quantized4, bnbQuantizationConfig, dequantizeLinear, findQuantizedLinears, fromBnbTensors,
  linearAbsmax, quantizeLinear, toBnbTensors,
} from './bnb-tensors.ts';
import { NF4_CODE, dynamicMap256 } from './codes.ts';
import { pythonFloatRepr } from '../util/python.ts';

function weights(n: number, seed: number, scale = 0.02): Float32Array {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() + next() - 2) * scale;
  return out;
}
const P = 'model.layers.0.self_attn.k_proj';
const getter = (ts: BnbTensor[]) => {
  const m = new Map(ts.map((t) => [t.name, t]));
  return (name: string) => m.get(name);
};
const f32Tensor = (name: string, values: number[] | Float32Array): BnbTensor => ({
  name, dtype: 'F32', shape: [values.length], data: new Uint8Array(new Float32Array(values).buffer),
});

describe('toBnbTensors', () => {
  const q = quantizeLinear(weights(192 * 576, 1), [192, 576], { type: 'nf4', dtype: 'bfloat16' });
  const ts = toBnbTensors(P, q);
  it('reproduces the SmolLM2-135M k_proj layout (unsloth bnb-4bit checkpoint)', () => {
    expect(ts.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      [`${P}.weight`, 'U8', [55296, 1]],
      [`${P}.weight.absmax`, 'U8', [1728]],
      [`${P}.weight.quant_map`, 'F32', [16]],
      [`${P}.weight.nested_absmax`, 'F32', [7]],
      [`${P}.weight.nested_quant_map`, 'F32', [256]],
      [`${P}.weight.quant_state.bitsandbytes__nf4`, 'U8', [ts[5].data.length]],
    ]);
    ts.forEach((t) => expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1) * (t.dtype === 'F32' ? 4 : 1)));
    const json = new TextDecoder().decode(ts[5].data);
    expect(json).toBe(
      `{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [192, 576], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": ${pythonFloatRepr(q.nested!.offset)}}`,
    );
    expect(ts[5].data.length).toBe(151 + pythonFloatRepr(q.nested!.offset).length);
    // with an offset whose repr has 18 characters (bnb wrote 1.5254900455474854 for such a layer), 169 bytes
    const q2: Quantized4 = { ...q, nested: { ...q.nested!, offset: Math.fround(1.52549) } };
    expect(toBnbTensors(P, q2)[5].shape).toEqual([169]);
  });
  it('stores the NF4 table and the dynamic map as little-endian f32', () => {
    expect(new Float32Array(ts[2].data.slice().buffer)).toEqual(NF4_CODE);
    expect(new Float32Array(ts[4].data.slice().buffer)).toEqual(dynamicMap256());
  });
  it('non-nested layout: absmax F32 [nb], no nested tensors, short quant_state', () => {
    const p = quantizeLinear(weights(100 * 30, 2), [100, 30], { type: 'fp4', blocksize: 128, doubleQuant: false });
    const t = toBnbTensors('lm.fc', p);
    expect(t.map((x) => [x.name, x.dtype, x.shape])).toEqual([
      ['lm.fc.weight', 'U8', [1500, 1]],
      ['lm.fc.weight.absmax', 'F32', [24]],
      ['lm.fc.weight.quant_map', 'F32', [16]],
      ['lm.fc.weight.quant_state.bitsandbytes__fp4', 'U8', [79]],
    ]);
    expect(new TextDecoder().decode(t[3].data)).toBe('{"quant_type": "fp4", "blocksize": 128, "dtype": "float32", "shape": [100, 30]}');
  });
});

describe('fromBnbTensors', () => {
  it.each([
    ['nf4', true, 64, [192, 576]],
    ['fp4', true, 256, [33, 77]],
    ['nf4', false, 4096, [5, 1001]],
    ['fp4', false, 32, [1, 1]],
  ] as const)('round trip %s double=%s blocksize %i shape %j', (type, doubleQuant, blocksize, shape) => {
    const w = weights(shape[0] * shape[1], 3);
    const q = quantizeLinear(w, [shape[0], shape[1]], { type, blocksize, doubleQuant, dtype: 'float16' });
    const back = fromBnbTensors(P, getter(toBnbTensors(P, q)));
    expect(back).toEqual(q);
    expect(dequantizeLinear(back)).toEqual(dequantizeLinear(q));
  });
  it('dequantizeLinear approximates the weight; castToDtype rounds to the stored dtype', () => {
    const w = weights(64 * 64, 4);
    const q = quantizeLinear(w, [64, 64], { type: 'nf4', dtype: 'bfloat16' });
    const d = dequantizeLinear(q);
    const absmax = linearAbsmax(q);
    for (let i = 0; i < w.length; i++) expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(0.16 * absmax[i >> 6]);
    const b = dequantizeLinear(q, { castToDtype: true });
    const u = new Uint32Array(b.buffer);
    expect(u.every((x) => (x & 0xffff) === 0)).toBe(true);
  });
  it('uses the STORED maps, not regenerated ones', () => {
    const q = quantizeLinear(weights(64 * 8, 5), [8, 64], { type: 'nf4' });
    const ts = toBnbTensors(P, q);
    const map = dynamicMap256();
    map[q.nested!.qabsmax[0]] *= 0.5;
    const code = new Float32Array(NF4_CODE);
    code[15] = 0.75;
    const edited = ts.map((t) =>
      t.name.endsWith('nested_quant_map') ? f32Tensor(t.name, map) : t.name.endsWith('.quant_map') ? f32Tensor(t.name, code) : t,
    );
    const back = fromBnbTensors(P, getter(edited));
    expect(back.nested!.nestedMap).toEqual(map);
    expect(back.codeMap).toEqual(code);
    expect(linearAbsmax(back)[0]).not.toBe(linearAbsmax(q)[0]);
  });

  const base = toBnbTensors(P, quantizeLinear(weights(192 * 576, 6), [192, 576], { type: 'nf4' }));
  const plain = toBnbTensors(P, quantizeLinear(weights(192 * 576, 6), [192, 576], { type: 'nf4', doubleQuant: false }));
  const W = `${P}.weight`;
  const replace = (ts: BnbTensor[], name: string, t: BnbTensor | null) =>
    ts.flatMap((x) => (x.name === name ? (t ? [t] : []) : [x]));
  const editQs = (from: string, to: string): BnbTensor => {
    const data = new TextEncoder().encode(new TextDecoder().decode(base[5].data).replace(from, to));
    return { ...base[5], shape: [data.length], data };
  };
  const cases: Array<[string, BnbTensor[], RegExp]> = [
    ['missing quant_state', replace(base, `${W}.quant_state.bitsandbytes__nf4`, null), /quant_state\.bitsandbytes__\{nf4\|fp4\}: tensor missing/],
    ['two quant_states', [...base, { ...base[5], name: `${W}.quant_state.bitsandbytes__fp4` }], /both quant_state.bitsandbytes__nf4 and __fp4 present/],
    ['quant_map length 15', replace(base, `${W}.quant_map`, f32Tensor(`${W}.quant_map`, NF4_CODE.slice(0, 15))), /weight\.quant_map: shape \[15\], expected \[16\]/],
    ['nested_quant_map length 255', replace(base, `${W}.nested_quant_map`, f32Tensor(`${W}.nested_quant_map`, dynamicMap256().slice(1))), /nested_quant_map: shape \[255\], expected \[256\]/],
    ['absmax length', replace(base, `${W}.absmax`, { ...base[1], shape: [1727], data: base[1].data.slice(1) }), /weight\.absmax: shape \[1727\], expected \[1728\]/],
    ['absmax F32 when nested', replace(base, `${W}.absmax`, f32Tensor(`${W}.absmax`, new Float32Array(1728))), /weight\.absmax: dtype F32, expected U8/],
    ['plain absmax length', replace(plain, `${W}.absmax`, f32Tensor(`${W}.absmax`, new Float32Array(1729))), /weight\.absmax: shape \[1729\], expected \[1728\]/],
    ['nested_absmax length', replace(base, `${W}.nested_absmax`, f32Tensor(`${W}.nested_absmax`, new Float32Array(6))), /nested_absmax: shape \[6\], expected \[7\]/],
    ['missing nested_absmax', replace(base, `${W}.nested_absmax`, null), /nested_absmax: tensor missing/],
    ['packed length', replace(base, W, { ...base[0], shape: [55295, 1], data: base[0].data.slice(1) }), /has 110592 values = 55296 packed bytes, but the weight has 55295 bytes/],
    ['weight dtype', replace(base, W, { ...base[0], dtype: 'BF16' as 'U8' }), /weight: dtype BF16, expected U8 \(quant_storage/],
    ['weight shape', replace(base, W, { ...base[0], shape: [1, 55296] }), /weight: shape \[1, 55296\], expected \[55296, 1\]/],
    ['data bytes vs shape', replace(base, `${W}.quant_map`, { ...base[2], data: base[2].data.slice(4) }), /quant_map: 60 data bytes, shape \[16\] F32 needs 64/],
    ['nested tensors without nested JSON', [...plain, base[3]], /nested_absmax: present but the quant_state has no nested fields/],
    ['JSON type vs key', replace(base, `${W}.quant_state.bitsandbytes__nf4`, editQs('"nf4"', '"fp4"')), /quant_type "fp4" does not match the tensor name suffix "nf4"/],
    ['quant_state bytes vs shape', replace(base, `${W}.quant_state.bitsandbytes__nf4`, { ...base[5], data: base[5].data.slice(1) }), /bitsandbytes__nf4: \d+ data bytes, shape \[\d+\] U8 needs/],
    ['blocksize in JSON', replace(base, `${W}.quant_state.bitsandbytes__nf4`, editQs('"blocksize": 64', '"blocksize": 48')), /bitsandbytes__nf4: blocksize 48 is not allowed/],
    ['3-D shape', replace(base, `${W}.quant_state.bitsandbytes__nf4`, editQs('[192, 576]', '[2, 96, 576]')), /shape \[2, 96, 576\] is not 2-D/],
  ];
  it.each(cases)('rejects a malformed layout: %s', (_what, ts, re) => {
    expect(() => fromBnbTensors(P, getter(ts))).toThrow(re);
  });
});

describe('findQuantizedLinears / bnbQuantizationConfig', () => {
  it('detects prefixes by the quant_state key only', () => {
    const names = [
      'model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.q_proj.weight.absmax',
      'model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4', 'model.layers.0.self_attn.q_proj.bias',
      'model.layers.0.mlp.down_proj.weight.quant_state.bitsandbytes__fp4', 'model.norm.weight',
      'model.layers.1.mlp.up_proj.weight.quant_state.bitsandbytes__int4',
    ];
    expect(findQuantizedLinears(names)).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj']);
  });
  it('quantization_config has transformers keys in order', () => {
    const c = bnbQuantizationConfig({ type: 'nf4', doubleQuant: true, computeDtype: 'bfloat16' });
    expect(JSON.stringify(c)).toBe(
      '{"quant_method":"bitsandbytes","_load_in_4bit":true,"_load_in_8bit":false,"load_in_4bit":true,"load_in_8bit":false,' +
        '"bnb_4bit_quant_type":"nf4","bnb_4bit_use_double_quant":true,"bnb_4bit_compute_dtype":"bfloat16",' +
        '"bnb_4bit_quant_storage":"uint8","llm_int8_threshold":6,"llm_int8_skip_modules":null,' +
        '"llm_int8_enable_fp32_cpu_offload":false,"llm_int8_has_fp16_weight":false}',
    );
  });
  it('quantizeLinear rejects a weight that does not match its shape', () => {
    expect(() => quantizeLinear(new Float32Array(10), [3, 4], { type: 'nf4' })).toThrow(/weight has 10 values, shape \[3, 4\] needs 12/);
  });
});
