// The OPFS export sink against a fake private file system (Node has no OPFS): chunks written in
// order at the right offsets through a sync access handle, the file truncated, flushed and closed
// before the disk-backed File is handed out; the writable-stream fallback; older temp exports
// removed when a new one starts (a locked one skipped); a clear error when the quota is short,
// OPFS refuses, or a write hits the quota (the partial file removed); and a merged model streamed
// through the zip sink onto "disk" as it is produced, its size bounded by mergedZipBytes.

import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { parseHeader, readHeaderLength, writeSafetensors } from '../formats/safetensors.ts';
import { parseModelConfig } from '../model/config.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { modelTensorShapes } from '../model/names.ts';
import { randomWeights, tinyConfigJson } from '../model/tiny-model.ts';
import { openCheckpoint } from '../model/weights.ts';
import { mergeOnCpu } from '../export/merge.ts';
import { mergedZipBytes } from './merged-size.ts';
import {
  createDiskFile,
  diskZipSink,
  EXPORT_PREFIX,
  ExportDiskError,
  exportTempName,
  openExportFile,
  opfsOf,
  removeOldExports,
  type OpfsLike,
} from './opfs-sink.ts';
import { fakeOpfs } from './fake-opfs.ts';
import { concatBytes } from '../util/bytes.ts';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const concat = concatBytes;

describe('OPFS export sink', () => {
  it('writes chunks in order at their offsets through a sync access handle, then truncates, flushes, closes and hands out the file', async () => {
    const { dir, calls, files } = fakeOpfs();
    files.set('qlora-export-stale', { bytes: bytes(5000, 1), locked: false });
    const disk = await createDiskFile(dir, 'qlora-export-stale'); // an existing name: emptied first
    expect(disk.mode).toBe('sync');
    const parts = [bytes(1000, 2), bytes(1, 3), bytes(4096, 4), bytes(0, 5), bytes(777, 6)];
    for (const p of parts) await disk.write(p);
    expect(disk.bytes).toBe(5874);
    const file = await disk.finish();
    expect(calls).toEqual([
      { op: 'truncate', size: 0 },
      { op: 'write', at: 0, n: 1000 },
      { op: 'write', at: 1000, n: 1 },
      { op: 'write', at: 1001, n: 4096 },
      { op: 'write', at: 5097, n: 0 },
      { op: 'write', at: 5097, n: 777 },
      { op: 'truncate', size: 5874 },
      { op: 'flush' },
      { op: 'close' },
      { op: 'getFile' },
    ]);
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(concat(parts));
    await expect(disk.write(bytes(1, 1))).rejects.toThrow(/closed/);
  });

  it('falls back to a writable stream when sync access handles are missing', async () => {
    const { dir, calls } = fakeOpfs({ sync: false });
    const disk = await createDiskFile(dir, `${EXPORT_PREFIX}w`);
    expect(disk.mode).toBe('writable');
    const parts = [bytes(10, 1), bytes(20, 2)];
    for (const p of parts) await disk.write(p);
    const file = await disk.finish();
    expect(calls.map((c) => c.op)).toEqual(['write', 'write', 'close', 'getFile']);
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(concat(parts));
  });

  it('streams when opening a sync access handle is refused (not a dedicated worker)', async () => {
    const { dir } = fakeOpfs();
    const refusing = {
      ...dir,
      getFileHandle: async (name: string, o?: { create?: boolean }) => ({
        ...(await dir.getFileHandle(name, o)),
        createSyncAccessHandle: () => Promise.reject(new Error('not allowed here')),
      }),
    };
    const disk = await createDiskFile(refusing, `${EXPORT_PREFIX}r`);
    expect(disk.mode).toBe('writable');
    await disk.write(bytes(5, 1));
    expect(new Uint8Array(await (await disk.finish()).arrayBuffer())).toEqual(bytes(5, 1));
  });

  it('refuses clearly when the file system can neither sync-write nor stream', async () => {
    const { dir, files } = fakeOpfs({ sync: false, writable: false });
    const err = await createDiskFile(dir, `${EXPORT_PREFIX}x`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportDiskError);
    expect((err as ExportDiskError).code).toBe('unavailable');
    expect(files.size).toBe(0);
  });

  it('removes older temp exports when a new one starts, skipping one that is open and other files', async () => {
    const { opfs, dir, files } = fakeOpfs();
    files.set(`${EXPORT_PREFIX}old-1`, { bytes: bytes(10, 1), locked: false });
    files.set(`${EXPORT_PREFIX}old-2`, { bytes: bytes(10, 1), locked: true }); // another tab writing
    files.set('unrelated.bin', { bytes: bytes(10, 1), locked: false });
    expect(await removeOldExports(dir, [`${EXPORT_PREFIX}old-1`])).toEqual([]);
    const disk = await openExportFile(opfs, { download: 'stories260K-merged-f16.zip', expectedBytes: 100 });
    expect(disk.name.startsWith(EXPORT_PREFIX)).toBe(true);
    expect(disk.name.endsWith('-stories260K-merged-f16.zip')).toBe(true);
    expect([...files.keys()].sort()).toEqual([disk.name, `${EXPORT_PREFIX}old-2`, 'unrelated.bin'].sort());
    await disk.write(bytes(3, 1));
    await disk.finish();
    // The finished file stays (the page downloads it) until the next export starts.
    expect(files.has(disk.name)).toBe(true);
    const next = await openExportFile(opfs, { download: 'a.zip' });
    expect(files.has(disk.name)).toBe(false);
    expect(files.has(next.name)).toBe(true);
    await next.abort();
    expect(files.has(next.name)).toBe(false);
  });

  it('names temp files uniquely and safely', () => {
    const a = exportTempName('my model/../x.zip', 1_700_000_000_000, 0.25);
    expect(a).toMatch(/^qlora-export-[a-z0-9]+-[a-z0-9]{7}-my-model-.-x\.zip$/);
    expect(exportTempName('x', 1, 0.1)).not.toBe(exportTempName('x', 1, 0.2));
  });

  it('checks the quota against the expected size before writing anything, after clearing old exports', async () => {
    const { opfs, files } = fakeOpfs({ quota: 100 * 1024 * 1024, usage: 70 * 1024 * 1024 });
    files.set(`${EXPORT_PREFIX}old`, { bytes: bytes(10, 1), locked: false });
    const err = await openExportFile(opfs, { download: 'm.zip', expectedBytes: 40 * 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportDiskError);
    expect((err as ExportDiskError).code).toBe('quota');
    expect((err as Error).message).toMatch(/needs about 40\.0 MiB, and the browser allows this site 30\.0 MiB more/);
    expect(files.size).toBe(0);
    const ok = await openExportFile(opfs, { download: 'm.zip', expectedBytes: 20 * 1024 * 1024 });
    await ok.abort();
  });

  it('reports an OPFS that refuses to open, and a write that hits the quota (removing the partial file)', async () => {
    const refusing: OpfsLike = { getDirectory: () => Promise.reject(Object.assign(new Error('The operation is insecure.'), { name: 'SecurityError' })) };
    const err = await openExportFile(refusing, { download: 'm.zip' }).catch((e: unknown) => e);
    expect((err as ExportDiskError).code).toBe('unavailable');
    expect((err as Error).message).toMatch(/private file system \(OPFS\) is not available here \(The operation is insecure\.\)/);

    const { opfs, files } = fakeOpfs({ failAt: 3000 });
    const disk = await openExportFile(opfs, { download: 'm.zip' });
    await disk.write(bytes(2000, 1));
    const werr = await disk.write(bytes(2000, 2)).catch((e: unknown) => e);
    expect((werr as ExportDiskError).code).toBe('quota');
    expect((werr as Error).message).toMatch(/storage quota is used up \(0\.0 MiB of the export were written\)/);
    await disk.abort();
    expect(files.size).toBe(0);
  });

  it('finds OPFS on a StorageManager only when it has getDirectory', () => {
    expect(opfsOf(undefined)).toBeNull();
    expect(opfsOf({ estimate: async () => ({}) })).toBeNull();
    const s = { getDirectory: async () => ({}) };
    expect(opfsOf(s)).toBe(s);
  });

  it('streams a merged model zip onto disk as it is produced; the size estimate bounds it', async () => {
    const json = tinyConfigJson('llama');
    const config = parseModelConfig(json);
    const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
    const st = writeSafetensors([...randomWeights(config, 3)].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
    const files = memoryModelFiles({ 'config.json': JSON.stringify(json), 'model.safetensors': st, 'tokenizer.json': '{"fake": true}', 'README.md': 'not carried' });
    const sizes = await Promise.all((await files.list()).map(async (name) => ({ name, size: (await files.open(name)).size })));

    const { opfs, calls } = fakeOpfs();
    const disk = await openExportFile(opfs, { download: 'tiny-merged-f16.zip', expectedBytes: mergedZipBytes(config, sizes) });
    const zip = diskZipSink(disk);
    await mergeOnCpu(config, await openCheckpoint(files), null, zip, { dtype: 'f16', quant: 'none', files });
    // Everything but the zip's central directory is on disk before the archive is finished.
    const before = disk.bytes;
    const writesBefore = calls.filter((c) => c.op === 'write').length;
    expect(writesBefore).toBeGreaterThan(5);
    const file = await zip.finish();
    expect(file.size - before).toBeLessThan(1024);
    const entries = unzipSync(new Uint8Array(await file.arrayBuffer()));
    expect(Object.keys(entries).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    const m = entries['model.safetensors']!;
    const header = parseHeader(m.subarray(0, 8 + readHeaderLength(m, 'model.safetensors')), { fileLength: m.byteLength, source: 'model.safetensors' });
    expect(header.tensors.length).toBe(modelTensorShapes(config).length);
    expect(new Set(header.tensors.map((t) => t.dtype))).toEqual(new Set(['F16']));
    const estimate = mergedZipBytes(config, sizes);
    expect(estimate).toBeGreaterThanOrEqual(file.size);
    expect(estimate).toBeLessThan(file.size * 1.01 + 4096);
  });
});
