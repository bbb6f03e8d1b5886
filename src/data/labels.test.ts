// Completion-only labels: trained tokens decode exactly to each assistant answer plus its EOS, with
// real templates and real tokenizers (../shared, skipped with a reason when absent) and the
// self-contained byte-level tokenizer; BOS added exactly once; EOS appended when a template lacks it.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Message } from './formats.ts';
import { renderChat, tokenizeExample, type TokenizedExample } from './labels.ts';
import { chatTemplateFromConfig, createChatTemplate, type ChatTemplate } from './template.ts';
import {
  byteTokenizerJson, CHATML_SPECIALS, LLAMA2_CONFIG, LLAMA3_CONFIG, LLAMA3_SPECIALS, QWEN25_CONFIG, SMOLLM2_CONFIG, ZEPHYR_CONFIG,
} from './test-fixtures.ts';
import { sharedPath } from '../node/shared.ts';
import { createDataTokenizer, type DataTokenizer } from './tokenize.ts';

const conv: Message[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! 😀 naïve 中文' },
  { role: 'user', content: 'Bye' },
  { role: 'assistant', content: 'Goodbye, friend.' },
];

/** Decodes each maximal run of trained tokens. */
function trainedRuns(ex: TokenizedExample, tok: DataTokenizer): string[] {
  const runs: number[][] = [];
  let cur: number[] | null = null;
  ex.trained.forEach((on, i) => {
    if (on) (cur ??= (runs.push([]), runs[runs.length - 1]!)).push(ex.ids[i]!);
    else cur = null;
  });
  return runs.map((r) => tok.decode(r));
}

function setup(configJson: string, tokenizerJson: object): { tok: DataTokenizer; tpl: ChatTemplate } {
  const cfg = JSON.parse(configJson) as Record<string, unknown>;
  return { tok: createDataTokenizer(tokenizerJson, cfg), tpl: chatTemplateFromConfig(cfg) };
}

const bosCount = (ex: TokenizedExample, tok: DataTokenizer) => ex.ids.filter((i) => i === tok.bosId).length;

describe('labels with the self-contained byte-level tokenizer', () => {
  it('ChatML (Qwen2.5): trained runs are exactly each answer + <|im_end|>', () => {
    const { tok, tpl } = setup(QWEN25_CONFIG, byteTokenizerJson(CHATML_SPECIALS));
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文<|im_end|>', 'Goodbye, friend.<|im_end|>']);
    expect(ex.trained[0]).toBe(0);
    expect(tok.decode(Array.from(ex.ids))).toBe(tpl.render(conv));
  });

  it('SmolLM2: bos_token is <|im_start|> but the tokenizer adds no BOS, so none is added', () => {
    const { tok, tpl } = setup(SMOLLM2_CONFIG, byteTokenizerJson(CHATML_SPECIALS));
    expect(tok.addsBos).toBe(false);
    const ex = tokenizeExample({ kind: 'chat', messages: conv.slice(1) }, tok, tpl);
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文<|im_end|>', 'Goodbye, friend.<|im_end|>']);
    expect(tok.decode(Array.from(ex.ids))).toBe(tpl.render(conv.slice(1)));
  });

  it('Llama 3: the template emits <|begin_of_text|> and the tokenizer adds BOS: exactly one BOS', () => {
    const { tok, tpl } = setup(LLAMA3_CONFIG, byteTokenizerJson(LLAMA3_SPECIALS, { bos: '<|begin_of_text|>' }));
    expect(tok.addsBos).toBe(true);
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    expect(ex.ids[0]).toBe(tok.bosId);
    expect(bosCount(ex, tok)).toBe(1);
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文<|eot_id|>', 'Goodbye, friend.<|eot_id|>']);
  });

  it('a template whose turns do not end with EOS gets EOS appended (trained) after each answer', () => {
    // Base Qwen2.5: eos is <|endoftext|> while ChatML turns end with <|im_end|>.
    const cfg = { ...(JSON.parse(QWEN25_CONFIG) as Record<string, unknown>), eos_token: '<|endoftext|>' };
    const tok = createDataTokenizer(byteTokenizerJson(CHATML_SPECIALS), cfg);
    const tpl = chatTemplateFromConfig(cfg);
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文<|im_end|><|endoftext|>', 'Goodbye, friend.<|im_end|><|endoftext|>']);
    const eosAt = ex.ids.findIndex((i) => i === tok.eosId);
    expect(ex.offsets[2 * eosAt]).toBe(ex.offsets[2 * eosAt + 1]); // inserted: zero width
  });

  it('the fallback template: trained text is each answer + EOS', () => {
    const tok = createDataTokenizer(byteTokenizerJson(['<|endoftext|>']), { eos_token: '<|endoftext|>' });
    const tpl = chatTemplateFromConfig({ eos_token: '<|endoftext|>' });
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    // This tiny BPE has no "Ġ" + word merges, so the space before an answer is its own (untrained) token.
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文<|endoftext|>', 'Goodbye, friend.<|endoftext|>']);
  });

  it("labelMode 'all' trains every token but the first; raw text is BOS? + text + EOS", () => {
    const { tok, tpl } = setup(QWEN25_CONFIG, byteTokenizerJson(CHATML_SPECIALS));
    const all = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl, 'all');
    expect(Array.from(all.trained)).toEqual([0, ...new Array(all.ids.length - 1).fill(1)]);
    const raw = tokenizeExample({ kind: 'text', text: 'Once upon a time' }, tok, tpl);
    expect(tok.decode(Array.from(raw.ids))).toBe('Once upon a time<|im_end|>');
    expect(raw.trained.slice(1).every((x) => x === 1)).toBe(true);
  });

  it('finds spans by prefixes, or by markers when a template rewrites earlier turns', () => {
    const { tpl } = setup(QWEN25_CONFIG, byteTokenizerJson(CHATML_SPECIALS));
    expect(renderChat(tpl, conv).method).toBe('prefix');
    // Message count up front: no prefix render is a prefix of the full render.
    const counting = createChatTemplate("{{ messages|length }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}", { eosToken: '<|im_end|>' });
    const r = renderChat(counting, conv);
    expect(r.method).toBe('markers');
    expect(r.spans.map((s) => r.text.slice(s.start, s.end))).toEqual(['Hello! 😀 naïve 中文<|im_end|>', 'Goodbye, friend.<|im_end|>']);
    // No generation prompt, so the turn text starts with the header; the answer "a" also occurs in "<|assistant|>".
    const noGen = createChatTemplate("{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + eos_token + '\\n' }}{% endfor %}", { eosToken: '</s>' });
    const short: Message[] = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }];
    const n = renderChat(noGen, short);
    expect(n.method).toBe('markers');
    expect(n.spans.map((s) => n.text.slice(s.start, s.end))).toEqual(['a</s>']);
    // A template that transforms the answer: the span covers what it renders.
    const upper = createChatTemplate('{{ messages|length }}{% for m in messages %}{{ m.content|upper }}{% endfor %}', {});
    const u = renderChat(upper, conv);
    expect(u.spans.map((s) => u.text.slice(s.start, s.end))).toEqual(['HELLO! 😀 NAÏVE 中文', 'GOODBYE, FRIEND.']);
    // A template that leaves answers out cannot be located: an error, not a wrong mask.
    const drop = createChatTemplate("{{ messages|length }}{% for m in messages %}{% if m.role != 'assistant' %}{{ m.content }}{% endif %}{% endfor %}", {});
    expect(() => renderChat(drop, conv)).toThrow(/cannot locate the assistant messages/);
  });
});

const llama2Dir = sharedPath('tokenizers/llama2');
const storiesDir = sharedPath('models/stories260K');
const gpt2Dir = sharedPath('tokenizers/gpt2');
if (!llama2Dir || !storiesDir || !gpt2Dir) console.log('skipping real-tokenizer label tests: ../shared/tokenizers (llama2, gpt2) or ../shared/models/stories260K is absent');

/** A shared tokenizer.json with extra special tokens appended (e.g. ChatML markers on GPT-2's BPE). */
function sharedTokenizer(dir: string, extra: string[] = []): Record<string, unknown> {
  const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')) as { added_tokens: Array<Record<string, unknown>>; model: { vocab: Record<string, number> } };
  let next = Math.max(...Object.values(json.model.vocab), ...json.added_tokens.map((t) => t.id as number)) + 1;
  for (const content of extra) {
    if (json.added_tokens.some((t) => t.content === content)) continue;
    json.added_tokens.push({ id: next, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    json.model.vocab[content] = next++;
  }
  return json;
}

describe.skipIf(!llama2Dir || !storiesDir || !gpt2Dir)('labels with real tokenizers (../shared)', () => {
  it('Llama 2 tokenizer + Llama 2 chat template: BOS per [INST] from the template, never doubled; answers + " </s>"', () => {
    const { tok, tpl } = setup(LLAMA2_CONFIG, sharedTokenizer(llama2Dir!));
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    expect(ex.ids[0]).toBe(1);
    expect(ex.ids[1]).not.toBe(1);
    expect(bosCount(ex, tok)).toBe(2); // one per user turn, as the template writes it
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文 </s>', 'Goodbye, friend. </s>']);
  });

  it('Llama 2 tokenizer + Zephyr template (no BOS in the text): the tokenizer BOS is added once', () => {
    const { tok, tpl } = setup(ZEPHYR_CONFIG, sharedTokenizer(llama2Dir!));
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    expect(ex.ids[0]).toBe(1);
    expect(bosCount(ex, tok)).toBe(1);
    expect(trainedRuns(ex, tok)).toEqual(['Hello! 😀 naïve 中文</s>', 'Goodbye, friend.</s>']);
  });

  it('stories260K (byte fallback everywhere) + fallback template with bos_token: one BOS, answers + EOS', () => {
    const cfg = JSON.parse(readFileSync(`${storiesDir}/tokenizer_config.json`, 'utf8')) as Record<string, unknown>;
    const tok = createDataTokenizer(readFileSync(`${storiesDir}/tokenizer.json`, 'utf8'), cfg);
    const tpl = chatTemplateFromConfig(cfg);
    expect(tpl.isFallback).toBe(true);
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, tok, tpl);
    expect(ex.ids[0]).toBe(1);
    expect(bosCount(ex, tok)).toBe(1);
    // SentencePiece decoding drops the leading space of a run: each run is the answer and </s>.
    expect(trainedRuns(ex, tok).map((s) => s.trim())).toEqual(['Hello! 😀 naïve 中文</s>', 'Goodbye, friend.</s>']);
    const twice = createChatTemplate('{{ bos_token }}{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}', { bosToken: '<s>', eosToken: '</s>' });
    const again = tokenizeExample({ kind: 'chat', messages: conv }, tok, twice);
    expect(Array.from(again.ids.slice(0, 2))).toEqual([1, 1]);
    expect(bosCount(again, tok)).toBe(2); // the template's own text is kept as written; nothing more is added
  });

  it('GPT-2 byte-level BPE + ChatML and Llama 3 specials: answers + EOS exactly', () => {
    const q = setup(QWEN25_CONFIG, sharedTokenizer(gpt2Dir!, CHATML_SPECIALS));
    expect(trainedRuns(tokenizeExample({ kind: 'chat', messages: conv }, q.tok, q.tpl), q.tok)).toEqual(['Hello! 😀 naïve 中文<|im_end|>', 'Goodbye, friend.<|im_end|>']);
    const l = setup(LLAMA3_CONFIG, sharedTokenizer(gpt2Dir!, LLAMA3_SPECIALS));
    const ex = tokenizeExample({ kind: 'chat', messages: conv }, l.tok, l.tpl);
    expect(bosCount(ex, l.tok)).toBe(1);
    expect(trainedRuns(ex, l.tok)).toEqual(['Hello! 😀 naïve 中文<|eot_id|>', 'Goodbye, friend.<|eot_id|>']);
    // Fallback template: "### Assistant: Hello" puts the space inside GPT-2's first answer token.
    const f = setup('{"eos_token": "<|endoftext|>"}', sharedTokenizer(gpt2Dir!));
    expect(trainedRuns(tokenizeExample({ kind: 'chat', messages: conv }, f.tok, f.tpl), f.tok)).toEqual([' Hello! 😀 naïve 中文<|endoftext|>', ' Goodbye, friend.<|endoftext|>']);
  });
});
