// `qlora data`: text report (format, statistics, histogram, skipped rows, marked examples), --json,
// flags, and usage errors; on a temporary model folder, and on stories260K when ../shared has it.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from '../args.ts';
import { dataCommand, runDataCommand } from './data.ts';
import { byteTokenizerJson, CHATML_SPECIALS, QWEN25_CONFIG } from '../../data/test-fixtures.ts';
import { sharedPath } from '../../node/shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'qlora-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'model');
const base = join(dir, 'base');
for (const [d, cfg] of [[model, QWEN25_CONFIG], [base, '{"eos_token": "<|endoftext|>"}']] as const) {
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(byteTokenizerJson(CHATML_SPECIALS)));
  writeFileSync(join(d, 'tokenizer_config.json'), cfg);
}
const data = join(dir, 'chat.jsonl');
writeFileSync(data, [
  JSON.stringify({ conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello!' }] }),
  '{"conversations": oops',
  JSON.stringify({ conversations: [{ from: 'human', value: 'Bye' }, { from: 'gpt', value: 'Goodbye.' }] }),
].join('\n'));

async function capture(args: string[]): Promise<string> {
  let s = '';
  await runDataCommand(args, { out: (t) => (s += t), color: false, env: {} });
  return s;
}

describe('qlora data', () => {
  it('prints the format, statistics, histogram, skipped rows and marked examples', async () => {
    const out = await capture([data, '--model', model, '--max-length', '512']);
    expect(out).toMatch(/^source {9}chat\.jsonl$/m);
    expect(out).toMatch(/^format {9}sharegpt \(detected\)$/m);
    expect(out).toMatch(/^template {7}tokenizer_config\.json chat_template$/m);
    expect(out).toMatch(/^skipped rows {3}1$/m);
    expect(out).toMatch(/invalid JSON +1/);
    expect(out).toContain('length histogram (tokens per example, max length 512):');
    expect(out).toContain('chat.jsonl line 2: invalid JSON (expected one JSON object per line)');
    expect(out).toContain('example 1 (chat.jsonl line 1):');
    expect(out).toContain('<|im_start|>assistant\n[[Hello!<|im_end|>]]\n');
    expect(out).toContain('example 2 (chat.jsonl line 3):');
  });

  it('--all-tokens, --packing, --preview, the fallback template of a base model, ANSI colour', async () => {
    const out = await capture([data, '--model', base, '--all-tokens', '--packing', '--preview', '1']);
    expect(out).toMatch(/^template {7}fallback \(### Human: \/ ### Assistant:\)$/m);
    expect(out).toContain('example 1');
    expect(out).not.toContain('example 2');
    expect(out).toContain('#[[## Human: Hi\n### Assistant: Hello!<|endoftext|>]]'); // all but the first token
    expect(out).toMatch(/^train +2 examples → 1 sequences/m);
    let colored = '';
    await runDataCommand([data, '--model', model, '--preview', '1'], { out: (t) => (colored += t), color: true, env: {} });
    expect(colored).toContain('\x1b[32mHello!<|im_end|>\x1b[0m');
  });

  it('--json prints statistics, previews and the first batch', async () => {
    const json = JSON.parse(await capture([data, '--model', model, '--json', '--max-length', '256', '--batch-size', '2'])) as {
      format: string; stats: { examples: number; histogram: { edges: Array<number | null> } };
      previews: Array<{ marked: string; ids: number[]; labels: number[] }>; batch: { batchSize: number; seqLen: number; inputIds: number[]; segmentIds: number[] };
    };
    expect(json.format).toBe('sharegpt');
    expect(json.stats.examples).toBe(2);
    expect(json.previews[0]!.labels.length).toBe(json.previews[0]!.ids.length);
    expect(json.batch.batchSize).toBe(2);
    expect(json.batch.inputIds.length).toBe(2 * 256);
    expect(json.batch.segmentIds.length).toBe(512);
  });

  it('usage errors name the flag and what was expected', async () => {
    await expect(capture([data])).rejects.toThrow(/--model <model-dir> is required/);
    await expect(capture([data, '--model', model, '--format', 'yaml'])).rejects.toThrow(/--format: unknown format "yaml" \(expected one of auto, messages/);
    await expect(capture([data, '--model', model, '--max-length', 'x'])).rejects.toThrow('--max-length expects an integer ≥ 2, got "x"');
    await expect(capture([data, '--model', model, '--bogus'])).rejects.toThrow(CliError);
    await expect(capture([join(dir, 'missing.jsonl'), '--model', model])).rejects.toThrow(/no such file .*missing\.jsonl/);
    await expect(capture([data, '--model', dir])).rejects.toThrow(/no tokenizer\.json/);
    expect(dataCommand.name).toBe('data');
  });

  it('an empty file is an error', async () => {
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    await expect(capture([empty, '--model', model])).rejects.toThrow('empty.jsonl: no rows: the dataset is empty');
  });
});

const stories = sharedPath('models/stories260K');
if (!stories) console.log('skipping `qlora data` on stories260K: ../shared/models/stories260K is absent');

describe.skipIf(!stories)('qlora data with the real stories260K model folder', () => {
  it('uses its tokenizer with the fallback template: one BOS, answers + </s> trained', async () => {
    const json = JSON.parse(await capture([data, '--model', stories!, '--json'])) as { previews: Array<{ ids: number[]; marked: string }> };
    const ids = json.previews[0]!.ids;
    expect(ids[0]).toBe(1);
    expect(ids.filter((i) => i === 1).length).toBe(1);
    expect(json.previews[0]!.marked).toMatch(/### Assistant:(\[\[ Hello!<\/s>\]\]| \[\[Hello!<\/s>\]\])$/);
  });
});
