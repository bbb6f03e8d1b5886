// An in-memory ByteStore (src/storage/store.ts): committed values and unfinished writes in Maps.
// Not persistent; for tests, for paging optimizer state to CPU memory, and as a stand-in where no
// real backend is available. Values are copied in and out, so callers never share bytes with it,
// unless made with `{ share: true }` (no copies: for callers that never modify bytes they gave or got,
// such as the optimizer pager, where the copies would be most of the paging cost).

import type { ByteStore, StoredEntry, ValueWriter } from './store.ts';

interface Entry {
  bytes: Uint8Array;
  modified: number;
}

export class MemoryStore implements ByteStore {
  readonly name: string;
  private readonly values = new Map<string, Entry>();
  private readonly partial = new Map<string, Uint8Array[]>();

  private readonly copy: (b: Uint8Array) => Uint8Array;

  constructor(name = 'memory', opts: { share?: boolean } = {}) {
    this.name = name;
    this.copy = opts.share ? (b) => b : (b) => b.slice();
  }

  async has(key: string): Promise<boolean> {
    return this.values.has(key);
  }

  async stat(key: string): Promise<StoredEntry | undefined> {
    const e = this.values.get(key);
    return e ? { key, size: e.bytes.byteLength, modified: e.modified } : undefined;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const e = this.values.get(key);
    return e ? this.copy(e.bytes) : undefined;
  }

  async read(key: string, offset: number, length: number): Promise<Uint8Array> {
    const e = this.values.get(key);
    if (!e) throw new Error(`${this.name}: no value "${key}"`);
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > e.bytes.byteLength) {
      throw new RangeError(`${this.name}: read of ${length} bytes at ${offset} is outside "${key}" (${e.bytes.byteLength} bytes)`);
    }
    return this.copy(e.bytes.subarray(offset, offset + length));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.values.set(key, { bytes: this.copy(value), modified: Date.now() });
  }

  async writer(key: string, opts: { resume?: boolean } = {}): Promise<ValueWriter> {
    const chunks = opts.resume ? (this.partial.get(key) ?? []) : [];
    this.partial.set(key, chunks);
    let written = chunks.reduce((n, c) => n + c.byteLength, 0);
    let done = false;
    const open = () => {
      if (done) throw new Error(`${this.name}: the write of "${key}" is already finished`);
    };
    return {
      get written() {
        return written;
      },
      append: async (chunk) => {
        open();
        chunks.push(chunk.slice());
        written += chunk.byteLength;
      },
      commit: async () => {
        open();
        done = true;
        const all = new Uint8Array(written);
        let o = 0;
        for (const c of chunks) {
          all.set(c, o);
          o += c.byteLength;
        }
        if (this.partial.get(key) === chunks) this.partial.delete(key);
        this.values.set(key, { bytes: all, modified: Date.now() });
      },
      abort: async () => {
        done = true;
        if (this.partial.get(key) === chunks) this.partial.delete(key);
      },
    };
  }

  async partialSize(key: string): Promise<number> {
    return (this.partial.get(key) ?? []).reduce((n, c) => n + c.byteLength, 0);
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
    this.partial.delete(key);
  }

  async list(prefix = ''): Promise<StoredEntry[]> {
    const out: StoredEntry[] = [];
    for (const [key, e] of this.values) if (key.startsWith(prefix)) out.push({ key, size: e.bytes.byteLength, modified: e.modified });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Total bytes of committed values (for tests and statistics). */
  get bytes(): number {
    let n = 0;
    for (const e of this.values.values()) n += e.bytes.byteLength;
    return n;
  }
}
