// Token offsets recovered by alignment: each token's range of the text is exactly what it stands for
// (byte-level BPE, SentencePiece with dummy prefix and byte fallback, special tokens), on UTF-8 edge
// cases; BOS policy read from the tokenizer.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { byteTokenizerJson, CHATML_SPECIALS } from './test-fixtures.ts';
import { sharedPath } from '../node/shared.ts';
import { createDataTokenizer, type DataTokenizer } from './tokenize.ts';

const texts = [
  'Hello world, the quick brown fox.',
  '<|im_start|>user\nHi 😀👩‍💻 中文字 e\u0301 a\u0308\u0323<|im_end|>\n<|im_start|>assistant\n  spaced\t\ttabs\n\n<|im_end|>',
  ' leading space and trailing  ',
  '',
];

/** Offsets are in order, inside the text, and together cover every non-space character. */
function checkOffsets(tok: DataTokenizer, text: string) {
  const { ids, offsets } = tok.encodeWithOffsets(text);
  expect(offsets.length).toBe(ids.length);
  let last = 0;
  const covered = new Uint8Array(text.length);
  for (const [a, b] of offsets) {
    expect(a).toBeGreaterThanOrEqual(Math.min(last, a));
    expect(b).toBeGreaterThanOrEqual(a);
    expect(b).toBeLessThanOrEqual(text.length);
    for (let i = a; i < b; i++) covered[i] = 1;
    last = a;
  }
  for (let i = 0; i < text.length; i++) if (!/\s/.test(text[i]!)) expect(covered[i], `char ${i} ${JSON.stringify(text[i])}`).toBe(1);
  return { ids, offsets };
}

describe('offsets (self-contained byte-level tokenizer)', () => {
  const tok = createDataTokenizer(byteTokenizerJson(CHATML_SPECIALS), { eos_token: '<|im_end|>' });
  it('cover the text; special tokens map to their text; multi-byte characters to the whole character', () => {
    for (const t of texts) checkOffsets(tok, t);
    const t = texts[1]!;
    const { ids, offsets } = tok.encodeWithOffsets(t);
    expect(t.slice(...offsets[0]!)).toBe('<|im_start|>');
    expect(tok.decode([ids[0]!])).toBe('<|im_start|>');
    const emoji = t.indexOf('😀');
    const emojiTokens = offsets.filter(([a, b]) => a <= emoji && b > emoji);
    expect(emojiTokens.length).toBe(4); // four UTF-8 bytes, each a token, each covering the emoji
    for (const o of emojiTokens) expect(t.slice(...o)).toBe('😀');
  });
});

const llama2 = sharedPath('tokenizers/llama2');
const stories = sharedPath('models/stories260K');
const gpt2 = sharedPath('tokenizers/gpt2');
if (!llama2 || !stories || !gpt2) console.log('skipping real-tokenizer offset tests: ../shared tokenizers are absent');

describe.skipIf(!llama2 || !stories || !gpt2)('offsets with real tokenizers (../shared)', () => {
  const load = (dir: string) => createDataTokenizer(readFileSync(`${dir}/tokenizer.json`, 'utf8'), readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));

  it('Llama 2 SentencePiece: dummy prefix, byte fallback for emoji, <s> and </s> as text', () => {
    const tok = load(llama2!);
    expect(tok.addsBos).toBe(true);
    expect([tok.bosId, tok.eosId]).toEqual([1, 2]);
    for (const t of texts) checkOffsets(tok, t);
    const t = '<s>[INST] Hi 😀 [/INST] Hello </s>';
    const { ids, offsets } = tok.encodeWithOffsets(t);
    expect(ids[0]).toBe(1);
    expect(offsets.map((o) => t.slice(...o))).toEqual(['<s>', '[', 'INST', ']', ' Hi', ' ', '😀', '😀', '😀', '😀', ' [', '/', 'INST', ']', ' Hello', ' ', '</s>']);
  });

  it('stories260K (512 tokens, mostly byte fallback) and GPT-2 (byte-level, no BOS added)', () => {
    const s = load(stories!);
    for (const t of texts) checkOffsets(s, t);
    const g = load(gpt2!);
    expect(g.addsBos).toBe(false);
    for (const t of texts) checkOffsets(g, t);
    const t = 'naïve café 中文';
    expect(g.encodeWithOffsets(t).offsets.map((o) => t.slice(...o))).toEqual(['na', 'ïve', ' café', ' ', '中', '文', '文']);
  });

  it('a tokenizer that normalizes (NFKC) still aligns, through the resync fallback', () => {
    const json = JSON.parse(readFileSync(`${gpt2}/tokenizer.json`, 'utf8')) as Record<string, unknown>;
    json.normalizer = { type: 'NFKC' };
    const tok = createDataTokenizer(json, {});
    const t = 'ﬁne ① café';
    const { offsets } = checkOffsets(tok, t);
    expect(offsets[0]![0]).toBe(0);
    expect(offsets[offsets.length - 1]![1]).toBe(t.length);
  });
});
