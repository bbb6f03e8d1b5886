// A model folder abstraction (config.json, tokenizer files, safetensors shards) and in-memory /
// Blob implementations for tests and the browser. The Node implementation is src/node/model-folder.ts.

import { blobSource, bytesSource, type ByteSource } from '../formats/byte-source.ts';

export interface ModelFiles {
  /** File names in the folder (relative, '/'-separated). */
  list(): Promise<string[]>;
  /** Random access to one file; rejects naming the file when it is absent. */
  open(name: string): Promise<ByteSource>;
  /** A whole file as UTF-8 text. */
  text(name: string): Promise<string>;
}

export class MissingFileError extends Error {
  constructor(readonly file: string, readonly where: string, available: readonly string[]) {
    const shown = available.slice(0, 20).join(', ');
    super(`${where}: no file ${JSON.stringify(file)} (has ${available.length ? shown + (available.length > 20 ? ', …' : '') : 'no files'})`);
    this.name = 'MissingFileError';
  }
}

/** In-memory files: bytes, or strings (stored as UTF-8). */
export function memoryModelFiles(
  entries: ReadonlyMap<string, Uint8Array | string> | Readonly<Record<string, Uint8Array | string>>,
  where = 'memory',
): ModelFiles {
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>();
  const it = entries instanceof Map ? entries.entries() : Object.entries(entries);
  for (const [k, v] of it) files.set(k, typeof v === 'string' ? enc.encode(v) : v);
  const get = (name: string) => {
    const b = files.get(name);
    if (!b) throw new MissingFileError(name, where, [...files.keys()]);
    return b;
  };
  return {
    list: async () => [...files.keys()],
    open: async (name) => bytesSource(get(name), name),
    text: async (name) => new TextDecoder().decode(get(name)),
  };
}

/** Files picked in the browser (File objects; `webkitRelativePath` folders are flattened to base names). */
export function blobModelFiles(blobs: Iterable<File> | ReadonlyMap<string, Blob>, where = 'selected files'): ModelFiles {
  const files = new Map<string, Blob>();
  if (blobs instanceof Map) for (const [k, v] of blobs) files.set(k, v);
  else for (const f of blobs as Iterable<File>) files.set(f.name, f);
  const get = (name: string) => {
    const b = files.get(name);
    if (!b) throw new MissingFileError(name, where, [...files.keys()]);
    return b;
  };
  return {
    list: async () => [...files.keys()],
    open: async (name) => blobSource(get(name), name),
    text: async (name) => get(name).text(),
  };
}
