// Cached models in any ByteStore (layout in ./layout.ts): manifests, a ModelFiles view so the model
// loader reads straight from IndexedDB or the Node cache folder, the cache listing with sizes, and
// deletion of a model (its files, unfinished downloads and manifest).

import type { ByteSource } from '../formats/byte-source.ts';
import { MissingFileError, type ModelFiles } from '../model/model-files.ts';
import { fileKey, manifestKey, migrate, modelPrefix, MODELS_PREFIX, parseManifestKey, type DerivedQuantization, type ModelManifest } from './layout.ts';
import type { ByteStore } from './store.ts';

export async function readManifest(store: ByteStore, repo: string, revision: string): Promise<ModelManifest | undefined> {
  const raw = await store.get(manifestKey(repo, revision));
  if (!raw) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(raw)) as ModelManifest;
  } catch {
    throw new Error(`${store.name}: the manifest of ${repo}@${revision} is unreadable; remove the model and download it again`);
  }
}

export async function writeManifest(store: ByteStore, m: ModelManifest): Promise<void> {
  await store.put(manifestKey(m.repo, m.revision), new TextEncoder().encode(JSON.stringify(m, null, 1) + '\n'));
}

/** A ByteSource over a committed value of `store`. */
export async function storedSource(store: ByteStore, key: string, name = key): Promise<ByteSource> {
  const st = await store.stat(key);
  if (!st) throw new Error(`${store.name}: no value "${key}"`);
  return { size: st.size, name, read: (offset, length) => store.read(key, offset, length) };
}

/**
 * The files of a completely stored model as ModelFiles (what loadGpuModel and loadModel read).
 * Throws naming the model when it is absent or its download is unfinished.
 */
export async function openStoredModel(store: ByteStore, repo: string, revision = 'main'): Promise<ModelFiles> {
  await migrate(store);
  const m = await readManifest(store, repo, revision);
  const where = `${repo}@${revision} in ${store.name}`;
  if (!m) throw new Error(`${where}: not in the cache (download it first)`);
  if (!m.complete) {
    const done = m.files.filter((f) => f.done).length;
    throw new Error(`${where}: the download is unfinished (${done} of ${m.files.length} files); download it again to resume`);
  }
  const names = m.files.map((f) => f.name);
  const key = (name: string) => {
    if (!names.includes(name)) throw new MissingFileError(name, where, names);
    return fileKey(repo, revision, name);
  };
  return {
    list: async () => [...names],
    open: async (name) => storedSource(store, key(name), name),
    text: async (name) => {
      const bytes = await store.get(key(name));
      if (!bytes) throw new MissingFileError(name, where, names);
      return new TextDecoder().decode(bytes);
    },
  };
}

export interface CachedModel {
  repo: string;
  revision: string;
  commit?: string;
  source: 'hub' | 'local';
  complete: boolean;
  files: number;
  filesDone: number;
  /** Bytes of stored files (committed). */
  bytes: number;
  /** Bytes of unfinished downloads (resumable). */
  partialBytes: number;
  /** Total size of all files when known. */
  size: number | null;
  updated: number;
  /** The key prefix of the model (for FsStore: a folder under the cache root). */
  prefix: string;
  /** Set when this entry is a 4-bit model quantized from another revision while downloading. */
  quantized?: DerivedQuantization;
}

/** Every model in the store (complete or not), sorted by repo and revision. */
export async function listCachedModels(store: ByteStore): Promise<CachedModel[]> {
  await migrate(store);
  const entries = await store.list(MODELS_PREFIX);
  const out: CachedModel[] = [];
  for (const e of entries) {
    const id = parseManifestKey(e.key);
    if (!id) continue;
    const m = await readManifest(store, id.repo, id.revision).catch(() => undefined);
    if (!m) continue;
    const prefix = modelPrefix(id.repo, id.revision);
    const stored = new Map(entries.filter((x) => x.key.startsWith(prefix + 'files/')).map((x) => [x.key, x.size]));
    let bytes = 0;
    let partialBytes = 0;
    for (const f of m.files) {
      const k = fileKey(id.repo, id.revision, f.name);
      if (f.done && stored.has(k)) bytes += stored.get(k)!;
      else partialBytes += await store.partialSize(k);
    }
    const sizes = m.files.map((f) => f.size);
    out.push({
      repo: m.repo,
      revision: m.revision,
      commit: m.commit,
      source: m.source,
      complete: m.complete,
      files: m.files.length,
      filesDone: m.files.filter((f) => f.done).length,
      bytes,
      partialBytes,
      size: sizes.every((s) => s !== null) ? sizes.reduce((a: number, b) => a + b!, 0) : null,
      updated: m.updated,
      prefix,
      ...(m.quantized ? { quantized: m.quantized } : {}),
    });
  }
  return out.sort((a, b) => (a.repo === b.repo ? (a.revision < b.revision ? -1 : 1) : a.repo < b.repo ? -1 : 1));
}

/** The cached model for `repo` (`revision` given, else "main", else the newest complete one). */
export async function findCachedModel(store: ByteStore, repo: string, revision?: string): Promise<CachedModel | undefined> {
  const all = (await listCachedModels(store)).filter((m) => m.repo === repo);
  if (revision) return all.find((m) => m.revision === revision);
  return all.find((m) => m.revision === 'main' && m.complete) ?? all.filter((m) => m.complete).sort((a, b) => b.updated - a.updated)[0] ?? all[0];
}

/**
 * Deletes a cached model: every revision of `repo`, or only `revision`. Files (and unfinished
 * downloads) go first and the manifest last, so an interrupted delete is still listed.
 * Returns what was removed.
 */
export async function deleteModel(store: ByteStore, repo: string, revision?: string): Promise<CachedModel[]> {
  const gone = (await listCachedModels(store)).filter((m) => m.repo === repo && (revision === undefined || m.revision === revision));
  for (const m of gone) {
    const manifest = await readManifest(store, m.repo, m.revision);
    for (const f of manifest?.files ?? []) await store.delete(fileKey(m.repo, m.revision, f.name));
    const mk = manifestKey(m.repo, m.revision);
    for (const e of await store.list(m.prefix)) if (e.key !== mk) await store.delete(e.key);
    await store.delete(mk);
  }
  return gone;
}
