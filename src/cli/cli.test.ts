import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, sharedPath } from '../node/shared.ts';
import { writeSafetensors, openSafetensors } from '../formats/safetensors.ts';
import { readFileSync } from 'node:fs';
import { bytesSource } from '../formats/byte-source.ts';
import { loadModel } from '../model/weights.ts';
import { modelFolder } from '../node/model-folder.ts';
import { loss as refLoss } from '../model/reference.ts';

const run = promisify(execFile);
const BIN = join(REPO_ROOT, 'bin/qlora.js');

async function qlora(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('qlora CLI', () => {
  it('gpu prints the adapter and limits, and --json parses', async () => {
    const text = await qlora('gpu');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/adapter: /);
    expect(text.stdout).toMatch(/maxStorageBufferBindingSize/);
    const json = await qlora('gpu', '--json');
    const report = JSON.parse(json.stdout);
    expect(report.limits.maxBufferSize).toBeGreaterThan(0);
    expect(Array.isArray(report.features)).toBe(true);
  });

  it('inspect lists the stories260K tensors with totals', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const r = await qlora('inspect', dir, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.totals.tensors).toBe(47);
    expect(out.totals.parameters).toBe(260_032);
    expect(out.tensors.find((t: { name: string }) => t.name === 'lm_head.weight')).toBeUndefined();
    const text = await qlora('inspect', dir);
    expect(text.stdout).toMatch(/model\.embed_tokens\.weight\s+F32\s+\[512, 64\]\s+131072/);
    expect(text.stdout).toMatch(/47 tensors in 1 file, 260,032 elements/);
  });

  it('inspect reads a sharded folder through its index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-inspect-'));
    const a = writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]);
    const b = writeSafetensors([{ name: 'b', dtype: 'BF16', shape: [3], data: new Uint8Array(6) }]);
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), a);
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), b);
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 14 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
    );
    const r = await qlora('inspect', dir, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.files).toHaveLength(2);
    expect(out.tensors.map((t: { name: string }) => t.name)).toEqual(['a', 'b']);
    expect(out.totals.bytes).toBe(14);
  });

  it('errors exit non-zero with one clear line', async () => {
    const missing = await qlora('inspect', '/no/such/file.safetensors');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^qlora: .*no such file/);
    const dir = mkdtempSync(join(tmpdir(), 'qlora-bad-'));
    writeFileSync(join(dir, 'bad.safetensors'), new Uint8Array([1, 2, 3]));
    const bad = await qlora('inspect', join(dir, 'bad.safetensors'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^qlora: bad\.safetensors: /);
    const unknown = await qlora('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const badFlag = await qlora('gpu', '--nope');
    expect(badFlag.code).toBe(2);
  });

  it('generate prints only the generated text', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const r = await qlora('generate', dir, '--quant', 'none', '--prompt', '', '--max-new-tokens', '20');
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('Once upon a time, there was a little girl')).toBe(true);
    const bad = await qlora('generate', dir, '--prompt', 'x', '--temperature', 'hot');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--temperature expects a number, got "hot"/);
  });

  it('train writes a PEFT adapter; generate and grad use it; grad matches the float64 reference', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const tmp = mkdtempSync(join(tmpdir(), 'qlora-train-'));
    const data = join(tmp, 'data.jsonl');
    writeFileSync(data, ['Once upon a time there was a cat.', 'The cat sat on a mat and was happy.', 'A dog ran in the park with a ball.', 'Lily liked to read books in the sun.']
      .map((text) => JSON.stringify({ text })).join('\n') + '\n{"text": "cut off\n{"txt": "a typo"}\n');
    const out = join(tmp, 'adapter');
    const t = await qlora('train', dir, '--data', data, '--out', out, '--steps', '2', '--rank', '4', '--alpha', '8', '--seq-len', '32',
      '--batch-size', '2', '--eval-split', '1', '--targets', 'q_proj,v_proj', '--lr', '1e-2', '--warmup', '0', '--all-tokens');
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^step 1\/2  loss \d+\.\d{4}  lr 1\.000e-2  grad-norm \d+\.\d{4}  tok\/s \d+\.\d$/);
    expect(lines[1]).toMatch(/^step 2\/2 .* eval \d+\.\d{4}$/);
    // The two bad rows are skipped and said, each with its line and what was expected.
    expect(t.stderr).toMatch(/^data: skipped 2 rows \(invalid JSON 1, missing field 1\); --strict stops at the first instead$/m);
    expect(t.stderr).toMatch(/^ {2}data\.jsonl line 5: invalid JSON \(expected one JSON object per line\)/m);
    expect(t.stderr).toMatch(/^ {2}data\.jsonl line 6: missing field "text" \(expected a string\)$/m);
    const strict = await qlora('train', dir, '--data', data, '--out', join(tmp, 'strict'), '--steps', '1', '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stderr.trim()).toMatch(/^qlora: data\.jsonl line 5: invalid JSON/);
    expect(existsSync(join(tmp, 'strict'))).toBe(false);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], base_model_name_or_path: 'stories260K' });

    const gen = await qlora('generate', dir, '--adapter', out, '--prompt', 'Once', '--max-new-tokens', '5');
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stdout.length).toBeGreaterThan(0);

    const batch = { input_ids: [[1, 403, 261, 299, 301, 265], [1, 98, 80, 293, 280, 305]], labels: [[-100, 403, 261, 299, 301, 265], [1, 98, -100, 293, 280, -100]] };
    writeFileSync(join(tmp, 'batch.json'), JSON.stringify(batch));
    const g = await qlora('grad', dir, '--adapter', out, '--batch', join(tmp, 'batch.json'), '--out', join(tmp, 'grads.safetensors'), '--quant', 'none');
    expect(g.code, g.stderr).toBe(0);
    const reader = await openSafetensors(bytesSource(readFileSync(join(tmp, 'grads.safetensors')), 'grads.safetensors'));
    expect(reader.info('loss').shape).toEqual([1]);
    expect(reader.info('base_model.model.model.layers.4.self_attn.v_proj.lora_B.weight')).toMatchObject({ dtype: 'F32', shape: [32, 4] });
    expect(reader.names()).toHaveLength(1 + 5 * 2 * 2);
    const lossGpu = (await reader.readFloat32('loss'))[0]!;
    const { config, weights } = await loadModel(modelFolder(dir));
    const ad = await openSafetensors(bytesSource(readFileSync(join(out, 'adapter_model.safetensors')), 'a'));
    const tensors = new Map<string, Float32Array>();
    for (const n of ad.names()) tensors.set(n, await ad.readFloat32(n));
    const want = refLoss(weights, config, { inputIds: batch.input_ids, labels: batch.labels }, { tensors, alpha: 8 });
    expect(Math.abs(lossGpu - want) / want).toBeLessThan(1e-5);
  });
});
