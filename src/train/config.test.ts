import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LORA_CONFIG,
  LORA_MODULES,
  loraParamCount,
  loraScaling,
  loraShapes,
  makeLoraConfig,
  type LoraModule,
} from './lora-config.ts';
import { DEFAULT_TRAIN_CONFIG, TRAIN_PRESETS, makeTrainConfig } from './train-config.ts';

const llama7b = { numLayers: 32, hiddenSize: 4096, intermediateSize: 11008, numHeads: 32, numKvHeads: 32, headDim: 128 };

describe('LoRA config', () => {
  it('has the QLoRA defaults and alpha/r scaling', () => {
    expect(DEFAULT_LORA_CONFIG).toMatchObject({ r: 64, alpha: 16, dropout: 0.05, useRslora: false });
    expect(DEFAULT_LORA_CONFIG.targetModules).toEqual([...LORA_MODULES]);
    expect(loraScaling(DEFAULT_LORA_CONFIG)).toBe(0.25);
    expect(loraScaling({ r: 64, alpha: 16, useRslora: true })).toBe(2);
  });

  it('counts LLaMA-7B r=64 parameters like qlora-formats.md §5.3', () => {
    expect(loraParamCount({ ...llama7b, numLayers: 1 }, DEFAULT_LORA_CONFIG)).toBe(4_997_120);
    expect(loraParamCount(llama7b, DEFAULT_LORA_CONFIG)).toBe(159_907_840);
    expect(loraShapes({ ...llama7b, numKvHeads: 8 }, 'k_proj', 8)).toEqual({ a: [8, 4096], b: [1024, 8] });
    expect(loraShapes(llama7b, 'down_proj', 8)).toEqual({ a: [8, 11008], b: [4096, 8] });
  });

  it('keeps target modules in block order', () => {
    expect(makeLoraConfig({ targetModules: ['v_proj', 'q_proj'] }).targetModules).toEqual(['q_proj', 'v_proj']);
  });

  it('rejects bad values with messages naming each problem', () => {
    expect(() => makeLoraConfig({ targetModules: ['q_proj', 'qkv_proj', 'lm_head'] as LoraModule[] })).toThrow(
      /unknown target modules "qkv_proj", "lm_head" \(expected some of q_proj, k_proj/,
    );
    expect(() => makeLoraConfig({ r: 0 })).toThrow(/r must be an integer ≥ 1, got 0/);
    expect(() => makeLoraConfig({ r: 4.5 })).toThrow(/r must be an integer/);
    expect(() => makeLoraConfig({ dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => makeLoraConfig({ alpha: -1, targetModules: [] })).toThrow(/alpha must be[\s\S]*targetModules is empty/);
    expect(() => makeLoraConfig({ targetModules: ['q_proj', 'q_proj'] })).toThrow(/listed twice: q_proj/);
  });
});

describe('training config', () => {
  it('has the QLoRA / HF defaults', () => {
    expect(DEFAULT_TRAIN_CONFIG).toMatchObject({
      lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0.3,
      schedule: 'constant', warmupRatio: 0.03, batchSize: 1, gradAccum: 16,
    });
  });

  it('presets are valid plain data with one-line descriptions', () => {
    expect(TRAIN_PRESETS.map((p) => p.name)).toEqual(['QLoRA paper defaults', 'Quick try', 'Low memory']);
    for (const p of TRAIN_PRESETS) {
      expect(() => makeTrainConfig(p.train)).not.toThrow();
      expect(() => makeLoraConfig(p.lora)).not.toThrow();
      expect(p.description).not.toMatch(/\n/);
      expect(JSON.parse(JSON.stringify(p))).toEqual(p);
    }
  });

  it('rejects bad values with messages naming each problem', () => {
    expect(() => makeTrainConfig({ lr: 0, beta2: 1, schedule: 'step' as 'linear' })).toThrow(
      /lr must be in \(0, 1\][\s\S]*beta2 must be in \[0, 1\)[\s\S]*schedule must be one of constant, linear, cosine/,
    );
    expect(() => makeTrainConfig({ maxSteps: 0, epochs: 0 })).toThrow(/set maxSteps or epochs/);
    expect(() => makeTrainConfig({ gradAccum: 0 })).toThrow(/gradAccum must be an integer ≥ 1/);
    expect(() => makeTrainConfig({ evalSplit: 0.9 })).toThrow(/evalSplit must be a fraction in \[0, 0.5\] or a whole number of examples, got 0.9/);
    expect(makeTrainConfig({ evalSplit: 3 }).evalSplit).toBe(3);
  });
});
