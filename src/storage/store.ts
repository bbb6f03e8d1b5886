// The storage interface of the engine: a byte store with string keys, the same in the browser
// (IndexedDB, src/storage/idb-store.ts) and in Node (a cache folder, src/node/fs-store.ts).
// Large values (model shards, optimizer pages) are written and read in chunks so nothing needs
// a whole multi-GB value in memory; `put` of a whole value is the small-value convenience.
// Keys are '/'-separated paths, e.g. "models/<repo>@<rev>/model.safetensors" (see the layout in
// src/storage/layout.ts). A write becomes visible only when complete (commit), so a reader
// never sees half a value, and a crash mid-write leaves the previous value intact.

export const STORE_VERSION = 1;

export interface StoredEntry {
  key: string;
  size: number;
  /** ms since epoch of the last commit. */
  modified: number;
}

/** An in-progress write of one value; nothing is visible under `key` until commit(). */
export interface ValueWriter {
  /** Bytes appended so far (including those already present when resuming). */
  readonly written: number;
  append(chunk: Uint8Array): Promise<void>;
  /**
   * Makes the bytes appended so far survive a crash or reload, so a later
   * `writer(key, {resume: true})` continues after them. Backends that buffer appends (IndexedDB
   * writes whole chunks) implement it; where it is absent, appended bytes are kept at once.
   */
  flush?(): Promise<void>;
  /** Makes the value visible under its key, replacing any previous value atomically. */
  commit(): Promise<void>;
  /** Drops the partial value. */
  abort(): Promise<void>;
}

export interface ByteStore {
  /** A short description for messages, e.g. "IndexedDB qlora-studio" or "/root/.cache/qlora". */
  readonly name: string;
  has(key: string): Promise<boolean>;
  /** Size and time of a committed value, or undefined. */
  stat(key: string): Promise<StoredEntry | undefined>;
  /** The whole committed value, or undefined. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Bytes [offset, offset+length) of a committed value (bounds-checked). */
  read(key: string, offset: number, length: number): Promise<Uint8Array>;
  /** Writes a whole small value (atomic). */
  put(key: string, value: Uint8Array): Promise<void>;
  /**
   * Starts writing `key`. With `resume: true` an unfinished earlier write of the same key is
   * continued (its `written` bytes are kept), which is how interrupted downloads resume.
   */
  writer(key: string, opts?: { resume?: boolean }): Promise<ValueWriter>;
  /** Bytes of an unfinished write of `key` that a resumed writer would keep (0 when none). */
  partialSize(key: string): Promise<number>;
  /** Removes the committed value and any unfinished write of `key` (no error when absent). */
  delete(key: string): Promise<void>;
  /** Committed entries whose key starts with `prefix`. */
  list(prefix?: string): Promise<StoredEntry[]>;
}
