// Text generation with a KV cache: one prefill pass over the prompt, then one token per step
// (decode attention over the cache), sampling on the CPU from the last position's logits,
// streaming each new token to a callback, stopping on EOS or the token limit. Works with the
// base model alone or base + LoRA adapter (the same cache layout for both).

import { mulberry32 } from '../util/random.ts';
import { makeBatch } from './batch.ts';
import type { LoraAdapter } from './lora.ts';
import { KvCache, type GpuModel } from './model.ts';
import { sampleToken, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Token ids that end generation (the EOS ids); the stop token is not returned. */
  stopIds?: readonly number[];
  seed?: number;
  lora?: LoraAdapter | null;
  /** Called with each new token id as soon as it is chosen; return false to stop early. */
  onToken?: (id: number) => boolean | void;
}

export interface GenerateResult {
  ids: number[];
  /** 'eos' | 'length' | 'stopped' (onToken returned false) | 'context' (model's positions ran out) */
  finish: 'eos' | 'length' | 'stopped' | 'context';
  prefillMs: number;
  decodeMs: number;
  tokensPerSecond: number;
}

export async function generate(model: GpuModel, promptIds: readonly number[], opts: GenerateOptions): Promise<GenerateResult> {
  if (!promptIds.length) throw new Error('generate: the prompt has no tokens (a BOS token at least is needed)');
  const maxPos = model.rope.maxPos;
  if (promptIds.length >= maxPos) throw new Error(`generate: the prompt has ${promptIds.length} tokens; this model is loaded for ${maxPos} positions`);
  const maxS = Math.min(maxPos, promptIds.length + opts.maxNewTokens);
  const cache = new KvCache(model.rt, model.config, maxS);
  const rand = mulberry32(opts.seed ?? 0);
  const stop = new Set(opts.stopIds ?? []);
  const context = [...promptIds];
  const out: number[] = [];
  let finish: GenerateResult['finish'] = 'length';
  const t0 = now();
  let t1 = t0;
  try {
    let logits = await model.logits(makeBatch({ inputIds: [context] }), opts.lora, {
      kv: { cache, start: 0 },
      fromRow: context.length - 1,
    });
    t1 = now();
    while (out.length < opts.maxNewTokens) {
      const id = sampleToken(logits, context, opts, rand);
      if (stop.has(id)) {
        finish = 'eos';
        break;
      }
      out.push(id);
      context.push(id);
      if (opts.onToken?.(id) === false) {
        finish = 'stopped';
        break;
      }
      if (out.length >= opts.maxNewTokens) break;
      if (context.length >= maxS) {
        finish = context.length >= maxPos ? 'context' : 'length';
        break;
      }
      const pos = context.length - 1;
      logits = await model.logits(
        makeBatch({ inputIds: [[id]], positionIds: [[pos]] }),
        opts.lora,
        { kv: { cache, start: pos } },
      );
    }
  } finally {
    cache.destroy();
  }
  const t2 = now();
  return {
    ids: out,
    finish,
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    tokensPerSecond: out.length > 1 ? ((out.length - 1) * 1000) / Math.max(1e-9, t2 - t1) : 0,
  };
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
