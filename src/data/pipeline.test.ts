// The whole pipeline on in-memory files with the self-contained tokenizer: statistics, skipped rows
// with reasons, length rules, packing, deterministic split and shuffle, previews, and bad input.

import { describe, expect, it } from 'vitest';
import { DataError } from './errors.ts';
import { prepareData, type DataSource, type PipelineOptions } from './pipeline.ts';
import { markTrained } from './preview.ts';
import { IGNORE } from './sequences.ts';
import { bytesChunks } from './stream.ts';
import { chatTemplateFromConfig } from './template.ts';
import { byteTokenizerJson, CHATML_SPECIALS, LLAMA2_CONFIG, QWEN25_CONFIG, SP_SPECIALS } from './test-fixtures.ts';
import { createDataTokenizer } from './tokenize.ts';

const cfg = JSON.parse(QWEN25_CONFIG) as Record<string, unknown>;
const tok = createDataTokenizer(byteTokenizerJson(CHATML_SPECIALS), cfg);
const tpl = chatTemplateFromConfig(cfg);

const chatLine = (i: number, answer = `answer number ${i}`) =>
  JSON.stringify({ messages: [{ role: 'user', content: `question ${i}` }, { role: 'assistant', content: answer }] });

const file = (name: string, text: string, chunk = 64): DataSource => ({ kind: 'file', name, chunks: bytesChunks(text, chunk) });
const run = (src: DataSource, opts: PipelineOptions = {}) => prepareData(src, { maxLength: 256, ...opts }, tok, tpl);

describe('pipeline', () => {
  it('JSONL chat: stats, skipped rows with reasons, batches whose trained labels are the answers', async () => {
    const lines = [chatLine(0), '{"messages": [', chatLine(1), JSON.stringify({ messages: [{ role: 'user', content: 'q' }] }), chatLine(2)];
    const data = await run(file('chat.jsonl', lines.join('\n')), { batchSize: 2 });
    expect(data.format).toBe('messages');
    const s = data.stats;
    expect([s.rows, s.examples, s.skipped.total]).toEqual([5, 3, 2]);
    expect(s.skipped.byReason).toEqual({ 'invalid JSON': 1, 'no assistant message': 1 });
    expect(s.skipped.samples.map((x) => x.where)).toEqual(['chat.jsonl line 2', 'chat.jsonl line 4']);
    expect(s.formatDetected).toBe(true);
    expect(s.template).toBe('tokenizer_config.json chat_template');
    expect(s.histogram.counts.reduce((a, b) => a + b, 0)).toBe(3);
    const batches = [...data.train.batches()];
    expect(batches.map((b) => b.batchSize)).toEqual([2, 1]);
    expect(batches[0]!.inputIds.length).toBe(2 * 256);
    const answers: string[] = [];
    for (const b of batches) {
      for (let r = 0; r < b.batchSize; r++) {
        const labels = Array.from(b.labels.slice(r * b.seqLen, (r + 1) * b.seqLen)).filter((x) => x !== IGNORE);
        answers.push(tok.decode(labels));
      }
    }
    expect(answers.sort()).toEqual(['answer number 0<|im_end|>', 'answer number 1<|im_end|>', 'answer number 2<|im_end|>']);
    expect(s.trainedTokens).toBe(batches.reduce((a, b) => a + b.trainedTokens, 0));
  });

  it('packing: fewer rows, segment ids per example, fill reported', async () => {
    const text = Array.from({ length: 30 }, (_, i) => chatLine(i)).join('\n');
    const plain = await run(file('c.jsonl', text), { maxLength: 1024 });
    const packed = await run(file('c.jsonl', text), { maxLength: 1024, packing: true });
    expect(plain.stats.train.sequences).toBe(30);
    expect(packed.stats.train.sequences).toBeLessThan(6);
    expect(packed.stats.train.fill).toBeGreaterThan(plain.stats.train.fill * 3);
    expect(packed.stats.train.trainedTokens).toBe(plain.stats.train.trainedTokens);
    const [b] = [...packed.train.batches()];
    const segs = new Set(Array.from(b!.segmentIds));
    expect(segs.size).toBeGreaterThan(3);
    expect(b!.examples).toBe(segs.size - (segs.has(0) ? 1 : 0));
  });

  it('the eval split is the same for the same seed, and train order shuffles per epoch deterministically', async () => {
    const text = Array.from({ length: 40 }, (_, i) => chatLine(i)).join('\n');
    const evalTexts = async (seed: number) => {
      const d = await run(file('c.jsonl', text), { evalSplit: 0.25, seed });
      return d.eval.sequences().map((q) => tok.decode(Array.from(q.ids)));
    };
    const a = await evalTexts(1);
    expect(a.length).toBe(10);
    expect(await evalTexts(1)).toEqual(a);
    expect(await evalTexts(2)).not.toEqual(a);
    const d = await run(file('c.jsonl', text), { evalSplit: 0.25, seed: 1 });
    const order = (e: number) => d.train.sequences(e).map((q) => q.ids[q.ids.length - 3]);
    expect(order(0)).toEqual(order(0));
    expect(order(1)).not.toEqual(order(0));
    expect([...order(1)].sort()).toEqual([...order(0)].sort());
    expect(d.stats.eval.examples + d.stats.train.examples).toBe(40);
  });

  it('length rules: long chat examples are dropped and counted; raw text is split', async () => {
    const long = chatLine(1, 'word '.repeat(100));
    const d = await run(file('c.jsonl', [chatLine(0), long].join('\n')), { maxLength: 200 });
    expect(d.stats.examples).toBe(2);
    expect(d.stats.dropped).toEqual({ 'longer than max length 200': 1 });
    expect(d.stats.histogram.counts[d.stats.histogram.counts.length - 1]).toBe(1); // the "over max length" bin
    expect(d.stats.histogram.edges[d.stats.histogram.edges.length - 1]).toBe(Infinity);
    const t = await run(file('story.txt', 'Once upon a time. '.repeat(40) + '\n\nThe end.'), { maxLength: 64 });
    expect(t.format).toBe('text');
    expect(t.stats.template).toBe('none (raw text)');
    expect(t.stats.split).toBe(1);
    expect(t.stats.train.sequences).toBeGreaterThan(2);
  });

  it('CSV alpaca, format override, row sources and previews with trained text marked', async () => {
    const csv = 'instruction,input,output\n"Add ""2"" and 2",,4\nSay hi,"to, Bob",Hi Bob\n';
    const d = await run(file('a.csv', csv), { previews: 1 });
    expect(d.format).toBe('alpaca');
    expect(d.previews.length).toBe(1);
    expect(d.previews[0]!.where).toBe('a.csv line 2');
    expect(markTrained(d.previews[0]!, tok)).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nAdd "2" and 2<|im_end|>\n<|im_start|>assistant\n[[4<|im_end|>]]\n',
    );
    const rows = await run({ kind: 'rows', name: 'mem', rows: [{ prompt: 'p', completion: 'c' }] }, { format: 'completion' });
    expect(rows.stats.examples).toBe(1);
    expect(rows.stats.formatDetected).toBe(false);
  });

  it('a template that rejects a conversation skips that row, naming it', async () => {
    const c2 = JSON.parse(LLAMA2_CONFIG) as Record<string, unknown>;
    const t2 = createDataTokenizer(byteTokenizerJson(SP_SPECIALS), c2);
    const rows = [
      { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] },
      { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'again' }, { role: 'assistant', content: 'b' }] },
    ];
    const d = await prepareData({ kind: 'rows', name: 'mem', rows }, {}, t2, chatTemplateFromConfig(c2));
    expect(d.stats.skipped.byReason).toEqual({ 'template error': 1 });
    expect(d.stats.skipped.samples[0]!.where).toBe('mem row 1');
    expect(d.stats.skipped.samples[0]!.reason).toMatch(/Conversation roles must alternate/);
  });
});

describe('bad input', () => {
  it('an empty dataset, a dataset with no usable row, an unknown format', async () => {
    await expect(run(file('e.jsonl', '\n\n'))).rejects.toThrow('e.jsonl: no rows: the dataset is empty');
    await expect(run(file('b.jsonl', '{x\n{y\n'))).rejects.toThrow('b.jsonl: no rows: the dataset is empty (2 rows skipped: invalid JSON 2)');
    await expect(run(file('n.jsonl', JSON.stringify({ messages: [{ role: 'user', content: 'q' }] })))).rejects.toThrow(
      'n.jsonl: no usable examples in 1 rows (no assistant message: 1)',
    );
    await expect(run(file('x.jsonl', chatLine(0)), { format: 'yaml' })).rejects.toThrow(DataError);
    await expect(run(file('x.jsonl', chatLine(0)), { format: 'yaml' })).rejects.toThrow(/unknown format "yaml"/);
  });

  it("onBadRow 'error' stops at the first bad row, naming the line and what was expected", async () => {
    const text = [chatLine(0), JSON.stringify({ messages: [{ role: 'user', content: 1 }, { role: 'assistant', content: 'x' }] })].join('\n');
    await expect(run(file('s.jsonl', text), { onBadRow: 'error' })).rejects.toThrow(
      's.jsonl line 2: messages[0].content: expected a string, got number',
    );
    await expect(run(file('s.csv', 'instruction,output\n"open\n'), { onBadRow: 'error' })).rejects.toThrow(/s\.csv: unterminated quoted field starting at line 2/);
  });

  it('a forced format that does not fit names the missing field', async () => {
    await expect(run(file('p.jsonl', chatLine(0)), { format: 'alpaca' })).rejects.toThrow('p.jsonl: no usable examples in 1 rows (missing field: 1)');
    const d = await run(file('p.jsonl', [chatLine(0), JSON.stringify({ instruction: 'i', output: 'o' })].join('\n')), { format: 'alpaca' });
    expect(d.stats.skipped.samples[0]).toEqual({ where: 'p.jsonl line 1', reason: 'missing field "instruction" (expected a string)' });
  });
});
