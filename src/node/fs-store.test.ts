import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrate, StoreVersionError, VERSION_KEY } from '../storage/layout.ts';
import { defaultCacheDir, FsStore } from './fs-store.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'qlora-fsstore-'));
function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 11)) & 255;
  return b;
}
/** Byte equality (vitest's deep equality is slow on MB-sized arrays). */
const same = (a: Uint8Array | undefined, b: Uint8Array) => !!a && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('FsStore', () => {
  it('puts, reads ranges, lists and deletes', async () => {
    const s = new FsStore(tmp());
    const v = bytes(5000);
    await s.put('v1/models/a/b@main/files/x.bin', v);
    await s.put('v1/models/a/b@main/manifest.json', bytes(10));
    await s.put('v1/runs/r1/state', bytes(3));
    expect(same(await s.get('v1/models/a/b@main/files/x.bin'), v)).toBe(true);
    expect(same(await s.read('v1/models/a/b@main/files/x.bin', 4990, 10), v.subarray(4990))).toBe(true);
    await expect(s.read('v1/models/a/b@main/files/x.bin', 4995, 10)).rejects.toThrow(/outside/);
    await expect(s.read('nope', 0, 1)).rejects.toThrow(/no value "nope"/);
    expect(await s.get('nope')).toBeUndefined();
    expect((await s.stat('v1/models/a/b@main/files/x.bin'))!.size).toBe(5000);
    expect(await s.stat('v1/models')).toBeUndefined(); // a folder is not a value
    expect((await s.list('v1/models/')).map((e) => e.key)).toEqual(['v1/models/a/b@main/files/x.bin', 'v1/models/a/b@main/manifest.json']);
    expect((await s.list('v1/r')).map((e) => e.key)).toEqual(['v1/runs/r1/state']);
    await s.delete('v1/runs/r1/state');
    expect(existsSync(join(s.root, 'v1/runs'))).toBe(false); // empty folders pruned
    expect(await s.has('v1/runs/r1/state')).toBe(false);
    await s.delete('v1/runs/r1/state'); // absent: no error
  });

  it('commits atomically: nothing visible before commit, the old value until then, abort keeps it', async () => {
    const s = new FsStore(tmp());
    await s.put('k', bytes(100, 1));
    const w = await s.writer('k');
    await w.append(bytes(3 << 20, 2)); // more than the 1 MiB buffer: some of it is on disk already
    expect(same(await s.get('k'), bytes(100, 1))).toBe(true);
    expect((await s.list()).map((e) => e.key)).toEqual(['k']); // the .partial file is not a value
    await w.commit();
    expect(same(await s.get('k'), bytes(3 << 20, 2))).toBe(true);
    expect(existsSync(s.pathOf('k') + '.partial')).toBe(false);
    const w2 = await s.writer('k');
    await w2.append(bytes(10, 3));
    await w2.abort();
    expect(same(await s.get('k'), bytes(3 << 20, 2))).toBe(true);
    expect(await s.partialSize('k')).toBe(0);
    await expect(w2.append(bytes(1))).rejects.toThrow(/already finished/);
  });

  it('resumes a partial write after flush, in a new store object (a new process)', async () => {
    const root = tmp();
    const all = bytes(2_500_000, 5);
    const a = await new FsStore(root).writer('big');
    await a.append(all.subarray(0, 1_000_001));
    await a.flush!();
    // The first writer is abandoned (the process died); a new one resumes.
    const s = new FsStore(root);
    expect(await s.partialSize('big')).toBe(1_000_001);
    expect(await s.has('big')).toBe(false);
    const b = await s.writer('big', { resume: true });
    expect(b.written).toBe(1_000_001);
    await b.append(all.subarray(1_000_001));
    await b.commit();
    expect(same(await s.get('big'), all)).toBe(true);
    // Without resume, an old partial is dropped.
    const c = await s.writer('x');
    await c.append(bytes(10));
    await c.flush!();
    const d = await s.writer('x');
    expect(d.written).toBe(0);
    await d.append(bytes(4, 9));
    await d.commit();
    expect(same(await s.get('x'), bytes(4, 9))).toBe(true);
  });

  it('rejects bad keys: "..", absolute, empty segments, backslashes, ".partial", "#"', async () => {
    const s = new FsStore(tmp());
    for (const k of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '', 'a/', 'a\\b', 'x.partial', 'a/b.partial/c', 'a#1', '.', 'a/./b']) {
      await expect(s.put(k, bytes(1)), k).rejects.toThrow(/invalid store key/);
    }
    await expect(s.get('../x')).rejects.toThrow(/invalid store key/);
    await expect(s.writer('..')).rejects.toThrow(/invalid store key/);
    expect(readdirSync(s.root)).toEqual([]);
  });

  it('defaults to $QLORA_CACHE, else ~/.cache/qlora', () => {
    expect(defaultCacheDir({ QLORA_CACHE: '/tmp/qc' })).toBe('/tmp/qc');
    expect(defaultCacheDir({})).toMatch(/\.cache\/qlora$/);
  });

  it('migrate writes the layout version once and refuses a newer one without deleting anything', async () => {
    const root = tmp();
    const s = new FsStore(root);
    expect(await migrate(s)).toBe(1);
    expect(JSON.parse(readFileSync(join(root, VERSION_KEY), 'utf8')).layout).toBe(1);
    await s.put('v1/models/a@main/manifest.json', bytes(3));
    writeFileSync(join(root, VERSION_KEY), JSON.stringify({ layout: 2 }));
    const err = await migrate(new FsStore(root)).catch((e) => e);
    expect(err).toBeInstanceOf(StoreVersionError);
    expect(err.message).toMatch(/newer QLoRA Studio \(storage layout v2\).*reads layout v1.*Nothing was changed/);
    expect(await s.has('v1/models/a@main/manifest.json')).toBe(true);
    writeFileSync(join(root, VERSION_KEY), 'garbage');
    await expect(migrate(new FsStore(root))).rejects.toThrow(/unreadable.*not touching/);
  });
});
