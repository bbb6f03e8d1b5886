import { describe, expect, it } from 'vitest';
import { ConfigError, eosTokenIds, parseModelConfig } from './config.ts';
import { LORA_TARGETS, hasBias, modelTensorShapes, parsePeftLoraName, peftLoraName, peftLoraShape, targetShape } from './names.ts';

const llama32 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192,
  num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, rms_norm_eps: 1e-5,
  rope_theta: 500000.0, max_position_embeddings: 131072, vocab_size: 128256, tie_word_embeddings: true,
  hidden_act: 'silu', attention_bias: false, mlp_bias: false, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009],
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  torch_dtype: 'bfloat16',
};
const qwen25 = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 896, intermediate_size: 4864,
  num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
  max_position_embeddings: 32768, vocab_size: 151936, tie_word_embeddings: true, hidden_act: 'silu',
  use_sliding_window: false, sliding_window: 32768, max_window_layers: 21, bos_token_id: 151643, eos_token_id: 151643,
};
const smol = {
  model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
  num_key_value_heads: 3, rms_norm_eps: 1e-5, rope_theta: 100000, vocab_size: 49152, tie_word_embeddings: true,
  rope_scaling: null, max_position_embeddings: 8192,
};

describe('parseModelConfig', () => {
  it('reads Llama-3.2-1B with llama3 rope scaling and several EOS ids', () => {
    const c = parseModelConfig(llama32);
    expect(c).toMatchObject({
      modelType: 'llama', hiddenSize: 2048, intermediateSize: 8192, numLayers: 16, numHeads: 32, numKvHeads: 8,
      headDim: 64, rmsNormEps: 1e-5, ropeTheta: 500000, maxPositionEmbeddings: 131072, vocabSize: 128256,
      tieWordEmbeddings: true, attentionBias: false, attentionOutBias: false, mlpBias: false, bosTokenId: 128000,
      eosTokenId: [128001, 128008, 128009], dtype: 'bfloat16',
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
    expect(eosTokenIds(c)).toEqual([128001, 128008, 128009]);
  });

  it('reads SmolLM2 (head_dim from hidden/heads) and Qwen2.5 (q/k/v bias, no o_proj bias)', () => {
    const s = parseModelConfig(smol);
    expect(s.headDim).toBe(64);
    expect(s.ropeScaling).toBeNull();
    expect(s.bosTokenId).toBe(1); // LlamaConfig default
    const q = parseModelConfig(JSON.stringify(qwen25));
    expect(q).toMatchObject({ modelType: 'qwen2', headDim: 64, attentionBias: true, attentionOutBias: false, mlpBias: false, numKvHeads: 2 });
    expect(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj'].map((t) => hasBias(q, t as never))).toEqual([true, true, true, false, false]);
  });

  it('applies transformers defaults', () => {
    const min = { model_type: 'llama', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 100 };
    expect(parseModelConfig(min)).toMatchObject({
      numKvHeads: 4, headDim: 16, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: null, maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false, bosTokenId: 1, eosTokenId: 2, hiddenAct: 'silu',
    });
    expect(parseModelConfig({ ...min, model_type: 'qwen2' })).toMatchObject({ tieWordEmbeddings: false, bosTokenId: null, eosTokenId: null, maxPositionEmbeddings: 32768 });
    expect(parseModelConfig({ ...min, model_type: 'mistral', sliding_window: 4096 })).toMatchObject({ attentionBias: false, maxPositionEmbeddings: 131072 });
    expect(parseModelConfig({ ...min, attention_bias: true, mlp_bias: true })).toMatchObject({ attentionBias: true, attentionOutBias: true, mlpBias: true });
  });

  it('reads transformers v5 rope_parameters and linear scaling', () => {
    const { rope_theta: _t, rope_scaling: _s, ...rest } = llama32;
    const v5 = { ...rest, rope_parameters: { rope_theta: 500000, rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } };
    expect(parseModelConfig(v5)).toMatchObject({ ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8 } });
    expect(parseModelConfig({ ...smol, rope_theta: undefined, rope_parameters: { rope_theta: 1e6, rope_type: 'default' } })).toMatchObject({ ropeTheta: 1e6, ropeScaling: null });
    expect(parseModelConfig({ ...smol, rope_scaling: { type: 'linear', factor: 2 } }).ropeScaling).toEqual({ type: 'linear', factor: 2 });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [1, 2], /config\.json: expected a JSON object, got an array/],
    ['invalid JSON text', '{"model_type": ', /config\.json: not valid JSON/],
    ['unsupported model_type', { ...smol, model_type: 'gpt2' }, /unsupported model_type "gpt2"; supported: llama, mistral, qwen2/],
    ['missing model_type', { ...smol, model_type: undefined }, /field "model_type" must be one of llama, mistral, qwen2, got nothing \(missing\)/],
    ['missing hidden_size', { ...smol, hidden_size: undefined }, /config\.json: field "hidden_size" must be a positive integer, got nothing \(missing\)/],
    ['string hidden_size', { ...smol, hidden_size: '576' }, /field "hidden_size" must be a positive integer, got "576"/],
    ['fractional layers', { ...smol, num_hidden_layers: 2.5 }, /field "num_hidden_layers" must be a positive integer, got 2.5/],
    ['gelu activation', { ...smol, hidden_act: 'gelu' }, /field "hidden_act" must be "silu".*got "gelu"/],
    ['kv heads not dividing heads', { ...smol, num_key_value_heads: 4 }, /field "num_key_value_heads" must be a divisor of num_attention_heads \(9\), got 4/],
    ['hidden not divisible by heads', { ...smol, hidden_size: 577 }, /field "num_attention_heads" must be a divisor of hidden_size \(577\)/],
    ['odd head_dim', { ...smol, head_dim: 63 }, /field "head_dim" must be even/],
    ['yarn rope scaling', { ...smol, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /field "rope_scaling\.rope_type" must be "default", "linear" or "llama3".*got "yarn"/],
    ['llama3 without factor', { ...llama32, rope_scaling: { ...llama32.rope_scaling, factor: undefined } }, /field "rope_scaling\.factor" must be a positive number, got nothing/],
    ['negative eps', { ...smol, rms_norm_eps: -1 }, /field "rms_norm_eps" must be a positive number, got -1/],
    ['bad eos list', { ...smol, eos_token_id: [2, 'x'] }, /field "eos_token_id\[1\]" must be a token id/],
    ['tie flag as string', { ...smol, tie_word_embeddings: 'yes' }, /field "tie_word_embeddings" must be true or false, got "yes"/],
  ];
  for (const [what, json, re] of bad) {
    it(`rejects ${what}`, () => {
      let err: unknown;
      try {
        parseModelConfig(json);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(re);
    });
  }
  it('names the source file', () => {
    expect(() => parseModelConfig({ ...smol, vocab_size: 0 }, 'my/config.json')).toThrow(/^my\/config\.json: field "vocab_size"/);
  });
});

describe('names', () => {
  it('lists the base tensors with shapes', () => {
    const c = parseModelConfig(qwen25);
    const shapes = new Map(modelTensorShapes(c).map((t) => [t.name, t.shape]));
    expect(shapes.get('model.embed_tokens.weight')).toEqual([151936, 896]);
    expect(shapes.get('model.layers.3.self_attn.q_proj.weight')).toEqual([896, 896]);
    expect(shapes.get('model.layers.3.self_attn.k_proj.bias')).toEqual([128]);
    expect(shapes.has('model.layers.3.self_attn.o_proj.bias')).toBe(false);
    expect(shapes.get('model.layers.23.mlp.down_proj.weight')).toEqual([896, 4864]);
    expect(shapes.get('model.layers.0.post_attention_layernorm.weight')).toEqual([896]);
    expect(shapes.has('lm_head.weight')).toBe(false); // tied
    expect(modelTensorShapes({ ...c, tieWordEmbeddings: false }).at(-1)).toEqual({ name: 'lm_head.weight', shape: [151936, 896] });
    expect(shapes.size).toBe(1 + 24 * (2 + 7 + 3) + 1);
  });

  it('gives LoRA target shapes and PEFT names', () => {
    const c = parseModelConfig(smol);
    expect(LORA_TARGETS.map((t) => targetShape(c, t))).toEqual([[576, 576], [192, 576], [192, 576], [576, 576], [1536, 576], [1536, 576], [576, 1536]]);
    expect(peftLoraName(0, 'q_proj', 'A')).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(peftLoraName(12, 'down_proj', 'B')).toBe('base_model.model.model.layers.12.mlp.down_proj.lora_B.weight');
    expect(peftLoraShape(c, 'v_proj', 'A', 8)).toEqual([8, 576]);
    expect(peftLoraShape(c, 'v_proj', 'B', 8)).toEqual([192, 8]);
    expect(parsePeftLoraName('base_model.model.model.layers.12.mlp.down_proj.lora_B.weight')).toEqual({ layer: 12, target: 'down_proj', which: 'B' });
    expect(parsePeftLoraName('base_model.model.model.layers.1.mlp.q_proj.lora_A.weight')).toBeNull();
    expect(parsePeftLoraName('base_model.model.lm_head.lora_A.weight')).toBeNull();
  });
});
