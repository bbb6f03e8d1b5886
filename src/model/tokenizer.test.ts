import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.ts';
import { createTokenizer, type TextTokenizer } from './tokenizer.ts';

const SHARED = fileURLToPath(new URL('../../../shared', import.meta.url));
const HAVE = existsSync(`${SHARED}/models/stories260K/tokenizer.json`) && existsSync(`${SHARED}/tokenizers/gpt2/tokenizer.json`);
if (!HAVE) console.warn(`tokenizer tests skipped: ${SHARED} (the shared reference folder) is absent`);

function load(dir: string, cfgOver?: (c: Record<string, unknown>) => Record<string, unknown>): TextTokenizer {
  const cfg = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')) as Record<string, unknown>;
  const model = existsSync(`${dir}/config.json`) ? parseModelConfig(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'))) : undefined;
  return createTokenizer(readFileSync(`${dir}/tokenizer.json`, 'utf8'), cfgOver ? cfgOver(cfg) : cfg, model);
}

const TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  '  leading spaces and\ttabs\nnew lines\n\n',
  "Spaces before punctuation , . ! ? and don 't clean up",
  'héllo wörld — “quotes” 😀 日本語 🇫🇷 €100',
  'x',
  ' ',
];

/** Stream every id through a decoder; returns the chunks. */
function stream(tok: TextTokenizer, ids: number[], skipSpecial = true): string[] {
  const d = tok.createDecoder({ skipSpecial });
  const chunks = ids.map((id) => d.push(id));
  chunks.push(d.flush());
  return chunks;
}

describe.skipIf(!HAVE)('tokenizer (shared tokenizers)', () => {
  const stories = HAVE ? load(`${SHARED}/models/stories260K`) : (null as never);
  const llama2 = HAVE ? load(`${SHARED}/tokenizers/llama2`) : (null as never);
  const gpt2 = HAVE ? load(`${SHARED}/tokenizers/gpt2`) : (null as never);

  it('knows special ids and vocab sizes', () => {
    expect([stories.bosId, stories.eosId, stories.padId, stories.unkId, stories.vocabSize]).toEqual([1, 2, null, 0, 512]);
    expect(stories.eosIds).toEqual([2]);
    expect([llama2.bosId, llama2.eosId, llama2.vocabSize]).toEqual([1, 2, 32000]);
    expect([gpt2.bosId, gpt2.eosId, gpt2.vocabSize, gpt2.addBosDefault]).toEqual([50256, 50256, 50257, false]);
    expect([stories.addBosDefault, llama2.addBosDefault]).toEqual([true, true]);
  });

  it('adds BOS exactly once', () => {
    const ids = stories.encode('Hello world');
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1)).toHaveLength(1);
    expect(stories.encode('Hello world', { addBos: false })).toEqual(ids.slice(1));
    expect(stories.encode('<s>Hello world')).toEqual([1, ...stories.encode('Hello world', { addBos: false })]);
    expect(stories.encode('')).toEqual([1]);
    expect(llama2.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(gpt2.encode('Hello world')).toEqual([15496, 995]);
    expect(gpt2.encode('Hello world', { addBos: true })).toEqual([50256, 15496, 995]);
    expect(stories.encode('Hi', { addEos: true }).at(-1)).toBe(2);
  });

  it('follows the post-processor when tokenizer_config has no add_bos_token, and add_bos_token=false', () => {
    const noFlag = load(`${SHARED}/tokenizers/llama2`, ({ add_bos_token: _, ...c }) => c);
    expect(noFlag.addBosDefault).toBe(true);
    expect(noFlag.encode('Hello world')).toEqual([1, 15043, 3186]);
    const off = load(`${SHARED}/tokenizers/llama2`, (c) => ({ ...c, add_bos_token: false }));
    expect(off.encode('Hello world')).toEqual([15043, 3186]);
  });

  for (const name of ['stories', 'llama2', 'gpt2'] as const) {
    it(`round-trips text (${name})`, () => {
      const tok = { stories, llama2, gpt2 }[name];
      for (const t of TEXTS) {
        const ids = tok.encode(t);
        expect(tok.decode(ids, { skipSpecial: true })).toBe(t);
      }
    });
  }

  it('uses byte-fallback tokens for characters outside the vocab', () => {
    const ids = stories.encode('😀 日本', { addBos: false });
    const toks = ids.map((i) => stories.idToToken(i));
    expect(toks).toContain('<0xF0>');
    expect(toks).toContain('<0xE6>');
    expect(stories.decode(ids)).toBe('😀 日本');
    expect(stories.decode([1, ...ids])).toBe('<s> 😀 日本');
  });

  for (const name of ['stories', 'llama2', 'gpt2'] as const) {
    it(`streams the same text as a full decode (${name})`, () => {
      const tok = { stories, llama2, gpt2 }[name];
      const text = TEXTS.join(' ');
      const ids = tok.encode(text);
      const chunks = stream(tok, ids);
      expect(chunks.join('')).toBe(tok.decode(ids, { skipSpecial: true }));
      expect(chunks.join('')).toBe(text);
      expect(chunks.some((c) => c.includes('\uFFFD'))).toBe(false);
      // With specials kept (BOS and EOS in the middle) it still matches.
      const withSpecial = [...ids, tok.eosId!, ...tok.encode(' more', { addBos: false })];
      expect(stream(tok, withSpecial, false).join('')).toBe(tok.decode(withSpecial));
    });
  }

  it('holds back an unfinished UTF-8 character', () => {
    const ids = stories.encode('a 😀', { addBos: false }); // ▁a ▁ <0xF0> <0x9F> <0x98> <0x80>
    const chunks = stream(stories, ids);
    expect(chunks).toEqual(['a', ' ', '', '', '', '😀', '']);
    const gIds = gpt2.encode('hi 😀');
    const g = stream(gpt2, gIds);
    expect(g.join('')).toBe('hi 😀');
    expect(g.some((c) => c.includes('\uFFFD'))).toBe(false);
    // An unfinished character at the end comes out as U+FFFD on flush.
    const d = stories.createDecoder();
    for (const id of ids.slice(0, -1)) d.push(id);
    expect(d.flush()).toBe('\uFFFD');
  });

  it('takes BOS from tokenizer_config (null means none) before the model config', () => {
    const model = parseModelConfig({ model_type: 'qwen2', hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 1, vocab_size: 512, bos_token_id: 2, eos_token_id: [2, 0] });
    const json = readFileSync(`${SHARED}/models/stories260K/tokenizer.json`, 'utf8');
    const none = createTokenizer(json, { bos_token: null, eos_token: '</s>' }, model);
    expect([none.bosId, none.addBosDefault, none.eosIds]).toEqual([null, false, [2, 0]]);
    expect(none.encode('Hi', { addBos: true })[0]).not.toBe(2);
    const absent = createTokenizer(json, null, model);
    expect([absent.bosId, absent.bosToken, absent.eosId, absent.eosToken]).toEqual([2, '</s>', 2, '</s>']);
  });

  it('decodes empty and unknown ids without throwing', () => {
    expect(stories.decode([])).toBe('');
    expect(stories.decode([1, 2], { skipSpecial: true })).toBe('');
    expect(stories.decode([1000, ...stories.encode('ok', { addBos: false })])).toBe('ok');
  });
});
