// Downloads a Hub model into a ByteStore (engine code: fetch + the store only): files stream
// straight into store writers, several in parallel, with progress per file and in total (bytes,
// rate, ETA), cancel through an AbortSignal, and RESUME: an unfinished write continues with
// `Range: bytes=N-` (+ If-Range with the ETag), checked against 206 + Content-Range; a 200 instead
// restarts the file from 0 (counted). Network errors, 429 and 5xx are retried with backoff (bounded;
// a retry that made progress resets the count). sha256 is checked before commit when the Hub gives
// it (after commit, by re-reading, for a file resumed from an earlier session). Storage quota is
// checked first and persistent storage requested. Local files go the same way: ./import-local.ts.

import { fileKey, migrate, LAYOUT_VERSION, type ManifestFile, type ModelManifest } from '../storage/layout.ts';
import { readManifest, writeManifest } from '../storage/model-store.ts';
import type { ByteStore, ValueWriter } from '../storage/store.ts';
import {
  abortError, authHeaders, backoffMs, HubError, httpError, networkError, normalizeEndpoint, resolveRepo, resolveUrl,
  scrubError, sleep, type ErrorContext, type HubAccess, type HubFile,
} from './hub-api.ts';
import { Sha256 } from './sha256.ts';

export { HubError, resolveRepo, type HubFile, type RepoInfo } from './hub-api.ts';

export interface FileProgress {
  name: string;
  size: number | null;
  /** Bytes stored so far (resumed ones included). */
  bytes: number;
  /** Bytes found from an earlier session when this one started. */
  resumedFrom: number;
  /** Bytes received over the network in this session (re-fetched ones included). */
  fetched: number;
  status: 'queued' | 'cached' | 'downloading' | 'retrying' | 'verifying' | 'done' | 'failed';
  /** Restarts from byte 0 (Range ignored, file changed on the server, checksum mismatch). */
  restarts: number;
  requests: number;
  /** Bytes per second (recent). */
  rate: number;
  /** Seconds left at the current rate, when known. */
  eta: number | null;
  error?: string;
}

export interface TotalProgress {
  size: number | null;
  bytes: number;
  fetched: number;
  rate: number;
  eta: number | null;
  files: number;
  filesDone: number;
}

export interface DownloadProgress {
  repo: string;
  revision: string;
  /** The file this event is about (absent for whole-download events). */
  file?: FileProgress;
  files: FileProgress[];
  total: TotalProgress;
}

export interface StorageNumbers {
  quota?: number;
  usage?: number;
}

export interface DownloadOptions extends HubAccess {
  revision?: string;
  /** Which of the repo's files to fetch (default selectModelFiles). */
  select?: (files: HubFile[]) => HubFile[];
  /** Files fetched at once (default 3). */
  parallel?: number;
  onProgress?: (p: DownloadProgress) => void;
  /** Least time between byte-progress events (default 200 ms; status changes always report). */
  progressIntervalMs?: number;
  /** Free-space numbers (default navigator.storage.estimate() when there is one; null: no check). */
  estimate?: (() => Promise<StorageNumbers>) | null;
  /**
   * Send If-Range with resumes (default: outside browsers). Either way a 206 whose ETag differs from
   * the stored one restarts the file.
   */
  ifRange?: boolean;
  /** A request that sends no byte for this long is dropped and retried (default 60 s). */
  stallTimeoutMs?: number;
  /** Asks to keep the store under storage pressure (default navigator.storage.persist()). */
  persist?: (() => Promise<boolean>) | null;
  /**
   * Called (and awaited) when a file of this session has been committed, verified and marked done
   * in the manifest, e.g. to quantize a shard as it lands (src/storage/quantize-on-download.ts).
   * Files found complete from an earlier session ('cached') are not reported. A rejection fails the
   * download like a network error would (the file itself stays done).
   */
  onFileDone?: (file: ManifestFile) => void | Promise<void>;
}

export interface DownloadResult {
  repo: string;
  revision: string;
  commit?: string;
  store: string;
  manifest: ModelManifest;
  files: FileProgress[];
  /** Bytes received over the network (re-fetched ones included). */
  fetched: number;
  /** Bytes kept from earlier sessions. */
  resumed: number;
  restarts: number;
  /** navigator.storage.persist()'s answer, or null when not asked. */
  persisted: boolean | null;
  elapsedMs: number;
}

const MODEL_SHARD = /^model(-\d+-of-\d+)?\.safetensors$/;

/** The files a model needs: top-level configs, tokenizer files, safetensors weights, card/licence. */
export function selectModelFiles<T extends { name: string }>(files: T[]): T[] {
  const wanted = files.filter((f) => !f.name.includes('/') && (/\.(json|safetensors|txt|model|md|jinja)$/i.test(f.name) || /^LICEN[CS]E/i.test(f.name)));
  // Mistral-style repos also hold consolidated.safetensors: the same weights in another layout.
  const shards = wanted.some((f) => MODEL_SHARD.test(f.name));
  return wanted.filter((f) => !(shards && f.name.endsWith('.safetensors') && !MODEL_SHARD.test(f.name)));
}

const fmt = (n: number) => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return i ? `${v.toFixed(1)} ${u[i]}` : `${n} B`;
};

export function defaultEstimate(): (() => Promise<StorageNumbers>) | null {
  const s = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  return s?.estimate ? () => s.estimate() : null;
}

function defaultPersist(): (() => Promise<boolean>) | null {
  const s = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
  return s?.persist ? () => s.persist() : null;
}

/** Fails early, with the numbers, when `needed` more bytes won't fit. */
export async function checkQuota(store: ByteStore, what: string, needed: number, estimate: (() => Promise<StorageNumbers>) | null): Promise<void> {
  if (!estimate || needed <= 0) return;
  const { quota, usage } = await estimate();
  if (quota === undefined) return;
  const free = Math.max(0, quota - (usage ?? 0));
  if (needed > free) {
    throw new HubError(
      `not enough storage for ${what}: it needs ${fmt(needed)} (${needed} bytes) more but only ${fmt(free)} (${free} bytes) is free ` +
        `in ${store.name} (quota ${fmt(quota)}, in use ${fmt(usage ?? 0)}). Nothing was downloaded and cached models are untouched; ` +
        'delete cached models you no longer need to make room.',
      'quota',
    );
  }
}

/** A sliding-window byte rate. */
class Rate {
  private samples: [number, number][] = [];
  add(total: number, t = Date.now()): void {
    const s = this.samples;
    if (s.length >= 2 && t - s[s.length - 2]![0] < 100) s[s.length - 1] = [t, total]; // ≥ 100 ms apart
    else s.push([t, total]);
    while (this.samples.length > 2 && t - this.samples[1]![0] > 5000) this.samples.shift();
  }
  get(): number {
    const s = this.samples;
    if (s.length < 2) return 0;
    const dt = (s[s.length - 1]![0] - s[0]![0]) / 1000;
    return dt > 0.05 ? (s[s.length - 1]![1] - s[0]![1]) / dt : 0;
  }
}

const isBrowser = () => typeof (globalThis as { document?: unknown }).document !== 'undefined' || typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined';

const strongEtag = (v: string | null) => (v && !v.startsWith('W/') ? v : undefined);

function parseContentRange(v: string | null): { start: number; end: number; total: number | null } | { total: number | null; unsatisfied: true } | null {
  if (!v) return null;
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(v.trim());
  if (m) return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
  const u = /^bytes\s+\*\/(\d+)$/i.exec(v.trim());
  return u ? { total: Number(u[1]), unsatisfied: true } : null;
}

export function storeFull(e: unknown, store: ByteStore, file: string): HubError | null {
  const err = e as { name?: string; code?: string; message?: string };
  if (err?.name !== 'QuotaExceededError' && err?.code !== 'ENOSPC') return null;
  return new HubError(`${file}: ${store.name} is full (${err.message ?? err.name}); delete cached models to make room, then download again to resume`, 'quota', { file });
}

/** SHA-256 of a committed value, read back in 4 MiB pieces. */
async function hashStored(store: ByteStore, key: string, size: number): Promise<string> {
  const h = new Sha256();
  for (let o = 0; o < size; o += 4 << 20) h.update(await store.read(key, o, Math.min(4 << 20, size - o)));
  return h.hex();
}

interface Planned {
  f: HubFile;
  fp: FileProgress;
  entry: ManifestFile;
  rate: Rate;
}

/** Downloads `repo` (selected files) into `store`; resumes whatever an earlier session left. */
export async function downloadModel(store: ByteStore, repo: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  try {
    return await download(store, repo, opts);
  } catch (e) {
    throw scrubError(e, opts.token);
  }
}

async function download(store: ByteStore, repo: string, opts: DownloadOptions): Promise<DownloadResult> {
  const t0 = Date.now();
  const revision = opts.revision || 'main';
  const endpoint = normalizeEndpoint(opts.endpoint);
  await migrate(store);
  const info = await resolveRepo(repo, { ...opts, revision, endpoint });
  const selected = (opts.select ?? selectModelFiles)(info.files);
  if (!selected.length) throw new HubError(`${repo}@${revision}: none of its ${info.files.length} files is a model file (config, tokenizer, safetensors)`, 'not-found');

  // Plan: what is stored already, what an earlier session left, what changed since.
  const old = await readManifest(store, repo, revision).catch(() => undefined);
  const plan: Planned[] = [];
  for (const f of selected) {
    const prev = old?.files.find((x) => x.name === f.name);
    const changed = !!prev && ((!!prev.blobId && !!f.blobId && prev.blobId !== f.blobId) || (prev.size !== null && f.size !== null && prev.size !== f.size) ||
      (!!prev.sha256 && !!f.sha256 && prev.sha256 !== f.sha256));
    const key = fileKey(repo, revision, f.name);
    const st = await store.stat(key);
    const cached = !!prev?.done && !changed && !!st && (f.size === null || st.size === f.size);
    let resumedFrom = cached || changed ? 0 : await store.partialSize(key);
    if (f.size !== null && resumedFrom > f.size) resumedFrom = 0;
    const entry: ManifestFile = { name: f.name, size: f.size, sha256: f.sha256 ?? (cached ? prev?.sha256 : undefined), blobId: f.blobId, done: cached };
    if (!changed && prev?.etag) entry.etag = prev.etag;
    const fp: FileProgress = {
      name: f.name, size: f.size ?? (cached ? st!.size : null), bytes: cached ? st!.size : resumedFrom, resumedFrom: cached ? 0 : resumedFrom,
      fetched: 0, status: cached ? 'cached' : 'queued', restarts: 0, requests: 0, rate: 0, eta: null,
    };
    plan.push({ f, fp, entry, rate: new Rate() });
  }
  const needed = plan.filter((p) => !p.entry.done).reduce((n, p) => n + (p.f.size ?? 0) - p.fp.resumedFrom, 0);
  await checkQuota(store, `${repo}@${revision}`, needed, opts.estimate === undefined ? defaultEstimate() : opts.estimate);
  const persistFn = opts.persist === undefined ? defaultPersist() : opts.persist;
  const persisted = persistFn ? await persistFn().catch(() => false) : null;

  // Files the repo no longer lists go; the manifest (complete: false) is written before any byte.
  for (const f of old?.files ?? []) if (!selected.some((s) => s.name === f.name)) await store.delete(fileKey(repo, revision, f.name));
  const now = Date.now();
  const manifest: ModelManifest = {
    layout: LAYOUT_VERSION, repo, revision, commit: info.commit, source: 'hub', endpoint, files: plan.map((p) => p.entry),
    complete: plan.every((p) => p.entry.done), created: old?.created ?? now, updated: now,
  };
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    manifest.updated = Date.now();
    manifest.complete = manifest.files.every((f) => f.done);
    const json = JSON.parse(JSON.stringify(manifest)) as ModelManifest;
    const p = saving.catch(() => undefined).then(() => writeManifest(store, json));
    saving = p;
    return p;
  };
  await save();

  // Progress.
  const files = plan.map((p) => p.fp);
  const totalRate = new Rate();
  let lastEmit = 0;
  const interval = opts.progressIntervalMs ?? 200;
  const emit = (file?: FileProgress, force = false) => {
    if (!opts.onProgress) return;
    const t = Date.now();
    if (!force && t - lastEmit < interval) return;
    lastEmit = t;
    const sizes = files.map((f) => f.size);
    const size = sizes.every((s) => s !== null) ? sizes.reduce((a: number, b) => a + b!, 0) : null;
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    const fetched = files.reduce((n, f) => n + f.fetched, 0);
    totalRate.add(fetched, t);
    const rate = totalRate.get();
    for (const p of plan) {
      p.fp.rate = p.fp.status === 'downloading' ? p.rate.get() : 0;
      p.fp.eta = p.fp.size !== null && p.fp.rate > 0 ? (p.fp.size - p.fp.bytes) / p.fp.rate : null;
    }
    opts.onProgress({
      repo, revision, file: file && { ...file }, files: files.map((f) => ({ ...f })),
      total: { size, bytes, fetched, rate, eta: size !== null && rate > 0 ? (size - bytes) / rate : null, files: files.length, filesDone: files.filter((f) => f.status === 'done' || f.status === 'cached').length },
    });
  };
  emit(undefined, true);

  // Cancel: the caller's signal, or the first failure (the other files stop and keep their bytes).
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) inner.abort();
  const queue = plan.filter((p) => !p.entry.done);
  let firstError: unknown;
  const dl = { store, repo, revision, endpoint, commit: info.commit, opts, signal: inner.signal, save, emit };
  const worker = async () => {
    for (let p = queue.shift(); p && firstError === undefined; p = queue.shift()) {
      try {
        await downloadFile(dl, p);
      } catch (e) {
        p.fp.status = 'failed';
        p.fp.error = scrubError(e, opts.token).message;
        emit(p.fp, true);
        if (firstError === undefined) {
          firstError = opts.signal?.aborted ? abortError() : e;
          inner.abort();
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallel ?? 3, queue.length)) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await save().catch(() => undefined);
  }
  emit(undefined, true);
  if (firstError !== undefined) throw firstError;
  return {
    repo, revision, commit: info.commit, store: store.name, manifest, files: files.map((f) => ({ ...f })),
    fetched: files.reduce((n, f) => n + f.fetched, 0), resumed: files.reduce((n, f) => n + f.resumedFrom, 0),
    restarts: files.reduce((n, f) => n + f.restarts, 0), persisted, elapsedMs: Date.now() - t0,
  };
}

interface Dl {
  store: ByteStore;
  repo: string;
  revision: string;
  endpoint: string;
  commit?: string;
  opts: DownloadOptions;
  signal: AbortSignal;
  save: () => Promise<void>;
  emit: (f?: FileProgress, force?: boolean) => void;
}

/** One file: request, stream into the writer, retry/resume, verify, commit. */
async function downloadFile(dl: Dl, p: Planned): Promise<void> {
  const { store, opts, signal } = dl;
  const { f, fp, entry } = p;
  const key = fileKey(dl.repo, dl.revision, f.name);
  const url = resolveUrl(dl.endpoint, dl.repo, dl.commit ?? dl.revision, f.name);
  const ctx: ErrorContext = { repo: dl.repo, revision: dl.revision, file: f.name, tokenSent: !!opts.token, endpoint: dl.endpoint };
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const retries = opts.retries ?? 5;
  const stallMs = opts.stallTimeoutMs ?? 60_000;
  // If-Range is not CORS-safelisted (a preflight the Hub's CDN may refuse): browsers compare ETags instead.
  const useIfRange = opts.ifRange ?? !isBrowser();
  let writer: ValueWriter = await store.writer(key, { resume: fp.resumedFrom > 0 });
  fp.resumedFrom = fp.bytes = writer.written;
  let hasher: Sha256 | null = writer.written === 0 ? new Sha256() : null;
  let etag = entry.etag;
  let failures = 0;
  fp.status = 'downloading';
  dl.emit(fp, true);

  const restart = async (why: string) => {
    fp.restarts++;
    if (fp.restarts > 3) throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: restarted ${fp.restarts - 1} times (last: ${why}); giving up`, 'http', { file: f.name });
    await writer.abort();
    writer = await store.writer(key);
    hasher = new Sha256();
    fp.bytes = 0;
    etag = undefined;
  };
  const flush = () => (writer.flush ? writer.flush().catch(() => undefined) : Promise.resolve());

  for (;;) {
    if (signal.aborted) {
      await flush();
      throw abortError();
    }
    const start = writer.written;
    let err: HubError | null = null;
    let progressed = false;
    let finished = f.size !== null && start === f.size && start > 0; // all bytes stored, not committed
    if (!finished) {
      const headers: Record<string, string> = { ...authHeaders(opts.token) };
      if (start > 0) {
        headers.Range = `bytes=${start}-`;
        if (etag && useIfRange) headers['If-Range'] = etag;
      }
      // One request, aborted by the caller's signal or when no byte comes for stallMs.
      const req = new AbortController();
      const stop = () => req.abort();
      signal.addEventListener('abort', stop, { once: true });
      let stalled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          stalled = true;
          req.abort();
        }, stallMs);
      };
      arm();
      try {
        fp.requests++;
        let res: Response | null = null;
        try {
          res = await fetchFn(url, { headers, signal: req.signal });
        } catch (e) {
          if (signal.aborted) continue;
          err = networkError(stalled ? new Error(`no answer for ${stallMs / 1000} s`) : e, ctx);
        }
        if (res) {
          const cr = parseContentRange(res.headers.get('content-range'));
          if (res.status === 416 && start > 0) {
            await res.body?.cancel().catch(() => undefined);
            const total = cr?.total ?? null;
            if (total === start && (f.size === null || f.size === start)) finished = true;
            else if (total !== null && f.size !== null && total !== f.size) {
              throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: the server has ${total} bytes but the Hub lists ${f.size}; the connection closed after ${start} of ${f.size} bytes`, 'size', { file: f.name, status: 416 });
            } else {
              await restart('the server refused the resume range (HTTP 416)');
              continue;
            }
          } else if (!res.ok) {
            await res.body?.cancel().catch(() => undefined);
            err = httpError(res, ctx);
            if (!err.retryable) throw err;
          } else if (res.status !== 200 && res.status !== 206) {
            await res.body?.cancel().catch(() => undefined);
            throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: HTTP ${res.status}: unexpected answer to a download`, 'http', { file: f.name, status: res.status });
          } else {
            if (res.status === 206 && !(cr && 'start' in cr && cr.start === start)) {
              await res.body?.cancel().catch(() => undefined);
              await restart(`the server sent another range (${res.headers.get('content-range') ?? 'no Content-Range'}) than bytes=${start}-`);
              continue;
            }
            if (res.status === 200 && start > 0) await restart('the server answered 200 (the whole file) instead of 206 to a resume');
            const total = res.status === 206 && cr ? cr.total : null;
            if (total !== null && f.size !== null && total !== f.size) {
              await res.body?.cancel().catch(() => undefined);
              throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: the server has ${total} bytes but the Hub lists ${f.size}`, 'size', { file: f.name });
            }
            const fresh = strongEtag(res.headers.get('etag'));
            if (res.status === 206 && etag && fresh && fresh !== etag) {
              await res.body?.cancel().catch(() => undefined);
              await restart(`the file changed on the server (ETag ${etag} → ${fresh})`);
              continue;
            }
            if (fresh && fresh !== etag && (res.status === 200 || !etag)) {
              etag = entry.etag = fresh;
              await dl.save();
            }
            const enc = res.headers.get('content-encoding');
            const clRaw = res.headers.get('content-length');
            const cl = clRaw !== null && (!enc || enc === 'identity') ? Number(clRaw) : null;
            const from = writer.written;
            const end = f.size ?? total ?? (cl !== null ? from + cl : null);
            if (end !== null) fp.size = end;
            try {
              if (!res.body) throw new Error('no response body');
              const reader = res.body.getReader();
              for (;;) {
                const { done, value } = await reader.read();
                if (done) break;
                arm();
                if (end !== null && writer.written + value.byteLength > end) {
                  await reader.cancel().catch(() => undefined);
                  throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: the server sent more than the file's ${end} bytes`, 'size', { file: f.name });
                }
                try {
                  await writer.append(value);
                } catch (e) {
                  throw storeFull(e, store, f.name) ?? e;
                }
                hasher?.update(value);
                progressed = true;
                fp.bytes = writer.written;
                fp.fetched += value.byteLength;
                p.rate.add(fp.fetched);
                dl.emit(fp);
              }
              const got = writer.written - from;
              if (cl !== null && got !== cl) err = networkError(new Error(`the body ended after ${got} of its ${cl}-byte Content-Length`), ctx);
              else if (end !== null && writer.written < end) err = networkError(new Error(`the body ended after ${writer.written} of ${end} bytes`), ctx);
              else finished = true;
            } catch (e) {
              if (e instanceof HubError) {
                await flush();
                throw e;
              }
              if (signal.aborted) continue;
              const full = storeFull(e, store, f.name);
              if (full) throw full;
              err = stalled
                ? networkError(new Error(`no data for ${stallMs / 1000} s`), ctx, `stalled after ${writer.written} of ${end ?? '?'} bytes`)
                : networkError(e, ctx, `connection closed after ${writer.written} of ${end ?? '?'} bytes`);
            }
          }
        }
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', stop);
      }
    }
    if (finished) {
      fp.status = 'verifying';
      dl.emit(fp, true);
      if (f.size !== null && writer.written !== f.size) {
        throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: got ${writer.written} bytes, the Hub lists ${f.size}`, 'size', { file: f.name });
      }
      let sha = hasher && hasher.bytes === writer.written ? hasher.hex() : undefined;
      if (sha && f.sha256 && sha !== f.sha256) {
        if (fp.restarts === 0) {
          await restart('sha256 mismatch');
          continue;
        }
        await writer.abort();
        throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: sha256 mismatch (expected ${f.sha256}, got ${sha}); the download was dropped`, 'checksum', { file: f.name });
      }
      const size = writer.written;
      await writer.commit();
      if (!sha && f.sha256) {
        sha = await hashStored(store, key, size);
        if (sha !== f.sha256) {
          await store.delete(key);
          throw new HubError(`${dl.repo}@${dl.revision}: ${f.name}: sha256 mismatch after resuming (expected ${f.sha256}, got ${sha}); the stored copy was removed, download again`, 'checksum', { file: f.name });
        }
      }
      entry.sha256 = f.sha256 ?? sha;
      entry.size = size;
      entry.done = true;
      fp.bytes = fp.size = size;
      fp.status = 'done';
      await dl.save();
      dl.emit(fp, true);
      await opts.onFileDone?.({ ...entry });
      return;
    }
    // A retryable failure: keep every received byte, back off, continue from where we are.
    await flush();
    failures = progressed ? 1 : failures + 1;
    if (failures > retries) {
      throw new HubError(`${err!.message} (gave up after ${fp.requests} request${fp.requests > 1 ? 's' : ''}; the ${writer.written} bytes fetched are kept: download again to resume)`, err!.code, err!.opts);
    }
    fp.status = 'retrying';
    dl.emit(fp, true);
    await sleep(backoffMs(failures, opts, err!.opts.retryAfterMs), signal).catch(() => undefined);
    fp.status = 'downloading';
  }
}
