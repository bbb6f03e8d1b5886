import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, sharedPath } from '../test/shared.ts';
import { writeSafetensors } from '../formats/safetensors.ts';

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
});
