// Shared by the e2e download page and its worker: the IndexedDB store they both open (small chunks,
// so a ~1 MB shard spans many) and plain-data wrappers around the engine's downloader.

import { downloadModel, type DownloadOptions } from '../../src/hub/hub-client.ts';
import { Sha256 } from '../../src/hub/sha256.ts';
import { IdbStore } from '../../src/storage/idb-store.ts';
import { fileKey } from '../../src/storage/layout.ts';

export const CHUNK = 64 * 1024;
const stores = new Map<string, IdbStore>();

/** The store of database `db` (each test uses its own). */
export function storeOf(db: string): IdbStore {
  let s = stores.get(db);
  if (!s) stores.set(db, (s = new IdbStore({ dbName: db, chunkSize: CHUNK })));
  return s;
}

export type Outcome =
  | { ok: true; fetched: number; resumed: number; restarts: number; files: { name: string; fetched: number; resumedFrom: number }[] }
  | { ok: false; code: string; message: string };

export async function download(db: string, endpoint: string, repo: string, opts: Pick<DownloadOptions, 'retries' | 'stallTimeoutMs' | 'token'> = {}): Promise<Outcome> {
  try {
    const r = await downloadModel(storeOf(db), repo, { endpoint, retryDelayMs: 10, ...opts });
    return { ok: true, fetched: r.fetched, resumed: r.resumed, restarts: r.restarts, files: r.files.map((f) => ({ name: f.name, fetched: f.fetched, resumedFrom: f.resumedFrom })) };
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code ?? 'error', message: (e as Error).message };
  }
}

/** sha256 (hex) and size of a stored file, read back through the store in pieces. */
export async function storedSha(db: string, repo: string, file: string): Promise<{ sha256: string; size: number } | null> {
  const store = storeOf(db);
  const key = fileKey(repo, 'main', file);
  const st = await store.stat(key);
  if (!st) return null;
  const h = new Sha256();
  for (let o = 0; o < st.size; o += 100_000) h.update(await store.read(key, o, Math.min(100_000, st.size - o)));
  return { sha256: h.hex(), size: st.size };
}
