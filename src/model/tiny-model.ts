// Tiny random models for tests: a config.json object per family, seeded random weights with the
// right HF names and shapes, and seeded random PEFT LoRA tensors. Same seed, same numbers everywhere.

import { parseModelConfig, type ModelConfig } from './config.ts';
import { LORA_TARGETS, modelTensorShapes, peftLoraName, peftLoraShape, type LoraTarget } from './names.ts';
import { gaussian, mulberry32 } from '../util/random.ts';

/** config.json objects of tiny models (override any field). */
export function tinyConfigJson(family: 'llama' | 'llama3' | 'qwen2' | 'mistral', over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    model_type: family === 'llama3' ? 'llama' : family,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 50,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: family !== 'qwen2',
  };
  if (family === 'llama3') {
    base.rope_theta = 500000;
    base.rope_scaling = { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    base.tie_word_embeddings = false;
  }
  return { ...base, ...over };
}

export function tinyConfig(family: 'llama' | 'llama3' | 'qwen2' | 'mistral', over: Record<string, unknown> = {}): ModelConfig {
  return parseModelConfig(tinyConfigJson(family, over));
}

/** Random weights: norms ≈ 1 ± 0.1; matrices and biases N(0, std²); embeddings N(0, 0.5²). */
export function randomWeights(config: ModelConfig, seed = 1, std = 0.15): Map<string, Float32Array> {
  const g = gaussian(mulberry32(seed));
  const out = new Map<string, Float32Array>();
  for (const { name, shape } of modelTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    const isNorm = name.endsWith('norm.weight');
    const s = name.includes('embed_tokens') ? 0.5 : std;
    for (let i = 0; i < n; i++) a[i] = isNorm ? 1 + 0.1 * g() : s * g();
    out.set(name, a);
  }
  return out;
}

/** Random PEFT LoRA tensors (by PEFT name) for `targets` in every layer; `zeroB` gives PEFT's init. */
export function randomLoraTensors(
  config: ModelConfig, rank: number, targets: readonly LoraTarget[] = LORA_TARGETS,
  opts: { seed?: number; zeroB?: boolean; std?: number } = {},
): Map<string, Float32Array> {
  const g = gaussian(mulberry32(opts.seed ?? 7));
  const std = opts.std ?? 0.1;
  const out = new Map<string, Float32Array>();
  for (let l = 0; l < config.numLayers; l++) {
    for (const t of targets) {
      for (const which of ['A', 'B'] as const) {
        const [r, c] = peftLoraShape(config, t, which, rank);
        const a = new Float32Array(r * c);
        if (which === 'A' || !opts.zeroB) for (let i = 0; i < a.length; i++) a[i] = std * g();
        out.set(peftLoraName(l, t, which), a);
      }
    }
  }
  return out;
}
