// Hugging Face tensor names and shapes of a Llama-family causal LM, the seven LoRA target modules,
// and PEFT adapter tensor names (spec §4.2). Shapes are PyTorch Linear weights: [out, in].

import type { ModelConfig } from './config.ts';

export const EMBED_TOKENS = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

/** The seven Linear modules of a decoder layer, in PEFT's usual order. */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export function isLoraTarget(s: string): s is LoraTarget {
  return (LORA_TARGETS as readonly string[]).includes(s);
}

/** `self_attn.q_proj` or `mlp.gate_proj`: the module path inside a decoder layer. */
export function targetPath(t: LoraTarget): string {
  return t === 'gate_proj' || t === 'up_proj' || t === 'down_proj' ? `mlp.${t}` : `self_attn.${t}`;
}

/** `model.layers.N.self_attn.q_proj` (no `.weight`). */
export function moduleName(layer: number, t: LoraTarget): string {
  return `model.layers.${layer}.${targetPath(t)}`;
}

export function weightName(layer: number, t: LoraTarget): string {
  return `${moduleName(layer, t)}.weight`;
}

export function biasName(layer: number, t: LoraTarget): string {
  return `${moduleName(layer, t)}.bias`;
}

export function inputNormName(layer: number): string {
  return `model.layers.${layer}.input_layernorm.weight`;
}

export function postAttentionNormName(layer: number): string {
  return `model.layers.${layer}.post_attention_layernorm.weight`;
}

/** [out, in] of a target module's weight. */
export function targetShape(
  config: Pick<ModelConfig, 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize'>,
  t: LoraTarget,
): [number, number] {
  const h = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const ffn = config.intermediateSize;
  switch (t) {
    case 'q_proj': return [q, h];
    case 'k_proj': return [kv, h];
    case 'v_proj': return [kv, h];
    case 'o_proj': return [h, q];
    case 'gate_proj': return [ffn, h];
    case 'up_proj': return [ffn, h];
    case 'down_proj': return [h, ffn];
  }
}

/** Whether the module has a bias under this config (qwen2: q/k/v only). */
export function hasBias(config: ModelConfig, t: LoraTarget): boolean {
  if (t === 'q_proj' || t === 'k_proj' || t === 'v_proj') return config.attentionBias;
  if (t === 'o_proj') return config.attentionOutBias;
  return config.mlpBias;
}

export interface TensorShape {
  name: string;
  shape: number[];
}

/**
 * Every tensor the base model needs, with its shape, in checkpoint order
 * (embeddings, layers, final norm, then lm_head unless the embeddings are tied).
 */
export function modelTensorShapes(config: ModelConfig): TensorShape[] {
  const out: TensorShape[] = [{ name: EMBED_TOKENS, shape: [config.vocabSize, config.hiddenSize] }];
  for (let l = 0; l < config.numLayers; l++) {
    out.push({ name: inputNormName(l), shape: [config.hiddenSize] });
    for (const t of LORA_TARGETS) {
      const shape = targetShape(config, t);
      out.push({ name: weightName(l, t), shape });
      if (hasBias(config, t)) out.push({ name: biasName(l, t), shape: [shape[0]] });
    }
    out.push({ name: postAttentionNormName(l), shape: [config.hiddenSize] });
  }
  out.push({ name: FINAL_NORM, shape: [config.hiddenSize] });
  if (!config.tieWordEmbeddings) out.push({ name: LM_HEAD, shape: [config.vocabSize, config.hiddenSize] });
  return out;
}

// ---- PEFT ----------------------------------------------------------------------------------

export const PEFT_PREFIX = 'base_model.model.';

/** `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight` (A: [r, in]; B: [out, r]). */
export function peftLoraName(layer: number, t: LoraTarget, which: 'A' | 'B'): string {
  return `${PEFT_PREFIX}${moduleName(layer, t)}.lora_${which}.weight`;
}

/** Shape of a PEFT LoRA tensor for rank r. */
export function peftLoraShape(config: ModelConfig, t: LoraTarget, which: 'A' | 'B', r: number): [number, number] {
  const [out, inp] = targetShape(config, t);
  return which === 'A' ? [r, inp] : [out, r];
}

const PEFT_RE = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])\.weight$/;

/** Parses a PEFT LoRA tensor name; null for anything else (or a module in the wrong block). */
export function parsePeftLoraName(name: string): { layer: number; target: LoraTarget; which: 'A' | 'B' } | null {
  const m = PEFT_RE.exec(name);
  if (!m) return null;
  const t = m[3];
  if (!isLoraTarget(t) || targetPath(t) !== `${m[2]}.${t}`) return null;
  return { layer: Number(m[1]), target: t, which: m[4] as 'A' | 'B' };
}
