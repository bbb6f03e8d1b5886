// Where exports go: a FileSink receives files one after another, each as a name, its size (known
// before the first byte) and its bytes in order. The browser hands one to a zip stream
// (zipSink, below) or a folder picked with the File System Access API; Node writes files
// (src/cli/commands/export.ts); tests keep them in memory (memorySink). No DOM or Node APIs here.
//
// Contract: the producer opens at most one file at a time, writes exactly `size` bytes through
// it, closes it, and never touches a chunk after passing it (the sink may keep it). Each call
// may return a promise; the producer waits for it (backpressure).

import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { concatBytes } from '../util/bytes.ts';

export type Awaitable<T> = T | Promise<T>;

export interface FileWriter {
  write(chunk: Uint8Array): Awaitable<void>;
  close(): Awaitable<void>;
}

export interface FileSink {
  /** Starts the next file; `size` is its exact length in bytes. */
  file(name: string, size: number): Awaitable<FileWriter>;
}

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** Checks the byte count of what is written through `w` (a producer bug becomes a clear error). */
export function countingWriter(name: string, size: number, w: FileWriter): FileWriter {
  let done = 0;
  return {
    async write(chunk) {
      done += chunk.byteLength;
      if (done > size) throw new ExportError(`${name}: ${done} bytes written, more than the ${size} announced`);
      await w.write(chunk);
    },
    async close() {
      if (done !== size) throw new ExportError(`${name}: ${done} bytes written, ${size} announced`);
      await w.close();
    },
  };
}

const WHOLE_FILE_CHUNK = 8 << 20;

/** Writes a whole file (text or bytes) through a sink, in slices of at most 8 MiB. */
export async function writeWholeFile(sink: FileSink, name: string, content: string | Uint8Array): Promise<void> {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  const w = await sink.file(name, bytes.byteLength);
  for (let at = 0; at < bytes.byteLength; at += WHOLE_FILE_CHUNK) await w.write(bytes.subarray(at, at + WHOLE_FILE_CHUNK));
  await w.close();
}

/** Keeps every file in memory (tests, small exports): `files` maps name → bytes. */
export function memorySink(): FileSink & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    file(name, size) {
      if (files.has(name)) throw new ExportError(`${name} written twice`);
      const buf = new Uint8Array(size);
      let at = 0;
      return {
        write(chunk) {
          if (at + chunk.byteLength > size) throw new ExportError(`${name}: more than the ${size} bytes announced`);
          buf.set(chunk, at);
          at += chunk.byteLength;
        },
        close() {
          if (at !== size) throw new ExportError(`${name}: ${at} bytes written, ${size} announced`);
          files.set(name, buf);
        },
      };
    },
  };
}

/** fflate writes no ZIP64 records: a zip must stay under 4 GiB in all. */
export const ZIP_MAX_BYTES = 0xffffffff - 1024 * 1024;

export interface ZipSinkOptions {
  /** Deflate files whose name matches (default: text files: .json, .md, .txt, .csv, .jinja, .model). */
  deflate?: (name: string) => boolean;
  /** Deflate level 0–9 (default 6). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
  /** Modification time written for every entry (default 1980-01-01, so zips are reproducible). */
  mtime?: Date;
}

const TEXT_FILE = /\.(?:json|md|txt|csv|jinja|model|py)$/i;

/**
 * A sink that streams a zip archive: `onData(chunk, final)` receives its bytes as they are produced
 * (and is awaited: a slow consumer slows the producer down); call `finish()` after the last file.
 * Binary files are stored (tensor bytes barely compress), text files deflated. Refuses archives that
 * would pass 4 GiB (no ZIP64): write big merged models to a folder instead.
 */
export function zipSink(
  onData: (chunk: Uint8Array, final: boolean) => Awaitable<void>,
  opts: ZipSinkOptions = {},
): FileSink & { finish(): Promise<void>; readonly bytes: number } {
  const queue: Array<{ chunk: Uint8Array; final: boolean }> = [];
  let failure: Error | null = null;
  let total = 0;
  let open = false;
  const zip = new Zip((err, chunk, final) => {
    if (err) failure = err;
    else {
      total += chunk.byteLength;
      queue.push({ chunk, final });
    }
  });
  const drain = async () => {
    if (failure) throw failure;
    while (queue.length) {
      const { chunk, final } = queue.shift()!;
      await onData(chunk, final);
    }
  };
  const deflate = opts.deflate ?? ((n: string) => TEXT_FILE.test(n));
  const mtime = opts.mtime ?? new Date(1980, 0, 1, 0, 0, 0);
  let announced = 0;
  return {
    get bytes() {
      return total;
    },
    async file(name, size) {
      if (open) throw new ExportError(`zip: ${name} started before the previous file was closed`);
      if (!name || name.startsWith('/') || name.split('/').some((p) => p === '..' || p === '')) {
        throw new ExportError(`zip: ${JSON.stringify(name)} is not a relative file name`);
      }
      announced += size + 2 * (30 + 16 + name.length * 2) + 22;
      if (announced > ZIP_MAX_BYTES) {
        throw new ExportError(`zip: ${name} would take the archive past 4 GiB, which zip files without ZIP64 cannot hold; write to a folder instead`);
      }
      open = true;
      const entry = deflate(name) ? new ZipDeflate(name, { level: opts.level ?? 6 }) : new ZipPassThrough(name);
      entry.mtime = mtime;
      zip.add(entry);
      await drain();
      const w: FileWriter = {
        async write(chunk) {
          entry.push(chunk, false);
          await drain();
        },
        async close() {
          entry.push(new Uint8Array(0), true);
          open = false;
          await drain();
        },
      };
      return countingWriter(name, size, w);
    },
    async finish() {
      if (open) throw new ExportError('zip: finish() called while a file is still open');
      zip.end();
      await drain();
    },
  };
}

/** Collects a zip in memory (small archives: an adapter). */
export function collectZip(opts: ZipSinkOptions = {}): FileSink & { finish(): Promise<Uint8Array> } {
  const parts: Uint8Array[] = [];
  const z = zipSink((c) => void parts.push(c), opts);
  return {
    file: (name, size) => z.file(name, size),
    async finish() {
      await z.finish();
      return concatBytes(parts);
    },
  };
}
