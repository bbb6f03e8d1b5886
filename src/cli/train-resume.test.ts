// A real process kill: `qlora train --checkpoint-every 1 --gpu-budget ...` on a tiny random Llama folder
// (byte-level tokenizer) is SIGKILLed after its first checkpoint, `qlora train --resume <run-id>` finishes
// it, and the adapter equals an uninterrupted CLI run's byte for byte, with the same step lines.

import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../node/shared.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { parseModelConfig } from '../model/config.ts';
import { modelTensorShapes } from '../model/names.ts';
import { randomWeights, tinyConfigJson } from '../model/tiny-model.ts';
import { byteTokenizerJson, LLAMA2_CONFIG, SP_SPECIALS } from '../data/test-fixtures.ts';

const BIN = join(REPO_ROOT, 'bin/qlora.js');
const exec = promisify(execFile);

function tinyFolder(root: string): { dir: string; data: string } {
  const dir = join(root, 'model');
  mkdirSync(dir);
  const json = tinyConfigJson('llama', { vocab_size: 272, max_position_embeddings: 64 });
  const config = parseModelConfig(json);
  const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors([...randomWeights(config, 4)].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data }))));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteTokenizerJson(SP_SPECIALS)));
  writeFileSync(join(dir, 'tokenizer_config.json'), LLAMA2_CONFIG);
  const texts = ['Once upon a time there was a cat.', 'The cat sat on a mat.', 'A dog ran in the park.', 'Lily liked to read books.', 'The sun was hot and bright.',
    'Tom had a red ball.', 'They played all day long.', 'The bird sang a song.', 'Mom made a big cake.', 'It was a happy day.', 'The fish swam fast.', 'Ben saw a tall tree.'];
  const data = join(root, 'data.jsonl');
  writeFileSync(data, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  return { dir, data };
}

const STEPS = 8;
const stepLines = (out: string) => out.split('\n').filter((l) => l.startsWith('step ')).map((l) => l.replace(/ {2}tok\/s [\d.]+/, ''));

describe('qlora train: kill and resume', () => {
  it('a SIGKILLed run resumed with --resume ends with the adapter of an uninterrupted run, byte for byte', async () => {
    const root = mkdtempSync(join(tmpdir(), 'qlora-resume-'));
    const { dir, data } = tinyFolder(root);
    const env = { ...process.env, QLORA_CACHE: join(root, 'cache') };
    const args = [BIN, 'train', dir, '--data', data, '--steps', String(STEPS), '--rank', '4', '--alpha', '8', '--seq-len', '24', '--batch-size', '2',
      '--grad-accum', '2', '--eval-split', '2', '--lr', '1e-2', '--warmup', '1', '--all-tokens', '--dropout', '0.1', '--schedule', 'cosine', '--eval-every', '3'];
    const opts = { cwd: REPO_ROOT, env, timeout: 60_000 };

    // The killed run: paged optimizer state, a checkpoint after every step, SIGKILL after the first.
    const child = spawn(process.execPath, [...args, '--out', join(root, 'b'), '--run-id', 'r1', '--checkpoint-every', '1', '--gpu-budget', '6KB'], opts);
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/^checkpoint step \d+/m.test(stderr)) child.kill('SIGKILL');
    });
    // Meanwhile, the uninterrupted run (no checkpoints, no paging).
    const [full, killed] = await Promise.all([exec(process.execPath, [...args, '--out', join(root, 'a')], opts), exited]);
    expect(killed.signal, stderr).toBe('SIGKILL');
    expect(stderr).not.toMatch(/adapter written/);

    const resumed = await exec(process.execPath, [BIN, 'train', dir, '--resume', 'r1', '--out', join(root, 'b'), '--gpu-budget', '6KB'], opts);
    const at = Number(/resumed from checkpoint \S+ at step (\d+)\/8/.exec(resumed.stderr)?.[1]);
    console.log(`killed after its checkpoint at step ${at} of ${STEPS}; resumed from there`);
    expect(at, resumed.stderr).toBeGreaterThanOrEqual(1);
    expect(at).toBeLessThan(STEPS);
    expect(resumed.stderr).toMatch(/paging: budget 6\.0 KiB .* \d+ pages in/);
    const want = stepLines(full.stdout);
    expect(want).toHaveLength(STEPS);
    expect(stepLines(resumed.stdout)).toEqual(want.slice(at));
    expect(stepLines(stdout)).toEqual(want.slice(0, stepLines(stdout).length));
    const a = readFileSync(join(root, 'a', 'adapter_model.safetensors'));
    const b = readFileSync(join(root, 'b', 'adapter_model.safetensors'));
    expect(b.equals(a)).toBe(true);
  });
});

describe('--gpu-budget sizes', () => {
  it('parses B/KB/MB/GB (powers of 1024) and rejects other text', async () => {
    const { parseBytes } = await import('./commands/train.ts');
    expect(parseBytes('64MB', '--gpu-budget')).toBe(64 * 2 ** 20);
    expect(parseBytes('1.5gb', '--gpu-budget')).toBe(1.5 * 2 ** 30);
    expect(parseBytes('6KiB', '--gpu-budget')).toBe(6144);
    expect(parseBytes('4096', '--gpu-budget')).toBe(4096);
    expect(() => parseBytes('lots', '--gpu-budget')).toThrow(/--gpu-budget expects a size like 64MB/);
    expect(() => parseBytes('0MB', '--gpu-budget')).toThrow(/more than 0 bytes/);
  });
});
