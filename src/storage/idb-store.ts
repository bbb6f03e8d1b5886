// ByteStore over IndexedDB (idb-keyval custom store; works in a page and in a Web Worker). One object
// store holds three kinds of records, by key prefix:
//   m:<key>                 {size, modified, gen, chunkSize}   committed value (its metadata)
//   p:<key>                 {size, gen, chunkSize, started}    an unfinished write (resumable)
//   c:<key>#<gen>:<i>       Uint8Array                         chunk i (chunkSize bytes, last one shorter)
// Each write gets a fresh generation id, so a new write never touches the chunks of the committed
// value; commit writes the tail chunk, the metadata, deletes the pending record and the old chunks,
// all in ONE transaction (atomic for readers and across crashes). Appends are buffered to whole
// chunks; flush() stores the partial tail chunk so a reload resumes after every appended byte.
// A read fetches metadata and chunks in one transaction, so a concurrent commit is never mixed in.

import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import { checkKey } from './layout.ts';
import type { ByteStore, StoredEntry, ValueWriter } from './store.ts';

export const IDB_CHUNK = 4 << 20;

interface Meta {
  size: number;
  modified: number;
  gen: string;
  chunkSize: number;
}
interface Pending {
  size: number;
  gen: string;
  chunkSize: number;
  started: number;
}

export interface IdbStoreOptions {
  dbName?: string;
  storeName?: string;
  /** Bytes per stored chunk (default 4 MiB; tests use less). */
  chunkSize?: number;
}

const mKey = (k: string) => `m:${k}`;
const pKey = (k: string) => `p:${k}`;
const cKey = (k: string, gen: string, i: number) => `c:${k}#${gen}:${i}`;
const range = (prefix: string) => IDBKeyRange.bound(prefix, prefix + '\uffff');
const newGen = () => Date.now().toString(36) + Math.floor(Math.random() * 2 ** 32).toString(36);

/** Resolves when the transaction of `s` completes (rejects when it aborts). */
const done = (s: IDBObjectStore) => promisifyRequest(s.transaction);

export class IdbStore implements ByteStore {
  readonly name: string;
  readonly chunkSize: number;
  private readonly db: UseStore;

  constructor(opts: IdbStoreOptions = {}) {
    const dbName = opts.dbName ?? 'qlora-studio';
    this.db = createStore(dbName, opts.storeName ?? 'bytes');
    this.chunkSize = opts.chunkSize ?? IDB_CHUNK;
    this.name = `IndexedDB "${dbName}"`;
  }

  async has(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: string): Promise<StoredEntry | undefined> {
    checkKey(key);
    const m = await this.db('readonly', (s) => promisifyRequest<Meta | undefined>(s.get(mKey(key))));
    return m && { key, size: m.size, modified: m.modified };
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const st = await this.stat(key);
    if (!st) return undefined;
    return this.readRange(key, 0, null);
  }

  read(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.readRange(key, offset, length);
  }

  /** Bytes [offset, offset+length) (length null: to the end), metadata and chunks in one transaction. */
  private readRange(key: string, offset: number, length: number | null): Promise<Uint8Array> {
    checkKey(key);
    return this.db('readonly', (s) => new Promise<Uint8Array>((resolveRead, reject) => {
      const mr = s.get(mKey(key));
      mr.onerror = () => reject(mr.error);
      mr.onsuccess = () => {
        const m = mr.result as Meta | undefined;
        if (!m) return reject(new Error(`${this.name}: no value "${key}"`));
        const len = length ?? m.size - offset;
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 || offset + len > m.size) {
          return reject(new RangeError(`${this.name}: read of ${len} bytes at ${offset} is outside "${key}" (${m.size} bytes)`));
        }
        const out = new Uint8Array(len);
        if (!len) return resolveRead(out);
        const first = Math.floor(offset / m.chunkSize);
        const last = Math.floor((offset + len - 1) / m.chunkSize);
        let pending = last - first + 1;
        for (let i = first; i <= last; i++) {
          const r = s.get(cKey(key, m.gen, i));
          r.onerror = () => reject(r.error);
          r.onsuccess = () => {
            const chunk = r.result as Uint8Array | undefined;
            const c0 = i * m.chunkSize;
            const want = Math.min(m.size, c0 + m.chunkSize) - c0;
            if (!chunk || chunk.byteLength < want) return reject(new Error(`${this.name}: chunk ${i} of "${key}" is missing or short`));
            const from = Math.max(offset, c0);
            const to = Math.min(offset + len, c0 + m.chunkSize);
            out.set(chunk.subarray(from - c0, to - c0), from - offset);
            if (--pending === 0) resolveRead(out);
          };
        }
      };
    }));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const w = await this.writer(key);
    await w.append(value);
    await w.commit();
  }

  async writer(key: string, opts: { resume?: boolean } = {}): Promise<ValueWriter> {
    checkKey(key);
    const old = await this.db('readonly', (s) => promisifyRequest<Pending | undefined>(s.get(pKey(key))));
    let p: Pending;
    let buf: Uint8Array;
    let bufLen = 0;
    if (opts.resume && old) {
      p = old;
      buf = new Uint8Array(p.chunkSize);
      bufLen = p.size % p.chunkSize;
      if (bufLen) {
        // Reload the stored tail chunk: it is rewritten, longer, by the next flush.
        const tail = await this.db('readonly', (s) => promisifyRequest<Uint8Array | undefined>(s.get(cKey(key, p.gen, Math.floor(p.size / p.chunkSize)))));
        if (!tail || tail.byteLength < bufLen) throw new Error(`${this.name}: the unfinished write of "${key}" lost its last chunk`);
        buf.set(tail.subarray(0, bufLen));
      }
    } else {
      p = { size: 0, gen: newGen(), chunkSize: this.chunkSize, started: Date.now() };
      buf = new Uint8Array(p.chunkSize);
      await this.db('readwrite', (s) => {
        if (old) s.delete(range(`c:${key}#${old.gen}:`));
        s.put(p, pKey(key));
        return done(s);
      });
    }
    const cs = p.chunkSize;
    let full = Math.floor((p.size - bufLen) / cs); // chunks stored whole
    let written = p.size;
    let state: 'open' | 'done' = 'open';
    let queue: Promise<unknown> = Promise.resolve();
    const serial = <T>(op: () => Promise<T>): Promise<T> => {
      const run = queue.then(() => {
        if (state !== 'open') throw new Error(`${this.name}: the write of "${key}" is already finished`);
        return op();
      });
      queue = run.catch(() => undefined);
      return run;
    };
    /** Stores the buffer as chunk `full` and the pending size; `advance` when the chunk is whole. */
    const storeTail = async (advance: boolean) => {
      const chunk = buf.slice(0, bufLen);
      const size = full * cs + bufLen;
      await this.db('readwrite', (s) => {
        s.put(chunk, cKey(key, p.gen, full));
        s.put({ ...p, size }, pKey(key));
        return done(s);
      });
      p = { ...p, size };
      if (advance) {
        full++;
        bufLen = 0;
      }
    };
    return {
      get written() {
        return written;
      },
      append: (data) =>
        serial(async () => {
          let o = 0;
          while (o < data.byteLength) {
            const n = Math.min(cs - bufLen, data.byteLength - o);
            buf.set(data.subarray(o, o + n), bufLen);
            bufLen += n;
            o += n;
            written += n;
            if (bufLen === cs) await storeTail(true);
          }
        }),
      flush: () =>
        serial(async () => {
          if (bufLen && p.size !== full * cs + bufLen) await storeTail(false);
        }),
      commit: () =>
        serial(async () => {
          const tail = bufLen ? buf.slice(0, bufLen) : null;
          const meta: Meta = { size: written, modified: Date.now(), gen: p.gen, chunkSize: cs };
          await this.db('readwrite', (s) => {
            if (tail) s.put(tail, cKey(key, p.gen, full));
            const r = s.get(mKey(key));
            r.onsuccess = () => {
              const prev = r.result as Meta | undefined;
              if (prev && prev.gen !== p.gen) s.delete(range(`c:${key}#${prev.gen}:`));
              s.put(meta, mKey(key));
              s.delete(pKey(key));
            };
            return done(s);
          });
          state = 'done';
        }),
      abort: () =>
        serial(async () => {
          state = 'done';
          await this.db('readwrite', (s) => {
            const r = s.get(pKey(key));
            r.onsuccess = () => {
              // Only drop our own write (a newer writer of the key may have replaced it).
              if ((r.result as Pending | undefined)?.gen === p.gen) s.delete(pKey(key));
            };
            s.delete(range(`c:${key}#${p.gen}:`));
            return done(s);
          });
        }),
    };
  }

  async partialSize(key: string): Promise<number> {
    checkKey(key);
    const p = await this.db('readonly', (s) => promisifyRequest<Pending | undefined>(s.get(pKey(key))));
    return p?.size ?? 0;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.db('readwrite', (s) => {
      s.delete(mKey(key));
      s.delete(pKey(key));
      s.delete(range(`c:${key}#`));
      return done(s);
    });
  }

  async list(prefix = ''): Promise<StoredEntry[]> {
    const r = range(mKey(prefix));
    const [keys, metas] = await this.db('readonly', (s) =>
      Promise.all([promisifyRequest(s.getAllKeys(r)), promisifyRequest(s.getAll(r))]),
    );
    return keys.map((k, i) => {
      const m = metas[i] as Meta;
      return { key: String(k).slice(2), size: m.size, modified: m.modified };
    });
  }
}
