// The engine side of the worker protocol, without the worker itself: decodes requests, runs
// them against one lazily created GpuRuntime and the engine session (model, data, training,
// generation: session.ts), posts exactly one reply per request and forwards the session's
// events. Requests run concurrently, so pause/stop/cancel are answered while a long request
// (train, generate) is still running. Storage commands (cache, downloads, kept runs) and fetching
// a demo link's published adapter (adapter-fetch.ts) need no GPU and run at once; the session's
// code (model loader, tokenizers, data pipeline, trainer) is imported on first use, so opening the
// studio neither waits for it nor depends on it. engine.worker.ts wires the host to the worker's
// global scope; tests drive it directly.

import type { GpuRuntime } from '../gpu/runtime.ts';
import {
  isCommandName,
  serializeError,
  type CommandName,
  type EngineCommands,
  type EngineReply,
  type ProbeResult,
} from './protocol.ts';
import { runSelfTest } from './selftest.ts';
import { fetchAdapter } from './adapter-fetch.ts';
import type { OpfsLike } from './opfs-sink.ts';
import type { EngineSession } from './session.ts';
import { StoreService, type SessionDeps } from './store-service.ts';
import { MemoryStore } from '../storage/memory-store.ts';

export interface EngineHostDeps {
  /** The WebGPU entry point, or null/undefined when this context has none. */
  gpu: () => GPU | null | undefined;
  /** Why WebGPU is missing here (null when present). */
  missingReason: () => string | null;
  /** Creates the runtime; `onError` reports device loss and uncaptured GPU errors. */
  createRuntime: (onError: (message: string) => void) => Promise<GpuRuntime>;
  /** Cached models, runs and checkpoints (IndexedDB in the worker; default: memory). */
  store?: SessionDeps['store'];
  storage?: SessionDeps['storage'];
  fetch?: typeof fetch;
  /** The Origin Private File System, where large exports stream to disk (null: built in memory). */
  opfs?: OpfsLike | null;
}

export const NO_ADAPTER_REASON =
  'WebGPU is present but the browser offered no GPU adapter: the GPU may be blocklisted or WebGPU ' +
  'disabled. In Chrome or Edge, open chrome://gpu to see why; on Linux, start the browser with ' +
  '--enable-unsafe-webgpu --enable-features=Vulkan.';

type Handlers = { [K in CommandName]: (args: EngineCommands[K]['args']) => Promise<EngineCommands[K]['result']> };

export class EngineHost {
  private runtime: Promise<GpuRuntime> | null = null;
  private readonly handlers: Handlers;
  private sessionPromise: Promise<EngineSession> | null = null;
  private readonly sessionDeps: SessionDeps;
  readonly storage: StoreService;

  constructor(
    private readonly post: (reply: EngineReply) => void,
    private readonly deps: EngineHostDeps,
  ) {
    this.sessionDeps = {
      emit: (event) => this.post({ id: null, type: 'event', event }),
      store: deps.store ?? new MemoryStore('memory'),
      storage: deps.storage,
      fetch: deps.fetch,
      opfs: deps.opfs,
    };
    const st = new StoreService(this.sessionDeps);
    // Deleting what the session uses goes through it (it unloads, or refuses while training).
    st.beforeDeleteModel = async (repo, revision) => void (this.sessionPromise && (await (await this.sessionPromise).beforeDeleteModel(repo, revision)));
    st.beforeDeleteRun = async (runId) => void (this.sessionPromise && (await (await this.sessionPromise).beforeDeleteRun(runId)));
    this.storage = st;
    const s = () => this.getSession();
    this.handlers = {
      probe: () => this.probe(),
      selftest: async (args) => runSelfTest(await this.getRuntime(), args ?? {}),
      inspectModel: async (args) => (await s()).inspectModel(args.source),
      hubConfig: (args) => st.hubConfig(args),
      download: (args) => st.download(args),
      importModel: (args) => st.importModel(args),
      cancelDownload: async (args) => ({ cancelled: st.cancelDownload(args.downloadId) }),
      listCache: () => st.listCache(),
      deleteCached: async (args) => ({ deleted: await st.deleteCached(args.repo, args.revision) }),
      storageInfo: () => st.storageInfo(),
      listRuns: () => st.listRuns(),
      deleteRun: async (args) => ({ deleted: await st.deleteRun(args.runId) }),
      loadModel: async (args) => (await s()).loadModel(await this.getRuntime(), args),
      unloadModel: async () => {
        const session = await s();
        session.unload();
        return { gpuBytes: session.gpuBytes };
      },
      prepareData: async (args) => (await s()).prepareData(args),
      train: async (args) => (await s()).train(args),
      pauseTraining: async () => ({ state: (await s()).pauseTraining() }),
      resumeTraining: async () => ({ state: (await s()).resumeTraining() }),
      stopTraining: async () => ({ state: (await s()).stopTraining() }),
      generate: async (args) => (await s()).generate(args),
      cancelGenerate: async (args) => ({ cancelled: (await s()).cancelGenerate(args.requestId) }),
      adapterFiles: async () => (await s()).adapterFiles(),
      loadAdapter: async (args) => (await s()).loadAdapterBytes(args),
      fetchAdapter: (args) => fetchAdapter(args, deps.fetch),
      exportFile: async (args) => (await s()).exportFile(args),
    };
  }

  /** The engine session, its code loaded on first use (a failed import is retried next time). */
  getSession(): Promise<EngineSession> {
    if (!this.sessionPromise) {
      const pending = import('./session.ts').then(
        ({ EngineSession }) => new EngineSession(this.sessionDeps),
        (err: unknown) => {
          this.sessionPromise = null;
          throw new Error(`the engine could not load its training code: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        },
      );
      this.sessionPromise = pending;
    }
    return this.sessionPromise;
  }

  /** Handles one incoming message; never throws, always replies. */
  async receive(data: unknown): Promise<void> {
    const msg = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    const id = typeof msg.id === 'number' ? msg.id : null;
    const command = isCommandName(msg.command) ? msg.command : null;
    if (id === null || command === null) {
      const error = { name: 'ProtocolError', message: `malformed engine request: ${safeJson(data)}` };
      this.post(id === null ? { id: null, type: 'error', command: null, error } : { id, type: 'error', command, error });
      return;
    }
    try {
      const handler = this.handlers[command] as (args: unknown) => Promise<unknown>;
      const result = await handler(msg.args ?? {});
      this.post({ id, type: 'result', command, result } as EngineReply);
    } catch (err) {
      this.post({ id, type: 'error', command, error: serializeError(err) });
    }
  }

  /** Reports an error that belongs to no request (uncaught exception, device lost). */
  reportUnattached(err: unknown): void {
    this.post({ id: null, type: 'error', command: null, error: serializeError(err) });
  }

  private async probe(): Promise<ProbeResult> {
    const reason = this.deps.missingReason();
    const gpu = this.deps.gpu();
    if (reason || !gpu) return { available: false, cause: 'no-webgpu', reason: reason ?? 'WebGPU is not available here.' };
    if (!this.runtime) {
      // Ask for an adapter first, so "no adapter" is an answer rather than an error.
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return { available: false, cause: 'no-adapter', reason: NO_ADAPTER_REASON };
    }
    const rt = await this.getRuntime();
    return { available: true, adapter: rt.adapter };
  }

  private getRuntime(): Promise<GpuRuntime> {
    if (!this.runtime) {
      const pending = this.deps.createRuntime((message) => {
        this.post({ id: null, type: 'error', command: null, error: { name: 'GpuError', message } });
      });
      this.runtime = pending;
      pending.then(
        (rt) => void rt.lost.then(() => this.runtime === pending && (this.runtime = null)),
        () => this.runtime === pending && (this.runtime = null),
      );
    }
    return this.runtime;
  }
}

function safeJson(x: unknown): string {
  try {
    const s = JSON.stringify(x);
    return s === undefined ? String(x) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(x);
  }
}
