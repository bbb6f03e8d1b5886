// The key layout of a ByteStore (IndexedDB in the browser, the cache folder in Node), versioned:
//
//   version.json                                  {"layout": 1, "created": <ms>}: written on first use
//   v1/models/<repo>@<rev>/manifest.json          ModelManifest (below): file list, sizes, sha256, ETags
//   v1/models/<repo>@<rev>/files/<file>           the model's files, byte for byte as on the Hub
//   v1/runs/<run-id>/...                          training runs and checkpoints (src/train owns it)
//   v1/models/<repo>@<rev>%2B<nf4|fp4>/...        a 4-bit copy made while downloading <repo>@<rev>
//                                                 (revision "<rev>+nf4"; manifest.quantized says so;
//                                                 see src/storage/quantize-on-download.ts)
//
// <repo> is the Hub id ("owner/name" or "name"); <rev> is the revision as asked for ("main", a tag,
// a commit), URI-encoded so "refs/pr/1" stays one segment. Keys are '/'-separated segments; none is
// empty, "." or "..", none ends in ".partial" (the Node store's unfinished writes), and no key holds
// '#', '\' or control characters (the IndexedDB store uses '#' in its chunk keys).
// migrate(store) runs before the layout is used: it writes version.json when absent and refuses a
// store written by a newer layout with a clear error, never deleting anything.

import { STORE_VERSION, type ByteStore } from './store.ts';

export const LAYOUT_VERSION = STORE_VERSION;
export const VERSION_KEY = 'version.json';
export const MODELS_PREFIX = `v${LAYOUT_VERSION}/models/`;
export const RUNS_PREFIX = `v${LAYOUT_VERSION}/runs/`;
const MANIFEST = 'manifest.json';

/** Throws unless `key` follows the key rules above. */
export function checkKey(key: string): void {
  const bad = (why: string): never => {
    throw new Error(`invalid store key ${JSON.stringify(key)}: ${why}`);
  };
  if (typeof key !== 'string' || !key) bad('empty');
  if (key.length > 1024) bad('longer than 1024 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f#\\]/.test(key)) bad("contains '#', '\\' or a control character");
  for (const seg of key.split('/')) {
    if (!seg) bad('empty path segment (leading, trailing or double "/")');
    if (seg === '.' || seg === '..') bad(`"${seg}" segment`);
    if (seg.endsWith('.partial')) bad('segments ending in ".partial" are reserved');
  }
}

/** Throws unless `repo` looks like a Hub repo id: "name" or "owner/name" of [A-Za-z0-9._-]. */
export function checkRepoId(repo: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9._-]+)?$/.test(repo) || repo.split('/').some((s) => s === '.' || s === '..' || s.endsWith('.partial'))) {
    throw new Error(`invalid repo id ${JSON.stringify(repo)}: expected "owner/name" (letters, digits, ".", "_", "-")`);
  }
}

/** `v1/models/<repo>@<rev>/` */
export function modelPrefix(repo: string, revision: string): string {
  checkRepoId(repo);
  if (!revision) throw new Error(`${repo}: empty revision`);
  return `${MODELS_PREFIX}${repo}@${encodeURIComponent(revision)}/`;
}

export function manifestKey(repo: string, revision: string): string {
  return modelPrefix(repo, revision) + MANIFEST;
}

export function fileKey(repo: string, revision: string, file: string): string {
  const key = `${modelPrefix(repo, revision)}files/${file}`;
  checkKey(key);
  return key;
}

/** `v1/runs/<run-id>/` (reserved for training runs and checkpoints). */
export function runPrefix(runId: string): string {
  const p = `${RUNS_PREFIX}${runId}/`;
  checkKey(p + 'x');
  if (runId.includes('/')) throw new Error(`invalid run id ${JSON.stringify(runId)}: contains "/"`);
  return p;
}

/** {repo, revision} of a manifest key, or null when `key` is not one. */
export function parseManifestKey(key: string): { repo: string; revision: string } | null {
  if (!key.startsWith(MODELS_PREFIX) || !key.endsWith('/' + MANIFEST)) return null;
  const dir = key.slice(MODELS_PREFIX.length, -MANIFEST.length - 1);
  const at = dir.lastIndexOf('@');
  if (at <= 0) return null;
  return { repo: dir.slice(0, at), revision: decodeURIComponent(dir.slice(at + 1)) };
}

/** One file of a cached model. */
export interface ManifestFile {
  /** Name inside the repo ('/'-separated). */
  name: string;
  /** Size in bytes; null when the source did not say. */
  size: number | null;
  /** SHA-256 (hex): the Hub's LFS sha256, or computed while storing. */
  sha256?: string;
  /** The Hub's git blob id: it changes when the file changes. */
  blobId?: string;
  /** Strong ETag of the download (sent as If-Range when resuming). */
  etag?: string;
  /** Stored completely and verified. */
  done: boolean;
}

/** How a derived (quantized) model entry was made. */
export interface DerivedQuantization {
  /** The revision it was made from (its own revision is `${from}+${type}`). */
  from: string;
  /** The commit of `from` when the source said. */
  fromCommit?: string;
  type: 'nf4' | 'fp4';
  blocksize: number;
  doubleQuant: boolean;
}

export interface ModelManifest {
  layout: number;
  repo: string;
  /** The revision as asked for ("main", a tag or a commit). */
  revision: string;
  /** The commit it resolved to, when the source said. */
  commit?: string;
  source: 'hub' | 'local';
  /** The Hub endpoint it came from (never a token). */
  endpoint?: string;
  files: ManifestFile[];
  /** Every file done. */
  complete: boolean;
  /** Set on a 4-bit model derived from another cached revision (src/storage/quantize-on-download.ts). */
  quantized?: DerivedQuantization;
  created: number;
  updated: number;
}

export class StoreVersionError extends Error {
  constructor(readonly found: number, where: string) {
    super(
      `${where} was written by a newer QLoRA Studio (storage layout v${found}); this version reads layout v${LAYOUT_VERSION}. ` +
        'Update QLoRA Studio, or use another cache (in Node: set QLORA_CACHE). Nothing was changed.',
    );
    this.name = 'StoreVersionError';
  }
}

const checked = new WeakMap<ByteStore, Promise<number>>();

/**
 * Prepares `store` for this layout: writes version.json when absent, runs migrations from older
 * layouts (none yet: v1 is the first), and throws StoreVersionError for a newer layout. Never
 * deletes anything. Cheap to call repeatedly (once per store object).
 */
export function migrate(store: ByteStore): Promise<number> {
  let p = checked.get(store);
  if (!p) {
    p = migrateOnce(store);
    checked.set(store, p);
    p.catch(() => checked.delete(store));
  }
  return p;
}

async function migrateOnce(store: ByteStore): Promise<number> {
  const raw = await store.get(VERSION_KEY);
  if (!raw) {
    await store.put(VERSION_KEY, new TextEncoder().encode(JSON.stringify({ layout: LAYOUT_VERSION, created: Date.now() }) + '\n'));
    return LAYOUT_VERSION;
  }
  let found: unknown;
  try {
    found = (JSON.parse(new TextDecoder().decode(raw)) as { layout?: unknown }).layout;
  } catch {
    found = undefined;
  }
  if (typeof found !== 'number' || !Number.isInteger(found) || found < 1) {
    throw new Error(`${store.name}: ${VERSION_KEY} is unreadable (not {"layout": <n>}); not touching this store`);
  }
  if (found > LAYOUT_VERSION) throw new StoreVersionError(found, store.name);
  // found < LAYOUT_VERSION: migrations from older layouts go here, each rewriting version.json last.
  return found;
}
