// ByteStore over a cache folder (default $QLORA_CACHE or ~/.cache/qlora): the value of key "a/b"
// is the file <root>/a/b. Writes go to "<file>.partial" (appends buffered up to 1 MiB, written
// on flush) and commit renames it over the file, so readers never see half a value and a crash
// leaves the old value; a resumed writer appends to the .partial file. Keys follow checkKey
// (src/storage/layout.ts) and must stay inside the root. One writer per key at a time.

import { appendFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { checkKey } from '../storage/layout.ts';
import type { ByteStore, StoredEntry, ValueWriter } from '../storage/store.ts';

const BUFFER = 1 << 20;

/** $QLORA_CACHE, else ~/.cache/qlora. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  return resolve(env.QLORA_CACHE || join(homedir(), '.cache', 'qlora'));
}

const isMissing = (e: unknown) => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes((e as NodeJS.ErrnoException)?.code ?? '');

export class FsStore implements ByteStore {
  readonly root: string;
  readonly name: string;

  constructor(root: string = defaultCacheDir()) {
    this.root = resolve(root);
    this.name = this.root;
  }

  /** The file of `key` (throws for keys that break the rules or leave the root). */
  pathOf(key: string): string {
    checkKey(key);
    const p = resolve(this.root, ...key.split('/'));
    if (!p.startsWith(this.root + sep)) throw new Error(`invalid store key ${JSON.stringify(key)}: leaves ${this.root}`);
    return p;
  }

  async has(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: string): Promise<StoredEntry | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { key, size: s.size, modified: s.mtimeMs } : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  async read(key: string, offset: number, length: number): Promise<Uint8Array> {
    const path = this.pathOf(key);
    const fh = await open(path, 'r').catch((e) => {
      throw isMissing(e) ? new Error(`${this.name}: no value "${key}"`) : e;
    });
    try {
      const { size } = await fh.stat();
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(`${this.name}: read of ${length} bytes at ${offset} is outside "${key}" (${size} bytes)`);
      }
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new RangeError(`${this.name}: "${key}" ended after ${offset + done} bytes`);
        done += bytesRead;
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const w = await this.writer(key);
    await w.append(value);
    await w.commit();
  }

  async writer(key: string, opts: { resume?: boolean } = {}): Promise<ValueWriter> {
    const path = this.pathOf(key);
    const partial = path + '.partial';
    await mkdir(dirname(path), { recursive: true });
    let written = opts.resume ? await this.partialSize(key) : 0;
    if (!written) await appendFile(partial, new Uint8Array(), { flag: 'w' }); // a fresh (empty) partial
    let buf: Uint8Array[] = [];
    let buffered = 0;
    let state: 'open' | 'done' = 'open';
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(op: () => Promise<T>): Promise<T> => {
      const p = queue.then(() => {
        if (state !== 'open') throw new Error(`${this.name}: the write of "${key}" is already finished`);
        return op();
      });
      queue = p.catch(() => undefined);
      return p;
    };
    const drain = async () => {
      if (!buffered) return;
      const parts = buf;
      buf = [];
      buffered = 0;
      const fh = await open(partial, 'a');
      try {
        for (const part of parts) {
          let o = 0;
          while (o < part.byteLength) o += (await fh.write(part, o, part.byteLength - o)).bytesWritten;
        }
      } finally {
        await fh.close();
      }
    };
    return {
      get written() {
        return written;
      },
      append: (chunk) =>
        serial(async () => {
          buf.push(chunk.slice());
          buffered += chunk.byteLength;
          written += chunk.byteLength;
          if (buffered >= BUFFER) await drain();
        }),
      flush: () => serial(drain),
      commit: () =>
        serial(async () => {
          await drain();
          const fh = await open(partial, 'r+');
          try {
            await fh.datasync();
          } finally {
            await fh.close();
          }
          await rename(partial, path);
          state = 'done';
        }),
      abort: () =>
        serial(async () => {
          state = 'done';
          buf = [];
          await rm(partial, { force: true });
        }),
    };
  }

  async partialSize(key: string): Promise<number> {
    try {
      return (await stat(this.pathOf(key) + '.partial')).size;
    } catch (e) {
      if (isMissing(e)) return 0;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await rm(path, { force: true });
    await rm(path + '.partial', { force: true });
    // Prune folders left empty, up to the root.
    for (let d = dirname(path); d.startsWith(this.root + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        break;
      }
    }
  }

  async list(prefix = ''): Promise<StoredEntry[]> {
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = base ? this.pathOf(base) : this.root;
    const out: StoredEntry[] = [];
    const walk = async (dir: string): Promise<void> => {
      let ents;
      try {
        ents = await readdir(dir, { withFileTypes: true });
      } catch (e) {
        if (isMissing(e)) return;
        throw e;
      }
      for (const ent of ents) {
        const p = join(dir, ent.name);
        if (ent.isDirectory()) await walk(p);
        else if (ent.isFile() && !ent.name.endsWith('.partial')) {
          const key = relative(this.root, p).split(sep).join('/');
          if (!key.startsWith(prefix)) continue;
          const s = await stat(p).catch(() => null);
          if (s) out.push({ key, size: s.size, modified: s.mtimeMs });
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
