// The playground, exports and demo links in the studio's state:
// - playground: one prompt, the sampling settings, and two outputs (the base model and the
//   fine-tuned adapter) generated with the same seed, tokens streaming in as the worker emits them;
// - exports: files the worker builds (adapter zip, training config, loss CSV, merged model) handed
//   to the page as Blob URLs for a download link;
// - share: a demo link with the model, dataset reference, hyperparameters, the prompt and the
//   adapter (embedded when small enough, else the URL or Hub repo where the user published it);
// - demo: opening a `#demo=` link: decoded first, then the base model loaded (cache or Hub), the
//   adapter loaded into the worker, and the playground opened with the link's prompt.

import type { TrainingRecord } from '../../export/adapter-zip.ts';
import { DemoLinkError, decodeDemoLink, encodeDemoLink, type DemoAdapter, type DemoLink, type DemoTrain } from '../../share/link.ts';
import { demoLinkFetches } from '../../share/link.ts';
import { datasetLabel, isHubRepoId, type DatasetRef } from '../../share/refs.ts';
import type { EngineEvent, ExportKind, GenerateResult } from '../../worker/protocol.ts';
import { errorInfo } from '../errors.ts';
import type { GetState, SetState, StudioState } from '../store.ts';
import { cachedToLoad } from './model.ts';
import { SAMPLES } from './data.ts';
import { isRunActive } from './train.ts';

export type Side = 'base' | 'tuned';

export interface Sampling {
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  repetitionPenalty: number;
  seed: number;
}

export interface GenOutput {
  requestId: string | null;
  status: 'idle' | 'running' | 'done' | 'error';
  text: string;
  tokens: number;
  tokensPerSecond: number | null;
  finish: GenerateResult['finish'] | null;
  error: string | null;
  startedAt: number;
}

export interface ExportState {
  status: 'idle' | 'working' | 'ready' | 'error';
  name: string | null;
  url: string | null;
  bytes: number;
  error: string | null;
  /** Where the worker built it: in memory, or streamed to a temp file on disk (OPFS). */
  storage?: 'memory' | 'opfs' | null;
  /** How it was built, when the user should know (e.g. in memory for lack of OPFS). */
  warning?: string | null;
}

export interface DemoState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  /** What is being loaded and from where (the banner's text). */
  message: string;
  error: string | null;
  link: DemoLink | null;
}

export interface PlaygroundSlice {
  prompt: string;
  /** Apply the model's chat template (one user turn + the generation prompt). */
  chat: boolean;
  sampling: Sampling;
  outputs: Record<Side, GenOutput>;
  /** An adapter the worker holds that did not come from this tab's run (a demo link's). */
  linkedAdapter: boolean;
  exports: Partial<Record<ExportKind, ExportState>>;
  share: { status: 'idle' | 'working' | 'ready' | 'error'; link: string | null; bytes: number; error: string | null; tooLarge: boolean; publishedAt: string };
  demo: DemoState;

  setPrompt(prompt: string): void;
  setChat(chat: boolean): void;
  setSampling(p: Partial<Sampling>): void;
  /** Generates with the base model and, when there is one, the adapter (same prompt and seed). */
  generateBoth(): Promise<void>;
  stopGenerating(): Promise<void>;
  exportFile(kind: ExportKind): Promise<void>;
  setPublishedAt(url: string): void;
  makeShareLink(): Promise<void>;
  /** Opens a `#demo=` link (decoded before anything is loaded). */
  openDemoLink(url: string): Promise<void>;
  dismissDemo(): void;
}

export const DEFAULT_SAMPLING: Sampling = { temperature: 0, topP: 1, topK: 0, maxNewTokens: 48, repetitionPenalty: 1, seed: 1 };

const idleOutput = (): GenOutput => ({ requestId: null, status: 'idle', text: '', tokens: 0, tokensPerSecond: null, finish: null, error: null, startedAt: 0 });

let genSeq = 0;

/** Whether the worker holds an adapter to generate with: a paused or finished run, or a linked one. */
export function hasAdapter(s: Pick<StudioState, 'run' | 'linkedAdapter'>): boolean {
  const st = s.run?.state;
  return s.linkedAdapter || st === 'paused' || st === 'done' || st === 'stopped';
}

/** Links may point at http://localhost only when the studio itself runs there (tests, development). */
export function allowLocalhost(): boolean {
  const h = globalThis.location?.hostname ?? '';
  return h === 'localhost' || h === '127.0.0.1';
}

/** The dataset as a link or a model card names it (never a path, never a token). */
export function currentDatasetRef(s: StudioState): DatasetRef | null {
  switch (s.dataChoice) {
    case 'sample':
      return { name: (SAMPLES.find((x) => x.id === s.sampleId) ?? SAMPLES[0]!).file };
    case 'file':
      return s.dataFile ? { name: s.dataFile.name } : null;
    case 'hf':
      return s.hfDataset.dataset ? { hub: s.hfDataset.dataset, ...(s.hfDataset.config ? { config: s.hfDataset.config } : {}), ...(s.hfDataset.split ? { split: s.hfDataset.split } : {}) } : null;
    default:
      return null;
  }
}

/** The run as exports describe it. */
export function trainingRecord(s: StudioState): TrainingRecord {
  const info = s.load.info;
  const run = s.run;
  const evalAt = new Map(run?.evals.map((e) => [e.step, e.loss]) ?? []);
  const history = (run?.points ?? []).map((p) => ({ ...p, ...(evalAt.has(p.step) ? { evalLoss: evalAt.get(p.step)! } : {}) }));
  const evals = run?.evals ?? [];
  return {
    baseModel: info?.cached?.repo,
    revision: info?.cached ? baseRevision(info.cached.revision) : null,
    dataset: currentDatasetRef(s),
    quant: info?.quant ?? null,
    lora: s.lora,
    train: s.train,
    result: {
      steps: run?.points.at(-1)?.step,
      history,
      initialEvalLoss: evals.find((e) => e.step === 0)?.loss ?? null,
      evalLoss: evals.length && evals.at(-1)!.step > 0 ? evals.at(-1)!.loss : null,
    },
  };
}

/** The Hub revision behind a cache entry ("main+nf4" is the 4-bit copy of "main"). */
export function baseRevision(rev: string): string {
  return rev.replace(/\+(nf4|fp4)$/, '');
}

function demoTrain(t: StudioState['train']): DemoTrain {
  return {
    lr: t.lr,
    maxSteps: t.maxSteps,
    epochs: t.epochs,
    batchSize: t.batchSize,
    gradAccum: t.gradAccum,
    seqLen: t.seqLen,
    schedule: t.schedule,
    warmupSteps: t.warmupSteps,
    warmupRatio: t.warmupRatio,
    weightDecay: t.weightDecay,
    maxGradNorm: t.maxGradNorm,
    evalSplit: t.evalSplit,
    seed: t.seed,
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Where an adapter in a link comes from, in words. */
function adapterSource(a: DemoAdapter | undefined): string {
  if (!a) return 'no adapter (base model only)';
  if (a.kind === 'embedded') return `the adapter embedded in the link (${Math.round(a.weights.byteLength / 1024)} KB)`;
  if (a.kind === 'hub') return `the adapter from Hub repo ${a.repo}`;
  return `the adapter from ${a.url}`;
}

export function createPlaygroundSlice(set: SetState, get: GetState): PlaygroundSlice {
  const setOutput = (side: Side, requestId: string, f: (o: GenOutput) => Partial<GenOutput>) =>
    set((s) => (s.outputs[side].requestId === requestId ? { outputs: { ...s.outputs, [side]: { ...s.outputs[side], ...f(s.outputs[side]) } } } : {}));

  const generateOne = async (side: Side): Promise<void> => {
    const s = get();
    const engine = s.engine;
    if (!engine) return;
    const requestId = `gen-${side}-${++genSeq}`;
    set((st) => ({ outputs: { ...st.outputs, [side]: { ...idleOutput(), requestId, status: 'running', startedAt: performance.now() } } }));
    const sm = s.sampling;
    try {
      const r = await engine.call('generate', {
        requestId,
        prompt: s.prompt,
        chat: s.chat,
        adapter: side === 'tuned',
        maxNewTokens: sm.maxNewTokens,
        temperature: sm.temperature,
        topK: sm.topK,
        topP: sm.topP,
        repetitionPenalty: sm.repetitionPenalty,
        seed: sm.seed,
      });
      setOutput(side, requestId, () => ({ status: 'done', text: r.text, tokens: r.tokens, tokensPerSecond: r.tokensPerSecond, finish: r.finish }));
    } catch (err) {
      setOutput(side, requestId, () => ({ status: 'error', error: errorInfo(err).message }));
    }
  };

  const waitFor = (pred: (s: StudioState) => boolean): Promise<StudioState> =>
    new Promise((resolve) => {
      // `get` is the store's getState; subscribe through the store via polling-free listener.
      const check = () => {
        const s = get();
        if (pred(s)) {
          resolve(s);
          return true;
        }
        return false;
      };
      if (check()) return;
      const t = setInterval(() => check() && clearInterval(t), 100);
    });

  return {
    prompt: 'Once upon a time',
    chat: true,
    sampling: { ...DEFAULT_SAMPLING },
    outputs: { base: idleOutput(), tuned: idleOutput() },
    linkedAdapter: false,
    exports: {},
    share: { status: 'idle', link: null, bytes: 0, error: null, tooLarge: false, publishedAt: '' },
    demo: { status: 'idle', message: '', error: null, link: null },

    setPrompt(prompt) {
      set({ prompt });
    },
    setChat(chat) {
      set({ chat });
    },
    setSampling(p) {
      set((s) => ({ sampling: { ...s.sampling, ...p } }));
    },

    async generateBoth() {
      const s = get();
      if (!s.engine || s.load.status !== 'ready') return;
      if (s.outputs.base.status === 'running' || s.outputs.tuned.status === 'running') return;
      const both = hasAdapter(s);
      if (!both) set((st) => ({ outputs: { ...st.outputs, tuned: idleOutput() } }));
      // The worker's GPU lock runs them one after the other; each streams its own tokens.
      await Promise.all([generateOne('base'), both ? generateOne('tuned') : Promise.resolve()]);
    },

    async stopGenerating() {
      const { engine, outputs } = get();
      if (!engine) return;
      for (const o of Object.values(outputs)) {
        if (o.status === 'running' && o.requestId) await engine.call('cancelGenerate', { requestId: o.requestId }).catch(() => undefined);
      }
    },

    async exportFile(kind) {
      const s = get();
      const engine = s.engine;
      if (!engine) return;
      const prev = s.exports[kind];
      if (prev?.url) URL.revokeObjectURL(prev.url);
      const put = (e: ExportState) => set((st) => ({ exports: { ...st.exports, [kind]: e } }));
      put({ status: 'working', name: null, url: null, bytes: 0, error: null });
      try {
        const f = await engine.call('exportFile', { kind, record: trainingRecord(s), title: s.run?.label });
        // A disk-backed File from the worker's private file system is linked as is (never read
        // into memory); bytes are wrapped in a Blob.
        const blob = f.data instanceof Blob ? (f.data.type ? f.data : f.data.slice(0, f.data.size, f.mime)) : new Blob([f.data as Uint8Array<ArrayBuffer>], { type: f.mime });
        const url = URL.createObjectURL(blob);
        put({ status: 'ready', name: f.name, url, bytes: f.bytes ?? blob.size, error: null, storage: f.storage ?? 'memory', warning: f.warning ?? null });
      } catch (err) {
        put({ status: 'error', name: null, url: null, bytes: 0, error: errorInfo(err).message });
      }
    },

    setPublishedAt(publishedAt) {
      set((s) => ({ share: { ...s.share, publishedAt } }));
    },

    async makeShareLink() {
      const s = get();
      const engine = s.engine;
      const info = s.load.info;
      if (!engine || !info) return;
      set((st) => ({ share: { ...st.share, status: 'working', error: null } }));
      try {
        const repo = info.cached?.repo;
        if (!repo || !isHubRepoId(repo)) throw new Error('The model has no Hub repo id to put in a link (it was not downloaded or imported).');
        const base: DemoLink = {
          model: { repo, revision: baseRevision(info.cached!.revision) },
          title: s.run?.label?.slice(0, 200) || info.name,
          ...(currentDatasetRef(s) ? { dataset: currentDatasetRef(s)! } : {}),
          lora: { r: s.lora.r, alpha: s.lora.alpha, dropout: s.lora.dropout, targetModules: [...s.lora.targetModules], useRslora: s.lora.useRslora, seed: s.lora.seed },
          train: demoTrain(s.train),
          prompt: { user: s.prompt },
          sampling: { ...s.sampling },
        };
        const opts = { origin: location.origin + location.pathname, allowHttpLocalhost: allowLocalhost() };
        const published: string = s.share.publishedAt.trim();
        let adapter: DemoAdapter | undefined;
        if (published) {
          adapter = isHubRepoId(published) ? { kind: 'hub', repo: published } : { kind: 'url', url: (published as string).replace(/\/+$/, '') };
        } else if (hasAdapter(s)) {
          const files = await engine.call('adapterFiles', {});
          adapter = { kind: 'embedded', config: files.config, weights: files.weights };
        }
        let link: string;
        try {
          link = encodeDemoLink({ ...base, ...(adapter ? { adapter } : {}) }, opts);
        } catch (err) {
          if (err instanceof DemoLinkError && err.code === 'too-large' && adapter?.kind === 'embedded') {
            set((st) => ({ share: { ...st.share, status: 'error', link: null, tooLarge: true, error: `${err.message}.` } }));
            return;
          }
          throw err;
        }
        set((st) => ({ share: { ...st.share, status: 'ready', link, bytes: link.length, error: null, tooLarge: st.share.tooLarge && !published ? st.share.tooLarge : false } }));
      } catch (err) {
        set((st) => ({ share: { ...st.share, status: 'error', link: null, error: errorText(err) } }));
      }
    },

    async openDemoLink(url) {
      let link: DemoLink;
      try {
        link = decodeDemoLink(url, { allowHttpLocalhost: allowLocalhost() });
      } catch (err) {
        set({ demo: { status: 'error', message: '', error: errorText(err), link: null } });
        return;
      }
      const endpoint = get().hub.endpoint;
      const rev = link.model.revision ?? 'main';
      const ds = link.dataset ? datasetLabel(link.dataset) : null;
      const say = (message: string) => set((s) => ({ demo: { ...s.demo, message } }));
      set({
        demo: { status: 'loading', message: `Opening a demo link: ${link.model.repo} (${rev}) with ${adapterSource(link.adapter)}${ds ? `, trained on ${ds}` : ''}.`, error: null, link },
        panel: 'playground',
        ...(link.prompt ? { prompt: link.prompt.user } : {}),
        ...(link.sampling ? { sampling: { ...DEFAULT_SAMPLING, ...link.sampling } } : {}),
      });
      if (link.lora) get().setLora({ ...link.lora });
      if (link.train) get().setTrain({ ...link.train });
      const fail = (message: string) => set((s) => ({ demo: { ...s.demo, status: 'error', error: message } }));
      try {
        const s0 = await waitFor((s) => s.gpu.status !== 'checking');
        if (s0.gpu.status !== 'ready') return fail(`This browser cannot run the model: ${s0.gpu.message ?? 'WebGPU is not available'}.`);
        const engine = s0.engine!;
        if (isRunActive(s0.run)) return fail('A training run is in progress in this tab: stop it before opening a demo link.');
        // The adapter first (fetched when published elsewhere), so nothing is loaded if it cannot be had.
        let adapter: { config: string; weights: Uint8Array } | null = null;
        const a = link.adapter;
        if (a?.kind === 'embedded') adapter = { config: a.config, weights: a.weights };
        else if (a) {
          // The worker fetches exactly the two files from the place the link names, and checks them.
          const [cfgUrl] = demoLinkFetches(link, endpoint).adapter;
          say(`Fetching the adapter from ${new URL(cfgUrl!).origin}…`);
          const f = await engine.call('fetchAdapter', {
            adapter: a,
            endpoint,
            ...(a.kind === 'hub' && get().hub.token ? { token: get().hub.token } : {}),
            baseModel: link.model.repo,
            allowHttpLocalhost: allowLocalhost(),
          });
          adapter = { config: f.config, weights: f.weights };
        }
        const cache = await engine.call('listCache', {});
        const cachedRev = cachedToLoad(cache, link.model.repo, rev, s0.quant);
        if (cachedRev) {
          say(`Loading ${link.model.repo} from this browser's cache, then ${adapterSource(a)}…`);
          if (!(await get().loadCachedModel(link.model.repo, cachedRev))) throw new Error(get().load.error?.message ?? `could not load ${link.model.repo}`);
        } else {
          say(`Downloading ${link.model.repo} (${rev}) from ${new URL(endpoint).host}, then loading ${adapterSource(a)}…`);
          get().selectHubRepo(link.model.repo);
          get().setHubRevision(rev);
          await get().loadSelectedModel();
          if (get().load.status !== 'ready') throw new Error(get().load.error?.message ?? `could not load ${link.model.repo}`);
        }
        if (adapter) {
          await engine.call('loadAdapter', adapter);
          set({ linkedAdapter: true });
        }
        set((s) => ({
          demo: { ...s.demo, status: 'ready', message: `Loaded ${link.model.repo} with ${adapterSource(a)}. The prompt from the link is ready below.` },
          panel: 'playground',
        }));
      } catch (err) {
        fail(`The demo could not be opened: ${errorInfo(err).message}`);
      }
    },

    dismissDemo() {
      set({ demo: { status: 'idle', message: '', error: null, link: null } });
    },
  };
}

/** Routes streamed tokens into the output that asked for them. */
export function playgroundEvent(e: EngineEvent, set: SetState): void {
  if (e.kind !== 'token') return;
  set((s) => {
    for (const side of ['base', 'tuned'] as const) {
      const o = s.outputs[side];
      if (o.requestId === e.requestId && o.status === 'running') {
        const tokens = o.tokens + 1;
        const secs = (performance.now() - o.startedAt) / 1000;
        return { outputs: { ...s.outputs, [side]: { ...o, text: o.text + e.text, tokens, tokensPerSecond: secs > 0 ? tokens / secs : null } } };
      }
    }
    return {};
  });
}
