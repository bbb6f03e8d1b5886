import { pythonJsonFloat } from '../util/python.ts';
import { describe, expect, it } from 'vitest';
import { bytesSource } from '../formats/byte-source.ts';
import { f32ToBf16Bytes, f32ToF16Bytes } from '../formats/dtypes.ts';
import { openSafetensors, writeSafetensors } from '../formats/safetensors.ts';
import { LORA_MODULES, loraShapes, makeLoraConfig, type LoraModelDims } from './lora-config.ts';
import {
  adapterConfigJson,
  loraTensorName,
  parseAdapterConfig,
  parseLoraTensorName,
  readAdapter,
  writeAdapter,
  type AdapterTensor,
} from './peft.ts';
import { initLoraA } from './rng.ts';

// What PEFT 0.18.1 writes for LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05, all seven
// modules, bias="none", task_type="CAUSAL_LM") after save_pretrained (targets sorted here).
const QLORA_JSON = `{
  "alora_invocation_tokens": null,
  "alpha_pattern": {},
  "arrow_config": null,
  "auto_mapping": null,
  "base_model_name_or_path": "huggyllama/llama-7b",
  "bias": "none",
  "corda_config": null,
  "ensure_weight_tying": false,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "peft_version": "0.18.1",
  "qalora_group_size": 16,
  "r": 64,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "down_proj",
    "gate_proj",
    "k_proj",
    "o_proj",
    "q_proj",
    "up_proj",
    "v_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": false
}`;

describe('adapter_config.json', () => {
  it('is written exactly like PEFT (json.dumps indent=2, sort_keys=True)', () => {
    expect(adapterConfigJson(makeLoraConfig(), 'huggyllama/llama-7b')).toBe(QLORA_JSON);
  });

  it('formats floats like Python repr and strings like ensure_ascii', () => {
    const cases: Array<[number, string]> = [
      [0.05, '0.05'], [0.1, '0.1'], [0, '0.0'], [16, '16.0'], [1e-5, '1e-05'], [0.0001, '0.0001'],
      [1.5e-7, '1.5e-07'], [-2.5, '-2.5'], [1e16, '1e+16'], [1234567890123456.7, '1234567890123456.8'],
      [1e22, '1e+22'], [2 / 3, '0.6666666666666666'], [123.456, '123.456'],
    ];
    for (const [x, s] of cases) expect(pythonJsonFloat(x)).toBe(s);
    const json = adapterConfigJson(makeLoraConfig({ alpha: 32.5, dropout: 0, r: 8, targetModules: ['v_proj', 'q_proj'] }), 'dir/modèle "x"\u007f');
    expect(json).toContain('"lora_alpha": 32.5,');
    expect(json).toContain('"lora_dropout": 0.0,');
    expect(json).toContain('"target_modules": [\n    "q_proj",\n    "v_proj"\n  ],');
    expect(json).toContain('"base_model_name_or_path": "dir/mod\\u00e8le \\"x\\"\\u007f",');
  });

  it('round-trips through parseAdapterConfig', () => {
    const cfg = makeLoraConfig({ r: 16, alpha: 32, dropout: 0.1, targetModules: ['k_proj', 'down_proj'], useRslora: true });
    const parsed = parseAdapterConfig(adapterConfigJson(cfg, 'm'));
    expect(parsed.config).toEqual(cfg);
    expect(parsed.baseModel).toBe('m');
  });

  it('parses a hand-written PEFT config (Guanaco-style: float alpha, set order, unknown and missing keys)', () => {
    const text = `{
      "base_model_name_or_path": "huggyllama/llama-7b", "bias": "none", "fan_in_fan_out": false,
      "inference_mode": true, "init_lora_weights": true, "lora_alpha": 16.0, "lora_dropout": 0.1,
      "modules_to_save": null, "peft_type": "LORA", "r": 64, "revision": null,
      "target_modules": ["gate_proj", "down_proj", "v_proj", "up_proj", "q_proj", "o_proj", "k_proj"],
      "task_type": "CAUSAL_LM", "some_future_key": {"x": 1}, "use_qalora": false, "lora_ga_config": null
    }`;
    const { config, baseModel } = parseAdapterConfig(text, 'guanaco/adapter_config.json');
    expect(config).toMatchObject({ r: 64, alpha: 16, dropout: 0.1, useRslora: false, targetModules: [...LORA_MODULES] });
    expect(baseModel).toBe('huggyllama/llama-7b');
  });

  it('resolves regex, "all-linear", dotted and default target_modules like PEFT', () => {
    const t = (tm: unknown, extra = {}) => parseAdapterConfig(JSON.stringify({ r: 8, target_modules: tm, ...extra }), 'c', { numLayers: 4 }).config.targetModules;
    expect(t('all-linear')).toEqual([...LORA_MODULES]);
    expect(t('.*\\.(q_proj|v_proj)')).toEqual(['q_proj', 'v_proj']);
    expect(t('.*self_attn.*')).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
    expect(t('model\\.layers\\.\\d+\\.mlp\\.(?P<m>gate|up)_proj')).toEqual(['gate_proj', 'up_proj']);
    expect(t(['self_attn.q_proj', 'mlp.down_proj'])).toEqual(['q_proj', 'down_proj']);
    expect(t(null)).toEqual(['q_proj', 'v_proj']);
    expect(t('all-linear', { exclude_modules: ['down_proj'] })).toEqual(LORA_MODULES.filter((m) => m !== 'down_proj'));
    // Full match: "q_proj" alone as a regex matches no full module key.
    expect(() => t('q_proj')).toThrow(/selects none of q_proj/);
  });

  it('rejects unsupported configs, each with its own message', () => {
    const bad = (extra: Record<string, unknown>) => () => parseAdapterConfig(JSON.stringify({ peft_type: 'LORA', r: 8, target_modules: ['q_proj'], ...extra }), 'bad.json', { numLayers: 8 });
    expect(bad({ rank_pattern: { q_proj: 4 } })).toThrow(/^bad\.json: rank_pattern \{"q_proj":4\} is not supported yet/);
    expect(bad({ alpha_pattern: { 'model.layers.0.self_attn.q_proj': 2 } })).toThrow(/alpha_pattern .* is not supported yet/);
    expect(bad({ use_dora: true })).toThrow(/use_dora is true: DoRA adapters/);
    expect(bad({ peft_type: 'IA3' })).toThrow(/peft_type is "IA3"; only LoRA/);
    expect(bad({ target_modules: ['q_proj', 'lm_head'] })).toThrow(/target_modules "lm_head" is not supported \(LoRA is supported on q_proj/);
    expect(bad({ target_modules: '.*layers\\.[0-3]\\..*q_proj' })).toThrow(/selects q_proj in only 4 of 8 layers/);
    expect(bad({ target_modules: '([' })).toThrow(/target_modules regex "\(\[" is not supported/);
    expect(bad({ modules_to_save: ['lm_head'] })).toThrow(/modules_to_save \["lm_head"\] is not supported/);
    expect(bad({ layers_to_transform: [0, 1] })).toThrow(/layers_to_transform \[0,1\] is not supported yet/);
    expect(bad({ r: 0 })).toThrow(/r must be an integer ≥ 1, got 0/);
    expect(bad({ bias: 'all' })).toThrow(/bias is "all"/);
    expect(() => parseAdapterConfig('{"r": 8,', 'x.json')).toThrow(/^x\.json: not valid JSON/);
  });
});

const dims: LoraModelDims = { numLayers: 2, hiddenSize: 16, intermediateSize: 40, numHeads: 4, numKvHeads: 2, headDim: 4 };

function makeTensors(cfg = makeLoraConfig({ r: 4 })): Map<string, AdapterTensor> {
  const out = new Map<string, AdapterTensor>();
  for (let l = 0; l < dims.numLayers; l++) {
    for (const m of cfg.targetModules) {
      const { a, b } = loraShapes(dims, m, cfg.r);
      out.set(loraTensorName(l, m, 'A'), { shape: a, data: initLoraA(cfg.seed, l, m, a[0], a[1]) });
      out.set(loraTensorName(l, m, 'B'), { shape: b, data: new Float32Array(b[0] * b[1]).map((_, i) => Math.sin(i + l)) });
    }
  }
  return out;
}

describe('adapter_model.safetensors', () => {
  it('names tensors like PEFT', () => {
    expect(loraTensorName(0, 'q_proj', 'A')).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(loraTensorName(31, 'down_proj', 'B')).toBe('base_model.model.model.layers.31.mlp.down_proj.lora_B.weight');
    expect(parseLoraTensorName('base_model.model.model.layers.3.mlp.up_proj.lora_B.default.weight')).toEqual({ layer: 3, module: 'up_proj', part: 'B', adapter: 'default' });
    expect(parseLoraTensorName('base_model.model.model.layers.3.self_attn.up_proj.lora_B.weight')).toBeNull();
    expect(parseLoraTensorName('base_model.model.lm_head.lora_A.weight')).toBeNull();
  });

  it('round-trips F32 tensors with metadata {"format": "pt"}', async () => {
    const cfg = makeLoraConfig({ r: 4 });
    const tensors = makeTensors(cfg);
    const bytes = writeAdapter(tensors);
    const reader = await openSafetensors(bytesSource(bytes, 'adapter_model.safetensors'));
    expect(reader.header.metadata).toEqual({ format: 'pt' });
    expect(reader.names().length).toBe(2 * 7 * 2);
    expect(reader.info(loraTensorName(1, 'k_proj', 'B'))).toMatchObject({ dtype: 'F32', shape: [8, 4] });
    const back = await readAdapter(reader, cfg, dims);
    expect([...back.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) expect(back.get(name)).toEqual(t);
  });

  it('reads F16 / BF16 tensors saved under an adapter name', async () => {
    const cfg = makeLoraConfig({ r: 4, targetModules: ['q_proj', 'v_proj'] });
    const tensors = makeTensors(cfg);
    const list = [...tensors].map(([name, t], i) => ({
      name: name.replace(/\.weight$/, '.default.weight'), // ...lora_A.default.weight
      dtype: i % 2 ? ('BF16' as const) : ('F16' as const),
      shape: t.shape,
      data: i % 2 ? f32ToBf16Bytes(t.data) : f32ToF16Bytes(t.data),
    }));
    const reader = await openSafetensors(bytesSource(writeSafetensors(list, { format: 'pt' }), 'f16.safetensors'));
    const back = await readAdapter(reader, cfg, dims);
    for (const [name, t] of tensors) {
      const got = back.get(name)!;
      expect(got.shape).toEqual(t.shape);
      for (let i = 0; i < t.data.length; i++) expect(Math.abs(got.data[i]! - t.data[i]!)).toBeLessThanOrEqual(Math.abs(t.data[i]!) / 128 + 1e-7);
    }
  });

  it('rejects tensors that do not fit the model, naming each', async () => {
    const cfg = makeLoraConfig({ r: 4, targetModules: ['q_proj', 'v_proj'] });
    const open = async (t: Map<string, AdapterTensor>) => openSafetensors(bytesSource(writeAdapter(t), 'bad.safetensors'));

    const wrongShape = makeTensors(cfg);
    wrongShape.set(loraTensorName(1, 'v_proj', 'B'), { shape: [16, 4], data: new Float32Array(64) });
    await expect(readAdapter(await open(wrongShape), cfg, dims)).rejects.toThrow(
      /bad\.safetensors: adapter does not match the model:\n- base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight: shape \[16, 4\], expected \[8, 4\]/,
    );

    const missing = makeTensors(cfg);
    missing.delete(loraTensorName(0, 'q_proj', 'A'));
    await expect(readAdapter(await open(missing), cfg, dims)).rejects.toThrow(/1 tensor missing: base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight/);

    const extra = makeTensors(makeLoraConfig({ r: 4, targetModules: ['q_proj', 'v_proj', 'o_proj'] }));
    await expect(readAdapter(await open(extra), cfg, dims)).rejects.toThrow(/o_proj is not in the config's target_modules/);

    await expect(readAdapter(await open(makeTensors(cfg)), cfg, { ...dims, numLayers: 1 })).rejects.toThrow(/layer 1 does not exist \(the model has 1 layers\)/);
    expect(() => writeAdapter(new Map([['lm_head.weight', { shape: [1, 1], data: new Float32Array(1) }]]))).toThrow(/not a PEFT LoRA tensor name/);
  });
});
