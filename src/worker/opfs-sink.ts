// Export files streamed to disk in the browser's Origin Private File System (OPFS), so a large
// export (the merged model zip) never sits whole in the worker's memory: each chunk the zip stream
// produces is written at its offset as it comes (a sync access handle in the dedicated worker,
// else a writable stream), then the page gets a disk-backed File (fileHandle.getFile()) that
// structured clone passes without copying, and downloads it through an object URL.
//
// Temp files are named qlora-export-<time>-<random>-<download name>. Starting an export removes
// the older ones (a file locked by another tab's open handle is left alone); the file just handed
// to the page stays until the next export starts, since the page may still be downloading it.
//
// OPFS is reached through the small structural interfaces below (the worker passes
// navigator.storage; tests pass fakes), so this file needs no DOM types at run time.

import { zipSink, type FileSink, type ZipSinkOptions } from '../export/sink.ts';

export interface SyncAccessHandleLike {
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

export interface WritableLike {
  write(data: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

export interface FileHandleLike {
  createSyncAccessHandle?: () => Promise<SyncAccessHandleLike>;
  createWritable?: (options?: { keepExistingData?: boolean }) => Promise<WritableLike>;
  getFile(): Promise<Blob>;
}

export interface DirectoryLike {
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandleLike>;
  removeEntry(name: string): Promise<void>;
  keys(): AsyncIterable<string>;
}

/** navigator.storage as far as exports use it. */
export interface OpfsLike {
  getDirectory(): Promise<DirectoryLike>;
  estimate?(): Promise<{ quota?: number; usage?: number }>;
}

/** The OPFS entry point of a StorageManager, or null when this browser has no OPFS. */
export function opfsOf(storage: unknown): OpfsLike | null {
  const s = storage as Partial<OpfsLike> | null | undefined;
  return s && typeof s.getDirectory === 'function' ? (s as OpfsLike) : null;
}

export const EXPORT_PREFIX = 'qlora-export-';

export type DiskErrorCode = 'unavailable' | 'quota' | 'write';

/** OPFS cannot take the export (missing pieces, disk quota short, a failed write), in words. */
export class ExportDiskError extends Error {
  constructor(
    readonly code: DiskErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExportDiskError';
  }
}

const MiB = 1024 * 1024;
const size = (n: number) => (n >= 1024 * MiB ? `${(n / (1024 * MiB)).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`);

/** A temp file being written: chunks in order, then the disk-backed File (or abort: removed). */
export interface DiskFile {
  /** The OPFS entry name. */
  readonly name: string;
  /** 'sync': a FileSystemSyncAccessHandle (dedicated workers); 'writable': createWritable(). */
  readonly mode: 'sync' | 'writable';
  /** Bytes written so far. */
  readonly bytes: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Truncates to the bytes written, closes, and returns the file (disk-backed). */
  finish(): Promise<Blob>;
  /** Closes and removes the partial file; never throws. */
  abort(): Promise<void>;
}

function isQuota(e: unknown): boolean {
  return (e as { name?: string })?.name === 'QuotaExceededError';
}

function writeError(e: unknown, written: number): ExportDiskError {
  if (isQuota(e)) {
    return new ExportDiskError('quota', `The disk is full or this site's storage quota is used up (${size(written)} of the export were written). Free space (delete cached models or runs in the Model panel) and build it again.`);
  }
  return new ExportDiskError('write', `Writing the export to the browser's private file system failed after ${size(written)}: ${(e as Error)?.message ?? String(e)}`);
}

/** Opens `name` in `dir` (created, emptied) for writing: a sync access handle when there is one. */
export async function createDiskFile(dir: DirectoryLike, name: string): Promise<DiskFile> {
  const fh = await dir.getFileHandle(name, { create: true });
  let at = 0;
  let closed = false;
  const remove = async () => {
    await dir.removeEntry(name).catch(() => undefined);
  };
  let h: SyncAccessHandleLike | null = null;
  if (typeof fh.createSyncAccessHandle === 'function') {
    try {
      h = await fh.createSyncAccessHandle();
    } catch (e) {
      // Not allowed in this kind of worker: stream instead, when the browser can.
      if (typeof fh.createWritable !== 'function') {
        await remove();
        throw new ExportDiskError('unavailable', `The browser's private file system refused to open the export file: ${(e as Error)?.message ?? String(e)}`);
      }
    }
  }
  if (h) {
    h.truncate(0);
    const close = () => {
      if (!closed) {
        closed = true;
        h.close();
      }
    };
    return {
      name,
      mode: 'sync',
      get bytes() {
        return at;
      },
      async write(chunk) {
        if (closed) throw new ExportDiskError('write', `${name} is closed`);
        let n: number;
        try {
          n = h.write(chunk, { at });
        } catch (e) {
          throw writeError(e, at);
        }
        if (n !== chunk.byteLength) throw writeError(new Error(`${n} of ${chunk.byteLength} bytes written at offset ${at}`), at);
        at += n;
      },
      async finish() {
        try {
          h.truncate(at);
          h.flush();
        } catch (e) {
          close();
          throw writeError(e, at);
        }
        close();
        return fh.getFile();
      },
      async abort() {
        try {
          close();
        } catch {
          // closing a broken handle: nothing more to do
        }
        await remove();
      },
    };
  }
  if (typeof fh.createWritable === 'function') {
    const w = await fh.createWritable({ keepExistingData: false });
    return {
      name,
      mode: 'writable',
      get bytes() {
        return at;
      },
      async write(chunk) {
        if (closed) throw new ExportDiskError('write', `${name} is closed`);
        try {
          await w.write(chunk);
        } catch (e) {
          throw writeError(e, at);
        }
        at += chunk.byteLength;
      },
      async finish() {
        closed = true;
        try {
          await w.close();
        } catch (e) {
          throw writeError(e, at);
        }
        return fh.getFile();
      },
      async abort() {
        if (!closed) {
          closed = true;
          await w.abort().catch(() => undefined);
        }
        await remove();
      },
    };
  }
  await remove();
  throw new ExportDiskError('unavailable', "This browser's private file system cannot write files here (no sync access handle and no writable stream).");
}

/** Removes temp export files other than `keep` (a file another tab holds open is skipped). */
export async function removeOldExports(dir: DirectoryLike, keep: readonly string[] = []): Promise<string[]> {
  const old: string[] = [];
  for await (const name of dir.keys()) if (name.startsWith(EXPORT_PREFIX) && !keep.includes(name)) old.push(name);
  const removed: string[] = [];
  for (const name of old) {
    try {
      await dir.removeEntry(name);
      removed.push(name);
    } catch {
      // in use (another tab's export being written): it goes next time
    }
  }
  return removed;
}

/** A unique temp file name for a download called `download`. */
export function exportTempName(download: string, now = Date.now(), random = Math.random()): string {
  const safe = download.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/\.{2,}/g, '.').slice(0, 120) || 'export';
  return `${EXPORT_PREFIX}${now.toString(36)}-${Math.floor(random * 2 ** 32).toString(36).padStart(7, '0')}-${safe}`;
}

export interface OpenExportOptions {
  /** The download's file name (part of the temp file's name). */
  download: string;
  /** The export's expected size in bytes (an upper bound), checked against the storage estimate. */
  expectedBytes?: number;
}

/**
 * Starts a temp export file in OPFS: removes older temp exports, checks the quota against
 * `expectedBytes`, opens the new file. Throws an ExportDiskError with a clear message when OPFS
 * is unusable or the space is short.
 */
export async function openExportFile(opfs: OpfsLike, opts: OpenExportOptions): Promise<DiskFile> {
  let dir: DirectoryLike;
  try {
    dir = await opfs.getDirectory();
  } catch (e) {
    throw new ExportDiskError('unavailable', `The browser's private file system (OPFS) is not available here (${(e as Error)?.message ?? String(e)}); a private window may block it.`);
  }
  await removeOldExports(dir).catch(() => undefined);
  const need = opts.expectedBytes;
  if (need !== undefined && typeof opfs.estimate === 'function') {
    const est = await opfs.estimate().catch(() => null);
    if (est && typeof est.quota === 'number' && typeof est.usage === 'number') {
      const free = Math.max(0, est.quota - est.usage);
      if (need > free) {
        throw new ExportDiskError(
          'quota',
          `Not enough disk space for this export: it needs about ${size(need)}, and the browser allows this site ${size(free)} more (${size(est.usage)} of ${size(est.quota)} used). Free space (delete cached models or runs in the Model panel) or export the adapter alone.`,
        );
      }
    }
  }
  try {
    return await createDiskFile(dir, exportTempName(opts.download));
  } catch (e) {
    if (e instanceof ExportDiskError) throw e;
    throw new ExportDiskError('unavailable', `The export file could not be created in the browser's private file system: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** A zip stream written into `file` chunk by chunk (each write awaited); finish() gives the File. */
export function diskZipSink(file: DiskFile, opts: ZipSinkOptions = {}): FileSink & { finish(): Promise<Blob> } {
  const z = zipSink((chunk) => file.write(chunk), opts);
  return {
    file: (name, bytes) => z.file(name, bytes),
    async finish() {
      await z.finish();
      return file.finish();
    },
  };
}
