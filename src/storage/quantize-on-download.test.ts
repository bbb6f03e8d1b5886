// Quantize while streaming: `qlora pull --quantize nf4` from the local test Hub builds the
// <repo>@<rev>+nf4 entry as shards land; its tensors equal quantizeCheckpoint's, it loads on the
// GPU like quantize-on-load, --drop-original removes the source, and an interrupted pull never
// leaves a complete-looking 4-bit entry.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downloadModel } from '../hub/hub-client.ts';
import { startTestHub, standardRepos, tinyModelFiles, type TestHub } from '../hub/test-server.ts';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { makeBatch } from '../llm/batch.ts';
import { loadGpuModel } from '../llm/load.ts';
import { memoryModelFiles, type ModelFiles } from '../model/model-files.ts';
import { openCheckpoint } from '../model/weights.ts';
import { FsStore } from '../node/fs-store.ts';
import { resolveModelArg } from '../node/resolve-model.ts';
import { REPO_ROOT } from '../node/shared.ts';
import { quantizeCheckpoint } from '../quant/convert.ts';
import { MemoryStore } from './memory-store.ts';
import { deleteModel, listCachedModels, openStoredModel, readManifest } from './model-store.ts';
import { parseQuantizedRevision, QuantizeOnDownload, quantizedRevision } from './quantize-on-download.ts';

const BIN = join(REPO_ROOT, 'bin/qlora.js');
let hub: TestHub;
let cache: string;
let rt: GpuRuntime;
const repos = standardRepos();
const hasStories = repos.some((r) => r.id === 'test/stories260K');

beforeAll(async () => {
  hub = await startTestHub(repos);
  rt = await createNodeRuntime();
});
afterAll(async () => {
  rt?.destroy();
  await hub?.close();
});
beforeEach(() => {
  hub.clearFaults();
  hub.resetCounters();
  cache = mkdtempSync(join(tmpdir(), 'qlora-qod-'));
});

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.HF_TOKEN;
  delete e.HF_ENDPOINT;
  return { ...e, QLORA_CACHE: cache };
}

function qlora(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: env(), timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Every tensor of `a` equals the same-named one of `b` (dtype, shape, bytes), and no extra ones. */
async function expectSameTensors(files: ModelFiles, want: { name: string; dtype: string; shape: number[]; data: Uint8Array }[]) {
  const ck = await openCheckpoint(files);
  expect(ck.names().sort()).toEqual(want.map((t) => t.name).sort());
  for (const t of want) {
    const info = ck.info(t.name);
    expect([t.name, info.dtype, info.shape]).toEqual([t.name, t.dtype, t.shape]);
    expect(Buffer.from(await ck.readBytes(t.name)).equals(Buffer.from(t.data)), t.name).toBe(true);
  }
}

async function logitsOf(files: ModelFiles, quant?: 'nf4', ids = [1, 5, 9, 3, 7, 2]) {
  const m = await loadGpuModel(rt, files, quant ? { quant } : {});
  try {
    return { prequantized: m.prequantized, logits: await m.model.logits(makeBatch({ inputIds: [ids] })) };
  } finally {
    m.model.destroy();
  }
}

describe('quantize on download', () => {
  it('names derived revisions', () => {
    expect(quantizedRevision('main', 'nf4')).toBe('main+nf4');
    expect(parseQuantizedRevision('refs/pr/1+fp4')).toEqual({ from: 'refs/pr/1', type: 'fp4' });
    expect(parseQuantizedRevision('main')).toBeNull();
  });

  for (const repo of ['test/tiny', ...(hasStories ? ['test/stories260K'] : [])]) {
    it(`qlora pull ${repo} --quantize nf4: the +nf4 entry equals quantizeCheckpoint and loads like quantize-on-load`, async () => {
      const r = await qlora(['pull', repo, '--endpoint', hub.url, '--quantize', 'nf4']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/main\+nf4: nf4 copy complete/);
      expect(r.stdout.trim()).toBe(join(cache, `v1/models/${repo}@main%2Bnf4/files`));
      const store = new FsStore(cache);
      const src = await openStoredModel(store, repo, 'main');
      const q = await openStoredModel(store, repo, 'main+nf4');
      expect((await q.list()).sort()).toEqual((await src.list()).sort());
      const cfg = JSON.parse(await q.text('config.json'));
      expect(cfg.quantization_config).toMatchObject({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true });
      const { tensors, stats } = await quantizeCheckpoint(await openCheckpoint(src), { type: 'nf4' });
      expect(stats.quantized).toBeGreaterThan(0);
      await expectSameTensors(q, tensors);
      for (const f of await src.list()) if (!/\.safetensors$|^config\.json$|index\.json$/.test(f)) expect(await q.text(f)).toBe(await src.text(f));

      const ls = await qlora(['cache', 'ls']);
      expect(ls.stdout).toMatch(new RegExp(`${repo}\\s+main\\+nf4\\s+(\\d+)/\\1\\s+[\\d.]+ KiB\\s+complete \\(nf4 of main\\)`));
      const listed = (await listCachedModels(store)).find((m) => m.revision === 'main+nf4')!;
      const orig = (await listCachedModels(store)).find((m) => m.revision === 'main')!;
      expect(listed).toMatchObject({ repo, complete: true, quantized: { from: 'main', type: 'nf4', blocksize: 64, doubleQuant: true } });
      expect(listed.bytes).toBeGreaterThan(0);
      expect(listed.bytes).toBeLessThan(orig.bytes);
      expect(orig.quantized).toBeUndefined();

      // A model argument "<repo>@main+nf4" opens the 4-bit entry; same logits as quantizing on load.
      const a = await logitsOf(await resolveModelArg(`${repo}@main+nf4`, { cacheDir: cache }));
      const b = await logitsOf(src, 'nf4');
      expect(a.prequantized).toBe(true);
      expect(b.prequantized).toBe(false);
      expect(a.logits).toEqual(b.logits);

      // Pulling again changes nothing; deleting the repo removes both entries.
      const again = await qlora(['pull', repo, '--endpoint', hub.url, '--quantize', 'nf4', '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).quantized).toMatchObject({ revision: 'main+nf4', quantized: 0, droppedOriginal: false });
      expect((await deleteModel(store, repo)).map((m) => m.revision)).toEqual(['main', 'main+nf4']);
    });
  }

  it('--drop-original removes the full-precision files; the 4-bit model still loads', async () => {
    const r = await qlora(['pull', 'test/tiny', '--endpoint', hub.url, '--quantize', 'nf4', '--drop-original']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/the original test\/tiny@main was removed/);
    const store = new FsStore(cache);
    expect(await readManifest(store, 'test/tiny', 'main')).toBeUndefined();
    expect(existsSync(join(cache, 'v1/models/test/tiny@main'))).toBe(false);
    expect((await listCachedModels(store)).map((m) => m.revision)).toEqual(['main+nf4']);
    const a = await logitsOf(await openStoredModel(store, 'test/tiny', 'main+nf4'));
    const b = await logitsOf(memoryModelFiles(tinyModelFiles()), 'nf4');
    expect(a.logits).toEqual(b.logits);
    // Pulling again with the original gone fetches nothing.
    hub.resetCounters();
    const again = await qlora(['pull', 'test/tiny', '--endpoint', hub.url, '--quantize', 'nf4', '--drop-original']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/in the cache already/);
    expect(hub.requests.length).toBe(0);
    expect(readFileSync(join(again.stdout.trim(), 'config.json'), 'utf8')).toMatch(/bitsandbytes/);
  });

  it('an interrupted pull leaves no complete-looking 4-bit entry, and the next pull finishes it', async () => {
    hub.fault({ repo: 'test/tiny', file: 'model-00002-of-00002.safetensors', stallAfter: 2000 });
    const child = spawn(process.execPath, [BIN, 'pull', 'test/tiny', '--endpoint', hub.url, '--quantize', 'nf4', '--parallel', '1'], { cwd: REPO_ROOT, env: env() });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)));
    for (let i = 0; i < 400 && hub.sent('test/tiny', 'model-00002-of-00002.safetensors') < 2000; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(1);
    const store = new FsStore(cache);
    const m = await readManifest(store, 'test/tiny', 'main+nf4');
    expect(m).toMatchObject({ complete: false, quantized: { from: 'main', type: 'nf4' } });
    expect(m!.files.find((f) => f.name === 'model-00001-of-00002.safetensors')?.done).toBe(true); // quantized as it landed
    expect(m!.files.find((f) => f.name === 'model-00002-of-00002.safetensors')?.done).toBe(false);
    await expect(openStoredModel(store, 'test/tiny', 'main+nf4')).rejects.toThrow(/unfinished/);
    expect((await qlora(['cache', 'ls'])).stdout).toMatch(/test\/tiny\s+main\+nf4\s+.*partial nf4 of main/);

    const r = await qlora(['pull', 'test/tiny', '--endpoint', hub.url, '--quantize', 'nf4', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).quantized).toMatchObject({ quantized: 7 }); // shard 1 was kept: only shard 2's linears now
    const { tensors } = await quantizeCheckpoint(await openCheckpoint(memoryModelFiles(tinyModelFiles())), { type: 'nf4' });
    await expectSameTensors(await openStoredModel(store, 'test/tiny', 'main+nf4'), tensors);
  });

  it('works on any ByteStore with downloadModel (engine API), fp4 without double quant', async () => {
    const store = new MemoryStore();
    const q = new QuantizeOnDownload(store, 'test/tiny', 'main', { type: 'fp4', doubleQuant: false, keepOriginal: false });
    const landed: string[] = [];
    await downloadModel(store, 'test/tiny', { endpoint: hub.url, estimate: null, persist: null, onFileDone: async (f) => {
      landed.push(f.name);
      await q.fileDone(f.name);
      // Mid-download, the 4-bit entry never looks complete.
      expect((await readManifest(store, 'test/tiny', 'main+fp4'))?.complete).toBe(false);
    } });
    expect(landed.length).toBe(4);
    const res = await q.finish();
    expect(res).toMatchObject({ revision: 'main+fp4', droppedOriginal: true, quantized: 14 });
    const { tensors } = await quantizeCheckpoint(await openCheckpoint(memoryModelFiles(tinyModelFiles())), { type: 'fp4', doubleQuant: false });
    await expectSameTensors(await openStoredModel(store, 'test/tiny', 'main+fp4'), tensors);
    expect(await readManifest(store, 'test/tiny', 'main')).toBeUndefined();
  });
});
