// Counter-based RNG shared bit for bit with shaders/rng.wgsl, so GPU dropout masks can be
// recomputed on the CPU, plus the deterministic LoRA A initialization.
// out = mix(mix(counter ^ key) + key), key = mix(mix(seed ^ 0x243f6a88) ^ stream), where mix
// is Wellons' "lowbias32" hash (all u32 arithmetic: Math.imul / >>> here, wrapping u32 in WGSL).
// Uniforms are (out >> 8) / 2^24, exact in f32 and in [0, 1).

import { type LoraModule, loraModuleIndex } from './lora-config.ts';

export function rngMix(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The per-(seed, stream) key; hoist it out of loops over counters. */
export function rngKey(seed: number, stream: number): number {
  return rngMix((rngMix((seed ^ 0x243f6a88) >>> 0) ^ stream) >>> 0);
}

export function rngU32Key(key: number, counter: number): number {
  return rngMix((rngMix((counter ^ key) >>> 0) + key) >>> 0);
}

export function rngU32(seed: number, stream: number, counter: number): number {
  return rngU32Key(rngKey(seed, stream), counter);
}

export function rngUniformKey(key: number, counter: number): number {
  return (rngU32Key(key, counter) >>> 8) / 16777216;
}

/** A uniform float in [0, 1) (a multiple of 2^-24, so the same value in f32 and f64). */
export function rngUniform(seed: number, stream: number, counter: number): number {
  return rngUniformKey(rngKey(seed, stream), counter);
}

// ---- streams: what each random number is for -------------------------------------------

export const RNG_PURPOSE = { loraAInit: 1, dropout: 2, stepSeed: 3 } as const;

/** A stream id: purpose (8 bits) · layer (16 bits) · module index (8 bits). */
export function rngStream(purpose: number, layer = 0, moduleIndex = 0): number {
  if (!(layer >= 0 && layer < 65536 && moduleIndex >= 0 && moduleIndex < 256)) {
    throw new RangeError(`rngStream: layer ${layer} or module ${moduleIndex} out of range`);
  }
  return ((purpose << 24) | (layer << 8) | moduleIndex) >>> 0;
}

/**
 * Drop threshold for probability p: an element is dropped when its 16 bits of a draw are below it
 * (p in steps of 2^-16: 0.05 drops 3277/65536 = 0.050003; dropoutScale still uses p itself).
 */
export function dropoutThreshold(p: number): number {
  return Math.round(p * 65536);
}

/** The multiplier of a kept element, 1/(1-p), from p itself (not from its 2^-16-step threshold). */
export function dropoutScale(p: number): number {
  return 1 / (1 - p);
}

/**
 * The key of a dropout mask for one (micro-step, layer, module): pass it to a kernel as a
 * uniform and use the element index (token · in_features + column) as the counter.
 */
export function dropoutKey(seed: number, microStep: number, layer: number, module: LoraModule): number {
  const stepSeed = rngU32(seed, rngStream(RNG_PURPOSE.stepSeed), microStep >>> 0);
  return rngKey(stepSeed, rngStream(RNG_PURPOSE.dropout, layer, loraModuleIndex(module)));
}

/**
 * Whether dropout keeps element `counter` (same test as rng_keep in rng_lib.wgsl): elements 2j and
 * 2j+1 take the low and high 16 bits of draw j, so a kernel hashes once per two elements.
 */
export function dropoutKeep(key: number, counter: number, threshold: number): boolean {
  const h = rngU32Key(key, counter >>> 1);
  return (counter & 1 ? h >>> 16 : h & 0xffff) >= threshold;
}

// ---- LoRA initialization -----------------------------------------------------------------

/**
 * lora_A.weight [r, in] for one (layer, module), row-major: U(−1/√in, +1/√in), PEFT's
 * init_lora_weights=True (kaiming_uniform_(a=√5): gain √(2/(1+5)), bound gain·√(3/in) = 1/√in).
 * Element i uses counter i of stream (loraAInit, layer, module), so it is reproducible anywhere.
 */
export function initLoraA(seed: number, layer: number, module: LoraModule, r: number, inFeatures: number): Float32Array {
  const bound = 1 / Math.sqrt(inFeatures);
  const key = rngKey(seed, rngStream(RNG_PURPOSE.loraAInit, layer, loraModuleIndex(module)));
  const out = new Float32Array(r * inFeatures);
  for (let i = 0; i < out.length; i++) out[i] = -bound + 2 * bound * rngUniformKey(key, i);
  return out;
}

/** lora_B.weight [out, r]: zeros, so the adapter starts as the identity (PEFT default). */
export function initLoraB(outFeatures: number, r: number): Float32Array {
  return new Float32Array(outFeatures * r);
}
