// The merged-model export as the worker runs it (Node, the real GPU runtime, stories260K with a
// random adapter): streamed into a temp file of a (fake) private file system and handed out as
// a disk-backed file, within the size the quota check expects; the next export removes the older
// temp file; a quota too small for the model refuses before anything is written; without any OPFS
// the zip is built in memory with a warning.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { parseHeader, readHeaderLength } from '../formats/safetensors.ts';
import { parseModelConfig } from '../model/config.ts';
import { modelTensorShapes, parsePeftLoraName, peftLoraShape } from '../model/names.ts';
import { randomLoraTensors } from '../model/tiny-model.ts';
import { sharedPath } from '../node/shared.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import { makeLoraConfig } from '../train/lora-config.ts';
import { adapterConfigJson, writeAdapter } from '../train/peft.ts';
import { fakeOpfs } from './fake-opfs.ts';
import { mergedZipBytes } from './merged-size.ts';
import { EXPORT_PREFIX, ExportDiskError, type OpfsLike } from './opfs-sink.ts';
import { EngineSession, NO_OPFS_WARNING } from './session.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const dir = sharedPath('models/stories260K');

async function sessionWith(opfs: OpfsLike | null): Promise<EngineSession> {
  const s = new EngineSession({ emit: () => undefined, store: new MemoryStore('test'), storage: null, opfs });
  const files = readdirSync(dir!).map((name) => new File([readFileSync(join(dir!, name))], name));
  await s.loadModel(rt, { source: { kind: 'files', name: 'stories260K', files }, quant: 'nf4' });
  const config = parseModelConfig(JSON.parse(readFileSync(join(dir!, 'config.json'), 'utf8')));
  const tensors = randomLoraTensors(config, 2, ['q_proj', 'v_proj'], { seed: 5 });
  const weights = writeAdapter(new Map([...tensors].map(([n, data]) => {
    const p = parsePeftLoraName(n)!;
    return [n, { shape: peftLoraShape(config, p.target, p.which, 2), data }];
  })));
  await s.loadAdapterBytes({ config: adapterConfigJson(makeLoraConfig({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] }), 'test/stories260K'), weights });
  return s;
}

const merged = { kind: 'merged-zip' as const, record: {} };

describe('merged export in the worker', () => {
  it('streams into a temp file in OPFS and hands out the disk-backed file; the next export replaces it', async () => {
    if (!dir) return;
    const fake = fakeOpfs({ quota: 1 << 30, usage: 0 });
    const s = await sessionWith(fake.opfs);
    const r = await s.exportFile(merged);
    expect(r).toMatchObject({ name: 'stories260K-merged-f16.zip', mime: 'application/zip', storage: 'opfs' });
    expect(r.warning).toBeUndefined();
    expect(r.data).toBeInstanceOf(Blob);
    const zip = new Uint8Array(await (r.data as Blob).arrayBuffer());
    expect(r.bytes).toBe(zip.byteLength);
    const temps = [...fake.files.keys()];
    expect(temps).toHaveLength(1);
    expect(temps[0]!.startsWith(EXPORT_PREFIX)).toBe(true);
    expect(fake.files.get(temps[0]!)!.bytes).toEqual(zip); // the handed-out file is the one on disk
    // Written as a stream of writes at increasing offsets, then truncated and closed.
    const writes = fake.calls.filter((c) => c.op === 'write');
    expect(writes.length).toBeGreaterThan(20);
    writes.reduce((at, w) => (expect(w.at).toBe(at), at + w.n), 0);
    expect(fake.calls.slice(-4).map((c) => c.op)).toEqual(['truncate', 'flush', 'close', 'getFile']);
    const entries = unzipSync(zip);
    expect(Object.keys(entries).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const m = entries['model.safetensors']!;
    const header = parseHeader(m.subarray(0, 8 + readHeaderLength(m, 'model.safetensors')), { fileLength: m.byteLength, source: 'model.safetensors' });
    const config = parseModelConfig(JSON.parse(new TextDecoder().decode(entries['config.json']!)));
    expect(header.tensors.length).toBe(modelTensorShapes(config).length);
    const sizes = readdirSync(dir).map((name) => ({ name, size: readFileSync(join(dir, name)).byteLength }));
    expect(mergedZipBytes(config, sizes)).toBeGreaterThanOrEqual(zip.byteLength);

    const again = await s.exportFile(merged);
    expect(new Uint8Array(await (again.data as Blob).arrayBuffer())).toEqual(zip); // deterministic
    expect([...fake.files.keys()]).toHaveLength(1);
    expect(fake.files.has(temps[0]!)).toBe(false);
  });

  it('refuses before writing when the quota is short, and builds in memory with a warning without OPFS', async () => {
    if (!dir) return;
    const tight = fakeOpfs({ quota: 2 * 1024 * 1024, usage: 1.9 * 1024 * 1024 });
    const s = await sessionWith(tight.opfs);
    const err = await s.exportFile(merged).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportDiskError);
    expect((err as Error).message).toMatch(/^Not enough disk space for this export: it needs about 0\.\d MiB, and the browser allows this site 0\.1 MiB more/);
    expect(tight.files.size).toBe(0);

    const failing = fakeOpfs({ failAt: 100_000 });
    const s2 = await sessionWith(failing.opfs);
    const werr = await s2.exportFile(merged).catch((e: unknown) => e);
    expect((werr as ExportDiskError).code).toBe('quota');
    expect(failing.files.size).toBe(0); // the partial file is removed

    const s3 = await sessionWith(null);
    const r = await s3.exportFile(merged);
    expect(r).toMatchObject({ storage: 'memory', warning: NO_OPFS_WARNING });
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect(Object.keys(unzipSync(r.data as Uint8Array))).toContain('model.safetensors');
  });
});
