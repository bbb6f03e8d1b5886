// Formats: each one detected from sample rows and normalized to a conversation or raw text; names,
// aliases and unknown names; rows that do not fit give a reason naming the field and what was expected.

import { describe, expect, it } from 'vitest';
import { detectFormat, normalizeRow, parseFormatName, parseOasstText, type FormatName } from './formats.ts';

const samples: Record<FormatName, Record<string, unknown>> = {
  messages: { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }] },
  sharegpt: { conversations: [{ from: 'system', value: 'S' }, { from: 'human', value: 'U' }, { from: 'gpt', value: 'A' }] },
  alpaca: { instruction: 'Do X', input: 'on Y', output: 'Done', system: 'S' },
  completion: { prompt: 'P', completion: 'C' },
  oasst: { text: '### Human: Can you help?### Assistant: Sure.\n### Human: Thanks ### Assistant: You are welcome.' },
  text: { text: 'Once upon a time.' },
};

describe('detection and normalization', () => {
  it('detects each format from its rows', () => {
    for (const [name, row] of Object.entries(samples)) expect(detectFormat([row, row]).format).toBe(name);
  });

  it('normalizes each format', () => {
    const chat = (f: FormatName) => {
      const r = normalizeRow(samples[f], f);
      if (!r.ok || r.example.kind !== 'chat') throw new Error(JSON.stringify(r));
      return r.example.messages;
    };
    const sua = [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }];
    expect(chat('messages')).toEqual(sua);
    expect(chat('sharegpt')).toEqual(sua);
    expect(chat('alpaca')).toEqual([{ role: 'system', content: 'S' }, { role: 'user', content: 'Do X\n\non Y' }, { role: 'assistant', content: 'Done' }]);
    expect(chat('completion')).toEqual([{ role: 'user', content: 'P' }, { role: 'assistant', content: 'C' }]);
    expect(chat('oasst')).toEqual([
      { role: 'user', content: 'Can you help?' }, { role: 'assistant', content: 'Sure.' },
      { role: 'user', content: 'Thanks' }, { role: 'assistant', content: 'You are welcome.' },
    ]);
    expect(normalizeRow(samples.text, 'text')).toEqual({ ok: true, example: { kind: 'text', text: 'Once upon a time.' } });
  });

  it('accepts the common variants: alpaca without input, TRL message-list prompts, JSON-string cells, content parts', () => {
    expect(normalizeRow({ instruction: 'I', input: '', output: 'O' }, 'alpaca')).toEqual({ ok: true, example: { kind: 'chat', messages: [{ role: 'user', content: 'I' }, { role: 'assistant', content: 'O' }] } });
    const trl = { prompt: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }], completion: [{ role: 'assistant', content: 'A' }] };
    expect(normalizeRow(trl, 'completion')).toEqual(normalizeRow(samples.messages, 'messages'));
    const csvCell = { messages: JSON.stringify((samples.messages as { messages: unknown }).messages) };
    expect(detectFormat([csvCell]).format).toBe('messages');
    expect(normalizeRow(csvCell, 'messages')).toEqual(normalizeRow(samples.messages, 'messages'));
    const parts = { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { role: 'assistant', content: 'c' }] };
    expect(normalizeRow(parts, 'messages')).toEqual({ ok: true, example: { kind: 'chat', messages: [{ role: 'user', content: 'ab' }, { role: 'assistant', content: 'c' }] } });
    // ShareGPT files that use role/content keys, and trailing user turns (never trained) dropped.
    const mixed = { conversations: [{ role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }, { role: 'user', content: 'more?' }] };
    expect(normalizeRow(mixed, 'sharegpt')).toEqual({ ok: true, example: { kind: 'chat', messages: [{ role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }] } });
  });

  it('Guanaco text without a leading marker and extra spacing', () => {
    expect(parseOasstText('intro ###Human:  a \n###  Assistant : b')).toEqual([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }]);
  });

  it('majority vote on mixed rows; undetectable rows are an error listing fields and formats', () => {
    expect(detectFormat([samples.text, samples.text, samples.oasst]).format).toBe('text');
    expect(detectFormat([samples.oasst, samples.oasst, samples.text]).format).toBe('oasst');
    expect(() => detectFormat([{ question: 'q', answer: 'a' }], 'qa.jsonl')).toThrow(
      /^qa\.jsonl: cannot detect the dataset format from the first 1 rows \(fields: question, answer\); expected "messages".*--format$/,
    );
    expect(() => detectFormat([], 'e.jsonl')).toThrow('e.jsonl: no rows to detect the format from (the dataset is empty)');
  });
});

describe('format names', () => {
  it('parses names and aliases; unknown names list the choices', () => {
    expect(parseFormatName('auto')).toBe('auto');
    expect(parseFormatName('ShareGPT')).toBe('sharegpt');
    expect(parseFormatName('guanaco')).toBe('oasst');
    expect(parseFormatName('chat')).toBe('messages');
    expect(() => parseFormatName('xml')).toThrow('unknown format "xml" (expected one of auto, messages, sharegpt, alpaca, completion, oasst, text)');
  });
});

describe('rows that do not fit', () => {
  const bad: Array<[FormatName, Record<string, unknown>, string, RegExp]> = [
    ['messages', { messages: [] }, 'empty conversation', /"messages" is an empty conversation/],
    ['messages', { msgs: [] }, 'missing field', /missing field "messages"/],
    ['messages', { messages: 'hi' }, 'wrong type', /"messages": expected an array of messages, got string/],
    ['messages', { messages: [{ role: 'user', content: 'a' }, { role: 'tool', content: 'b' }] }, 'unknown role', /messages\[1\]\.role: unknown role "tool"/],
    ['messages', { messages: [{ role: 'user', content: 5 }] }, 'wrong type', /messages\[0\]\.content: expected a string, got number/],
    ['messages', { messages: [{ role: 'user' }] }, 'missing field', /messages\[0\]: missing "content"/],
    ['messages', { messages: [{ role: 'user', content: 'a' }] }, 'no assistant message', /has no assistant message/],
    ['messages', { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: ' ' }] }, 'empty assistant message', /messages\[1\]: the assistant message is empty/],
    ['sharegpt', { conversations: [{ from: 'observation', value: 'x' }] }, 'unknown role', /conversations\[0\]\.from: unknown role "observation"/],
    ['alpaca', { instruction: 'I' }, 'missing field', /missing field "output" \(expected a string\)/],
    ['alpaca', { instruction: ['I'], output: 'o' }, 'wrong type', /"instruction": expected a string, got array/],
    ['completion', { prompt: 'p', completion: '' }, 'empty assistant message', /"completion" is empty/],
    ['oasst', { text: 'no markers here' }, 'no turns', /no "### Human:"/],
    ['oasst', { text: '### Human: only a question' }, 'no assistant message', /no assistant message/],
    ['text', { text: '   ' }, 'empty text', /"text" is empty/],
    ['text', { body: 'x' }, 'missing field', /missing field "text"/],
  ];
  it.each(bad)('%s %j → %s', (format, row, kind, reason) => {
    const r = normalizeRow(row, format);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.kind).toBe(kind);
      expect(r.reason).toMatch(reason);
    }
  });
});
