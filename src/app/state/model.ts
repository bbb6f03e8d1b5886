// The model part of the studio's state: which model (a Hub repo or a picked folder), its config
// before downloading (for the memory estimate), the download or import into the cache with
// progress, pause and resume, loading onto the GPU, the cached models, and the Hub settings.

import type { DownloadProgress } from '../../hub/hub-client.ts';
import type { ModelDims } from '../../llm/memory-estimate.ts';
import type { CachedModel } from '../../storage/model-store.ts';
import type { EngineEvent, HubConfig, ModelInfo, ModelInspection, QuantMode, StorageInfo } from '../../worker/protocol.ts';
import { catalogModel, DEFAULT_REPO, isRepoId } from '../catalog.ts';
import { errorInfo, type ErrorInfo } from '../errors.ts';
import { readHubSettings, saveHubSettings, type HubSettings } from '../hub-settings.ts';
import type { GetState, SetState } from '../store.ts';

export type ModelOrigin = 'hub' | 'local';

export interface DownloadState {
  id: string;
  kind: 'download' | 'import';
  repo: string;
  revision: string;
  status: 'running' | 'pausing' | 'paused' | 'done' | 'error';
  progress: DownloadProgress | null;
  error: ErrorInfo | null;
}

export interface LoadState {
  status: 'idle' | 'fetching' | 'loading' | 'ready' | 'error';
  info: ModelInfo | null;
  progress: { done: number; total: number; name: string } | null;
  error: ErrorInfo | null;
}

export interface HubConfigState {
  status: 'loading' | 'ready' | 'error';
  config: HubConfig | null;
  error: ErrorInfo | null;
}

export interface ModelSlice {
  modelOrigin: ModelOrigin;
  hubRepo: string;
  hubRevision: string;
  hubConfigs: Record<string, HubConfigState>;
  localFolder: { name: string; files: File[] } | null;
  localInspection: { status: 'idle' | 'reading' | 'ready' | 'error'; info: ModelInspection | null; error: ErrorInfo | null };
  quant: QuantMode;
  /** Hub downloads: store a 4-bit copy as the shards land (in the chosen 4-bit type). */
  quantizeOnDownload: boolean;
  /** With a 4-bit copy: keep the full-precision files too. */
  keepOriginal: boolean;
  download: DownloadState | null;
  load: LoadState;
  cache: { models: CachedModel[]; storage: StorageInfo | null; loading: boolean; error: string | null };
  hub: HubSettings;

  setModelOrigin(origin: ModelOrigin): void;
  selectHubRepo(repo: string): void;
  setHubRevision(revision: string): void;
  fetchHubConfig(repo: string): Promise<void>;
  pickLocalFolder(files: File[], name?: string): Promise<void>;
  setQuant(q: QuantMode): void;
  setDownloadOptions(o: { quantizeOnDownload?: boolean; keepOriginal?: boolean }): void;
  /** Downloads (Hub) or imports (folder) the selected model into the cache, then loads it onto the GPU. */
  loadSelectedModel(): Promise<void>;
  loadCachedModel(repo: string, revision: string): Promise<boolean>;
  pauseDownload(): Promise<void>;
  refreshCache(): Promise<void>;
  deleteCached(repo: string, revision?: string): Promise<void>;
  setHubSettings(s: Partial<HubSettings>): void;
}

let downloadSeq = 0;

/** The folder name of picked files (webkitRelativePath's first part), else a fallback. */
export function folderName(files: readonly File[], fallback = 'model'): string {
  const rel = (files[0] as (File & { webkitRelativePath?: string }) | undefined)?.webkitRelativePath ?? '';
  return rel.includes('/') ? rel.split('/')[0]! : fallback;
}

/** The numbers that size the selected model: loaded > picked folder > catalog > fetched config. */
export function selectedDims(s: Pick<ModelSlice, 'modelOrigin' | 'hubRepo' | 'hubConfigs' | 'localInspection' | 'load'>): ModelDims | null {
  if (s.load.status === 'ready' && s.load.info && isSelectedLoaded(s)) return s.load.info.dims;
  if (s.modelOrigin === 'local') return s.localInspection.info?.dims ?? null;
  return catalogModel(s.hubRepo)?.dims ?? s.hubConfigs[s.hubRepo]?.config?.dims ?? null;
}

/** Whether the loaded model is the one selected in the picker. */
export function isSelectedLoaded(s: Pick<ModelSlice, 'modelOrigin' | 'hubRepo' | 'localInspection' | 'load'>): boolean {
  const info = s.load.info;
  if (s.load.status !== 'ready' || !info) return false;
  if (s.modelOrigin === 'hub') return info.cached?.repo === s.hubRepo;
  return info.cached === null || info.cached.repo.startsWith('local/');
}

export function createModelSlice(set: SetState, get: GetState): ModelSlice {
  const hub = readHubSettings();

  const runDownload = async (kind: 'download' | 'import', repo: string, revision: string, start: (id: string) => Promise<{ repo: string; revision: string }>) => {
    const id = `${kind}-${++downloadSeq}`;
    set({ download: { id, kind, repo, revision, status: 'running', progress: null, error: null } });
    try {
      const r = await start(id);
      set((s) => (s.download?.id === id ? { download: { ...s.download, status: 'done', error: null } } : {}));
      void get().refreshCache();
      return r;
    } catch (err) {
      const info = errorInfo(err, 'download');
      set((s) =>
        s.download?.id === id
          ? { download: { ...s.download, status: info.kind === 'cancelled' ? 'paused' : 'error', error: info.kind === 'cancelled' ? null : info } }
          : {},
      );
      void get().refreshCache();
      throw err;
    }
  };

  return {
    modelOrigin: 'hub',
    hubRepo: DEFAULT_REPO,
    hubRevision: 'main',
    hubConfigs: {},
    localFolder: null,
    localInspection: { status: 'idle', info: null, error: null },
    quant: 'nf4',
    quantizeOnDownload: true,
    keepOriginal: false,
    download: null,
    load: { status: 'idle', info: null, progress: null, error: null },
    cache: { models: [], storage: null, loading: false, error: null },
    hub,

    setModelOrigin(modelOrigin) {
      set({ modelOrigin });
    },

    selectHubRepo(repo) {
      const r = repo.trim();
      set({ hubRepo: r, modelOrigin: 'hub' });
      if (isRepoId(r) && !catalogModel(r) && !get().hubConfigs[r]) void get().fetchHubConfig(r);
    },

    setHubRevision(hubRevision) {
      set({ hubRevision: hubRevision.trim() || 'main' });
    },

    async fetchHubConfig(repo) {
      const engine = get().engine;
      if (!engine || !isRepoId(repo)) return;
      set((s) => ({ hubConfigs: { ...s.hubConfigs, [repo]: { status: 'loading', config: null, error: null } } }));
      const { endpoint, token } = get().hub;
      try {
        const config = await engine.call('hubConfig', { repo, revision: get().hubRevision, endpoint, token });
        set((s) => ({ hubConfigs: { ...s.hubConfigs, [repo]: { status: 'ready', config, error: null } } }));
      } catch (err) {
        set((s) => ({ hubConfigs: { ...s.hubConfigs, [repo]: { status: 'error', config: null, error: errorInfo(err, 'download') } } }));
      }
    },

    async pickLocalFolder(files, name) {
      const folder = { name: name ?? folderName(files), files: [...files] };
      set({ modelOrigin: 'local', localFolder: folder, localInspection: { status: 'reading', info: null, error: null } });
      const engine = get().engine;
      if (!engine) {
        set({ localInspection: { status: 'error', info: null, error: errorInfo(new Error('The engine worker is not running.')) } });
        return;
      }
      try {
        const info = await engine.call('inspectModel', { source: { kind: 'files', name: folder.name, files: folder.files } });
        if (get().localFolder === folder) set({ localInspection: { status: 'ready', info, error: null } });
      } catch (err) {
        if (get().localFolder === folder) set({ localInspection: { status: 'error', info: null, error: errorInfo(err, 'unsupported') } });
      }
    },

    setQuant(quant) {
      set({ quant });
    },

    setDownloadOptions(o) {
      set(o);
    },

    async loadSelectedModel() {
      const s = get();
      const engine = s.engine;
      if (!engine) return;
      if (s.load.status === 'fetching' || s.load.status === 'loading') return;
      set({ load: { ...s.load, status: 'fetching', error: null, progress: null } });
      try {
        let source: { kind: 'cache'; repo: string; revision: string } | { kind: 'files'; name: string; files: File[] };
        if (s.modelOrigin === 'hub') {
          if (!isRepoId(s.hubRepo)) throw new Error(`"${s.hubRepo}" is not a Hub repo id (owner/name).`);
          const { endpoint, token } = s.hub;
          const want = cachedToLoad(await engine.call('listCache', {}), s.hubRepo, s.hubRevision, s.quant);
          if (want) {
            source = { kind: 'cache', repo: s.hubRepo, revision: want };
          } else {
            const quantize = s.quant !== 'none' && s.quantizeOnDownload && !prequantizedRepo(s) ? s.quant : undefined;
            const r = await runDownload('download', s.hubRepo, s.hubRevision, (downloadId) =>
              engine
                .call('download', { downloadId, repo: s.hubRepo, revision: s.hubRevision, endpoint, token, quantize, keepOriginal: s.keepOriginal })
                .then((d) => ({ repo: d.repo, revision: d.loadRevision })),
            );
            source = { kind: 'cache', repo: r.repo, revision: r.revision };
          }
        } else {
          const folder = s.localFolder;
          if (!folder) throw new Error('Choose a model folder first.');
          try {
            const r = await runDownload('import', `local/${folder.name}`, 'local', (downloadId) =>
              engine.call('importModel', { downloadId, name: folder.name, files: folder.files }),
            );
            source = { kind: 'cache', repo: r.repo, revision: r.revision };
          } catch (err) {
            // No room to keep a copy: train straight from the picked files (a reload will need the folder again).
            if (errorInfo(err).kind !== 'quota') throw err;
            source = { kind: 'files', name: folder.name, files: folder.files };
          }
        }
        set((st) => ({ load: { ...st.load, status: 'loading', progress: null } }));
        const info = await engine.call('loadModel', { source, quant: get().quant });
        set({ load: { status: 'ready', info, progress: null, error: null } });
        get().onModelLoaded();
      } catch (err) {
        const e = errorInfo(err);
        set((st) => ({ load: { ...st.load, status: e.kind === 'cancelled' ? 'idle' : 'error', error: e.kind === 'cancelled' ? null : e, progress: null } }));
      }
    },

    async loadCachedModel(repo, revision) {
      const engine = get().engine;
      if (!engine) return false;
      set((st) => ({ load: { ...st.load, status: 'loading', error: null, progress: null } }));
      try {
        const info = await engine.call('loadModel', { source: { kind: 'cache', repo, revision }, quant: get().quant });
        const origin: Partial<ModelSlice> = repo.startsWith('local/') ? { modelOrigin: 'local' } : { modelOrigin: 'hub', hubRepo: repo, hubRevision: revision };
        set({ ...origin, load: { status: 'ready', info, progress: null, error: null } });
        if (repo.startsWith('local/')) set({ localInspection: { status: 'ready', info, error: null }, localFolder: null });
        get().onModelLoaded();
        return true;
      } catch (err) {
        set((st) => ({ load: { ...st.load, status: 'error', error: errorInfo(err), progress: null } }));
        return false;
      }
    },

    async pauseDownload() {
      const d = get().download;
      const engine = get().engine;
      if (!d || d.status !== 'running' || !engine) return;
      set({ download: { ...d, status: 'pausing' } });
      await engine.call('cancelDownload', { downloadId: d.id }).catch(() => undefined);
    },

    async refreshCache() {
      const engine = get().engine;
      if (!engine) return;
      set((s) => ({ cache: { ...s.cache, loading: true } }));
      try {
        const [models, storage] = await Promise.all([engine.call('listCache', {}), engine.call('storageInfo', {})]);
        set({ cache: { models, storage, loading: false, error: null } });
      } catch (err) {
        set((s) => ({ cache: { ...s.cache, loading: false, error: errorInfo(err).message } }));
      }
    },

    async deleteCached(repo, revision) {
      const engine = get().engine;
      if (!engine) return;
      try {
        await engine.call('deleteCached', { repo, revision });
        const info = get().load.info;
        if (info?.cached?.repo === repo) set({ load: { status: 'idle', info: null, progress: null, error: null } });
      } catch (err) {
        set((s) => ({ cache: { ...s.cache, error: errorInfo(err).message } }));
      }
      await get().refreshCache();
    },

    setHubSettings(partial) {
      const next = { ...get().hub, ...partial };
      saveHubSettings(next);
      set({ hub: next });
    },
  };
}

/**
 * The cached revision to load for `repo@revision` without downloading: its 4-bit copy in the chosen
 * type when one is complete, else the full-precision entry; null when neither is complete.
 */
export function cachedToLoad(cache: readonly CachedModel[], repo: string, revision: string, quant: QuantMode): string | null {
  const complete = (rev: string) => cache.some((c) => c.repo === repo && c.revision === rev && c.complete);
  if (quant !== 'none' && complete(`${revision}+${quant}`)) return `${revision}+${quant}`;
  return complete(revision) ? revision : null;
}

function prequantizedRepo(s: Pick<ModelSlice, 'hubRepo' | 'hubConfigs'>): boolean {
  return catalogModel(s.hubRepo)?.bnb4bit ?? s.hubConfigs[s.hubRepo]?.config?.prequantized ?? false;
}

/** Routes the engine's model events into the state. */
export function modelEvent(e: EngineEvent, set: SetState): void {
  if (e.kind === 'load-progress') set((s) => ({ load: { ...s.load, progress: { done: e.done, total: e.total, name: e.name } } }));
  else if (e.kind === 'download-progress') {
    set((s) => (s.download?.id === e.downloadId ? { download: { ...s.download, progress: e.progress } } : {}));
  }
}
