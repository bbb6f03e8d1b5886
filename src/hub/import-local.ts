// Local model files into a ByteStore with the same layout and manifest as a Hub download
// (src/hub/hub-client.ts): a folder as ModelFiles (Node: modelFolder(path)) or File objects from a
// directory picker / <input webkitdirectory>. sha256 is computed while copying; quota checked first.

import { MissingFileError, blobModelFiles, type ModelFiles } from '../model/model-files.ts';
import { fileKey, migrate, LAYOUT_VERSION, type ManifestFile, type ModelManifest } from '../storage/layout.ts';
import { writeManifest } from '../storage/model-store.ts';
import type { ByteStore } from '../storage/store.ts';
import { abortError } from './hub-api.ts';
import { checkQuota, defaultEstimate, selectModelFiles, storeFull, type DownloadProgress, type FileProgress, type StorageNumbers } from './hub-client.ts';
import { Sha256 } from './sha256.ts';

export interface ImportOptions {
  /** The name to store it under ("owner/name" shape, e.g. "local/my-model"). */
  repo: string;
  revision?: string;
  select?: (names: { name: string }[]) => { name: string }[];
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  estimate?: (() => Promise<StorageNumbers>) | null;
}

/**
 * Stores local files (a ModelFiles folder, or File objects from a picker) as a cached model, with
 * the same layout and manifest as a download (sha256 computed while copying).
 */
export async function importLocalFiles(store: ByteStore, source: ModelFiles | Iterable<File>, opts: ImportOptions): Promise<ModelManifest> {
  const revision = opts.revision || 'local';
  const files: ModelFiles = typeof (source as ModelFiles).list === 'function' ? (source as ModelFiles) : blobModelFiles(source as Iterable<File>);
  await migrate(store);
  const names = (opts.select ?? selectModelFiles)((await files.list()).map((name) => ({ name }))).map((x) => x.name);
  if (!names.length) throw new MissingFileError('config.json', `${opts.repo} (local files)`, await files.list());
  const sources = await Promise.all(names.map((n) => files.open(n)));
  const size = sources.reduce((n, s) => n + s.size, 0);
  await checkQuota(store, opts.repo, size, opts.estimate === undefined ? defaultEstimate() : opts.estimate);
  const now = Date.now();
  const entries: ManifestFile[] = sources.map((s, i) => ({ name: names[i]!, size: s.size, done: false }));
  const manifest: ModelManifest = { layout: LAYOUT_VERSION, repo: opts.repo, revision, source: 'local', files: entries, complete: false, created: now, updated: now };
  await writeManifest(store, manifest);
  const progress: FileProgress[] = sources.map((s, i) => ({ name: names[i]!, size: s.size, bytes: 0, resumedFrom: 0, fetched: 0, status: 'queued', restarts: 0, requests: 0, rate: 0, eta: null }));
  const emit = (file?: FileProgress) =>
    opts.onProgress?.({
      repo: opts.repo, revision, file, files: progress.map((x) => ({ ...x })),
      total: { size, bytes: progress.reduce((n, x) => n + x.bytes, 0), fetched: 0, rate: 0, eta: null, files: progress.length, filesDone: progress.filter((x) => x.status === 'done').length },
    });
  for (let i = 0; i < sources.length; i++) {
    const src = sources[i]!;
    const fp = progress[i]!;
    const key = fileKey(opts.repo, revision, fp.name);
    const w = await store.writer(key);
    const h = new Sha256();
    fp.status = 'downloading';
    try {
      for (let o = 0; o < src.size; o += 4 << 20) {
        if (opts.signal?.aborted) throw abortError();
        const bytes = await src.read(o, Math.min(4 << 20, src.size - o));
        await w.append(bytes).catch((e) => {
          throw storeFull(e, store, fp.name) ?? e;
        });
        h.update(bytes);
        fp.bytes += bytes.byteLength;
        emit({ ...fp });
      }
      await w.commit();
    } catch (e) {
      await w.abort().catch(() => undefined);
      throw e;
    }
    entries[i]!.sha256 = h.hex();
    entries[i]!.done = true;
    fp.status = 'done';
    emit({ ...fp });
  }
  manifest.complete = true;
  manifest.updated = Date.now();
  await writeManifest(store, manifest);
  return manifest;
}
