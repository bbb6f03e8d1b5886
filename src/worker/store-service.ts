// The worker's storage side: cached models (Hub downloads with progress, pause and resume; folders
// copied in), the browser's quota, and the runs kept with their checkpoints (listed after a reload,
// deleted on request). It needs no GPU and none of the training code, so the studio lists what is
// stored as soon as it opens. EngineSession (session.ts) extends it with models, data and training.

import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { readRunState } from '../llm/checkpoint.ts';
import { dimsFromConfig } from '../llm/memory-estimate.ts';
import { downloadModel } from '../hub/hub-client.ts';
import { importLocalFiles } from '../hub/import-local.ts';
import { QuantizeOnDownload } from '../storage/quantize-on-download.ts';
import { authHeaders, httpError, networkError, normalizeEndpoint, resolveUrl, scrubError } from '../hub/hub-api.ts';
import { RUNS_PREFIX, runPrefix } from '../storage/layout.ts';
import { deleteModel, listCachedModels, type CachedModel } from '../storage/model-store.ts';
import type { ByteStore } from '../storage/store.ts';
import type { OpfsLike } from './opfs-sink.ts';
import type { DownloadArgs, DownloadSummary, EngineEvent, HubConfig, HubConfigArgs, ImportArgs, RunListing, RunRecord, StorageInfo } from './protocol.ts';

export interface SessionDeps {
  emit: (event: EngineEvent) => void;
  /** Cached models, runs and checkpoints (IndexedDB in the worker; a MemoryStore in tests). */
  store: ByteStore;
  /** fetch for downloads and 'url' data specs; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** navigator.storage, when there is one (quota and persistence). */
  storage?: Pick<StorageManager, 'estimate' | 'persist' | 'persisted'> | null;
  /** The Origin Private File System, where the merged model streams to disk (absent: built in memory). */
  opfs?: OpfsLike | null;
}

/** A problem the user can fix, in words (the name says which kind, for the UI). */
export class UserError extends Error {
  constructor(message: string, name = 'UserError') {
    super(message);
    this.name = name;
  }
}

/** Where a run's record and its dataset (a file or pasted text) live, beside its checkpoints. */
export const RUN_RECORD = 'studio.json';
export const RUN_DATASET = 'dataset';

export class StoreService {
  private readonly downloads = new Map<string, AbortController>();

  constructor(protected readonly deps: SessionDeps) {}

  /** Called before a cached model is deleted (the session unloads it, or refuses while it trains). */
  async beforeDeleteModel(_repo: string, _revision?: string): Promise<void> {}

  /** Called before a run is deleted (the session refuses while it trains). */
  async beforeDeleteRun(_runId: string): Promise<void> {}

  get store(): ByteStore {
    return this.deps.store;
  }

  // ---- cache and downloads -------------------------------------------------------------

  /** Fetches a Hub repo's config.json (a few KB) so the memory estimate can be shown before downloading. */
  async hubConfig(args: HubConfigArgs): Promise<HubConfig> {
    const revision = args.revision || 'main';
    const endpoint = normalizeEndpoint(args.endpoint || undefined);
    const ctx = { repo: args.repo, revision, file: 'config.json', tokenSent: !!args.token, endpoint };
    try {
      let res: Response;
      try {
        res = await (this.deps.fetch ?? fetch)(resolveUrl(endpoint, args.repo, revision, 'config.json'), { headers: authHeaders(args.token || undefined) });
      } catch (e) {
        throw networkError(e, ctx);
      }
      if (!res.ok) throw httpError(res, ctx);
      const json = (await res.json()) as Record<string, unknown>;
      let config: ModelConfig;
      try {
        config = parseModelConfig(json, `${args.repo}/config.json`);
      } catch (e) {
        throw new UserError(`This model is not supported: ${(e as Error).message}`, 'UnsupportedModel');
      }
      const q = json.quantization_config as { quant_method?: unknown } | undefined;
      return { repo: args.repo, modelType: config.modelType, dims: dimsFromConfig(config), prequantized: q?.quant_method === 'bitsandbytes' };
    } catch (e) {
      throw scrubError(e, args.token || undefined);
    }
  }

  async download(args: DownloadArgs): Promise<DownloadSummary> {
    const ctl = new AbortController();
    this.downloads.set(args.downloadId, ctl);
    const revision = args.revision || 'main';
    const q = args.quantize ? new QuantizeOnDownload(this.store, args.repo, revision, { type: args.quantize, keepOriginal: args.keepOriginal ?? false }) : null;
    try {
      const r = await downloadModel(this.store, args.repo, {
        revision,
        endpoint: args.endpoint || undefined,
        token: args.token || undefined,
        signal: ctl.signal,
        fetch: this.deps.fetch,
        onProgress: (progress) => this.deps.emit({ kind: 'download-progress', downloadId: args.downloadId, progress }),
        ...(q ? { onFileDone: (f: { name: string }) => q.fileDone(f.name) } : {}),
        ...this.storageHooks(),
      });
      const made = q ? await q.finish() : null;
      return {
        repo: r.repo,
        revision: r.revision,
        loadRevision: made?.revision ?? r.revision,
        droppedOriginal: made?.droppedOriginal ?? false,
        fetched: r.fetched,
        resumed: r.resumed,
        restarts: r.restarts,
        elapsedMs: r.elapsedMs,
        persisted: r.persisted,
      };
    } finally {
      this.downloads.delete(args.downloadId);
    }
  }

  /** Copies a picked folder into the cache (as local/<name>), so runs on it survive a reload. */
  async importModel(args: ImportArgs): Promise<{ repo: string; revision: string }> {
    const repo = `local/${safeName(args.name)}`;
    const ctl = new AbortController();
    this.downloads.set(args.downloadId, ctl);
    try {
      const m = await importLocalFiles(this.store, args.files, {
        repo,
        revision: 'local',
        signal: ctl.signal,
        onProgress: (progress) => this.deps.emit({ kind: 'download-progress', downloadId: args.downloadId, progress }),
        estimate: this.storageHooks().estimate,
      });
      return { repo: m.repo, revision: m.revision };
    } finally {
      this.downloads.delete(args.downloadId);
    }
  }

  /** Quota and persistence for the hub client (workers have estimate() but not persist()). */
  private storageHooks(): { estimate?: (() => Promise<StorageEstimate>) | null; persist?: (() => Promise<boolean>) | null } {
    const s = this.deps.storage;
    if (s === undefined) return {};
    return {
      estimate: s && typeof s.estimate === 'function' ? () => s.estimate() : null,
      persist: s && typeof s.persist === 'function' ? () => s.persist() : null,
    };
  }

  cancelDownload(id: string): boolean {
    const ctl = this.downloads.get(id);
    ctl?.abort();
    return !!ctl;
  }

  listCache(): Promise<CachedModel[]> {
    return listCachedModels(this.store);
  }

  async deleteCached(repo: string, revision?: string): Promise<number> {
    await this.beforeDeleteModel(repo, revision);
    return (await deleteModel(this.store, repo, revision)).length;
  }

  async storageInfo(): Promise<StorageInfo> {
    const s = this.deps.storage;
    const est = s && typeof s.estimate === 'function' ? await s.estimate().catch(() => null) : null;
    const persisted = s && typeof s.persisted === 'function' ? await s.persisted().catch(() => null) : null;
    return { store: this.store.name, quota: est?.quota ?? null, usage: est?.usage ?? null, persisted };
  }

  // ---- runs ----------------------------------------------------------------------------

  async listRuns(): Promise<RunListing[]> {
    const ids = new Set<string>();
    for (const e of await this.store.list(RUNS_PREFIX)) {
      const id = e.key.slice(RUNS_PREFIX.length).split('/')[0];
      if (id) ids.add(id);
    }
    const out: RunListing[] = [];
    for (const runId of ids) {
      const raw = await this.store.get(runPrefix(runId) + RUN_RECORD);
      if (!raw) continue;
      let record: RunRecord;
      try {
        record = JSON.parse(new TextDecoder().decode(raw)) as RunRecord;
      } catch {
        continue;
      }
      const st = await readRunState(this.store, runId).catch(() => null);
      const stat = await this.store.stat(runPrefix(runId) + RUN_RECORD);
      out.push({
        record,
        step: st?.step ?? null,
        totalSteps: st?.totalSteps ?? null,
        finished: st?.finished ?? false,
        history: (st?.history ?? []).map((h) => ({
          step: h.step,
          loss: h.loss,
          lr: h.lr,
          gradNorm: h.gradNorm,
          tokensPerSecond: h.tokensPerSecond,
          ...(h.evalLoss !== undefined ? { evalLoss: h.evalLoss } : {}),
        })),
        initialEvalLoss: st?.initialEvalLoss ?? null,
        evalLoss: st?.evalLoss ?? null,
        updated: Math.max(st?.written ?? 0, stat?.modified ?? 0),
      });
    }
    return out.sort((a, b) => b.record.created - a.record.created);
  }

  async deleteRun(runId: string): Promise<boolean> {
    await this.beforeDeleteRun(runId);
    const prefix = runPrefix(runId);
    const keys = (await this.store.list(prefix)).map((e) => e.key);
    for (const k of keys) await this.store.delete(k);
    return keys.length > 0;
  }
}

/** A folder name as a repo-id part: letters, digits, ".", "_", "-". */
export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '').slice(0, 80) || 'model';
}
