// A fake Origin Private File System for tests in Node (which has none): a root directory of
// files by name, sync access handles and writable streams, every handle call logged, an optional
// storage estimate and a write that fails with QuotaExceededError past a given offset.

import type { DirectoryLike, FileHandleLike, OpfsLike } from './opfs-sink.ts';

export interface FakeFile {
  bytes: Uint8Array;
  locked: boolean;
}

export type Call = { op: 'write'; at: number; n: number } | { op: 'truncate'; size: number } | { op: 'flush' } | { op: 'close' } | { op: 'getFile' };

/** An in-memory OPFS root: files by name, every handle call logged. */
export function fakeOpfs(opts: { sync?: boolean; writable?: boolean; quota?: number; usage?: number; failAt?: number } = {}) {
  const files = new Map<string, FakeFile>();
  const calls: Call[] = [];
  const grow = (f: FakeFile, size: number) => {
    if (size > f.bytes.byteLength) {
      const b = new Uint8Array(size);
      b.set(f.bytes);
      f.bytes = b;
    }
  };
  const handle = (name: string): FileHandleLike => {
    const f = files.get(name)!;
    const h: FileHandleLike = {
      async getFile() {
        if (f.locked) throw Object.assign(new Error('locked'), { name: 'NoModificationAllowedError' });
        calls.push({ op: 'getFile' });
        return new Blob([f.bytes.slice()]);
      },
    };
    if (opts.sync !== false) {
      h.createSyncAccessHandle = async () => {
        f.locked = true;
        return {
          write(buf, { at }) {
            if (opts.failAt !== undefined && at + buf.byteLength > opts.failAt) throw Object.assign(new Error('quota'), { name: 'QuotaExceededError' });
            calls.push({ op: 'write', at, n: buf.byteLength });
            grow(f, at + buf.byteLength);
            f.bytes.set(buf, at);
            return buf.byteLength;
          },
          truncate(size) {
            calls.push({ op: 'truncate', size });
            const b = new Uint8Array(size);
            b.set(f.bytes.subarray(0, size));
            f.bytes = b;
          },
          flush() {
            calls.push({ op: 'flush' });
          },
          close() {
            calls.push({ op: 'close' });
            f.locked = false;
          },
        };
      };
    }
    if (opts.writable !== false) {
      h.createWritable = async () => {
        let at = 0;
        const staged: Uint8Array[] = [];
        return {
          async write(data) {
            calls.push({ op: 'write', at, n: data.byteLength });
            staged.push(data.slice());
            at += data.byteLength;
          },
          async close() {
            calls.push({ op: 'close' });
            const b = new Uint8Array(at);
            let o = 0;
            for (const s of staged) {
              b.set(s, o);
              o += s.byteLength;
            }
            f.bytes = b;
          },
          async abort() {
            calls.push({ op: 'close' });
          },
        };
      };
    }
    return h;
  };
  const dir: DirectoryLike = {
    async getFileHandle(name, o) {
      if (!files.has(name)) {
        if (!o?.create) throw Object.assign(new Error(name), { name: 'NotFoundError' });
        files.set(name, { bytes: new Uint8Array(0), locked: false });
      }
      return handle(name);
    },
    async removeEntry(name) {
      const f = files.get(name);
      if (!f) throw Object.assign(new Error(name), { name: 'NotFoundError' });
      if (f.locked) throw Object.assign(new Error(`${name} is open`), { name: 'NoModificationAllowedError' });
      files.delete(name);
    },
    async *keys() {
      yield* [...files.keys()];
    },
  };
  const opfs: OpfsLike = {
    getDirectory: async () => dir,
    ...(opts.quota !== undefined ? { estimate: async () => ({ quota: opts.quota, usage: opts.usage ?? 0 }) } : {}),
  };
  return { opfs, dir, files, calls };
}
