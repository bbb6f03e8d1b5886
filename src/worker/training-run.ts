// One training run in the worker, driven by the engine's finetune() (src/llm/finetune.ts) so the
// studio trains exactly as `qlora train` does, with its checkpoints, exact resume and optimizer
// paging. What the run adds for the studio:
// - pause: finetune's shouldStop ends it after the current step with a checkpoint; resume calls
//   finetune again with resume: true, which continues bit for bit from that checkpoint (the GPU is
//   free meanwhile, so the playground can use it);
// - stop: the same, without coming back;
// - an event per step with the GPU memory in use and the paging traffic so far (counted on the
//   page store's reads and writes, live, not only at the end).

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { PreparedData } from '../data/pipeline.ts';
import { finetune } from '../llm/finetune.ts';
import type { LoraAdapter } from '../llm/lora.ts';
import type { GpuModel } from '../llm/model.ts';
import type { ByteStore, StoredEntry, ValueWriter } from '../storage/store.ts';
import type { TrainConfig } from '../train/train-config.ts';
import type { EngineEvent, PagingStats, TrainState, TrainSummary } from './protocol.ts';

export interface RunOptions {
  runId: string;
  train: TrainConfig;
  evalEvery: number;
  checkpointEvery: number;
  optimizerBudget: number | null;
  /** Checkpoints (and pages) go here. */
  store: ByteStore;
  /** Recorded in checkpoints and compared on resume. */
  meta: { modelId: string; options: Record<string, unknown> };
  emit: (e: EngineEvent) => void;
  lock: { run<T>(fn: () => Promise<T>): Promise<T> };
}

export class TrainingRun {
  state: TrainState = 'preparing';
  private pauseRequested = false;
  private stopRequested = false;
  private gate: (() => void) | null = null;
  private readonly paging: PagingStats;
  private readonly pageStore: ByteStore;

  constructor(
    private readonly rt: GpuRuntime,
    private readonly model: GpuModel,
    private readonly lora: LoraAdapter,
    private readonly data: PreparedData,
    private readonly opts: RunOptions,
  ) {
    this.paging = { pagesIn: 0, pagesOut: 0, bytesIn: 0, bytesOut: 0, budget: opts.optimizerBudget ?? 0 };
    this.pageStore = countingStore(opts.store, this.paging);
  }

  get runId(): string {
    return this.opts.runId;
  }

  /** True until the run has finished, stopped or failed. */
  get active(): boolean {
    return this.state !== 'done' && this.state !== 'stopped' && this.state !== 'error';
  }

  pause(): TrainState {
    if (this.state === 'running' || this.state === 'preparing') {
      this.pauseRequested = true;
      this.setState('pausing');
    }
    return this.state;
  }

  resume(): TrainState {
    if (this.state === 'pausing') {
      this.pauseRequested = false;
      this.setState('running');
    } else if (this.state === 'paused') {
      this.pauseRequested = false;
      this.setState('running');
      this.gate?.();
    }
    return this.state;
  }

  stop(): TrainState {
    if (!this.active) return this.state;
    this.stopRequested = true;
    this.setState('stopping');
    this.gate?.();
    return this.state;
  }

  /** Runs to the end (or a stop); `resume` continues the run from its newest checkpoint. */
  async run(resume = false): Promise<TrainSummary> {
    const { runId, emit } = this.opts;
    const t0 = performance.now();
    let elapsed = 0;
    let resumedFrom: number | undefined;
    let first = true;
    try {
      for (;;) {
        if (!this.pauseRequested && !this.stopRequested && this.state !== 'running') this.setState('running');
        let segmentStart = performance.now();
        const result = await this.opts.lock.run(() =>
          finetune(this.rt, this.model, this.lora, this.data, {
            train: this.opts.train,
            evalEvery: this.opts.evalEvery,
            store: this.opts.store,
            runId,
            checkpointEvery: this.opts.checkpointEvery,
            resume: resume || !first,
            shouldStop: () => this.pauseRequested || this.stopRequested,
            meta: this.opts.meta,
            ...(this.opts.optimizerBudget !== null ? { gpuBudget: this.opts.optimizerBudget, pageStore: this.pageStore } : {}),
            onMessage: (message) => emit({ kind: 'train-note', runId, message }),
            onCheckpoint: (c) => emit({ kind: 'checkpoint', runId, step: c.step, bytes: c.bytes, ms: c.ms }),
            onStep: (e) => {
              const now = performance.now();
              elapsed += now - segmentStart;
              segmentStart = now;
              const mem = this.rt.memory;
              emit({
                kind: 'train-step',
                runId,
                step: e.step,
                totalSteps: e.totalSteps,
                epoch: e.epoch,
                loss: e.loss,
                lr: e.lr,
                gradNorm: e.gradNorm,
                tokens: e.tokens,
                ms: e.ms,
                tokensPerSecond: e.tokensPerSecond,
                ...(e.evalLoss !== undefined ? { evalLoss: e.evalLoss } : {}),
                elapsedMs: elapsed,
                memory: { live: mem.live, peak: mem.peak },
                ...(this.opts.optimizerBudget !== null ? { paging: { ...this.paging } } : {}),
              });
            },
          }),
        );
        if (first) {
          resumedFrom = result.resumedFrom;
          if (result.initialEvalLoss !== null && result.resumedFrom === undefined) {
            emit({ kind: 'train-eval', runId, step: 0, evalLoss: result.initialEvalLoss });
          }
        }
        first = false;
        if (!result.stopped || this.stopRequested) {
          if (result.evalLoss !== null && !result.stopped) emit({ kind: 'train-eval', runId, step: result.steps, evalLoss: result.evalLoss });
          const state = result.stopped ? 'stopped' : 'done';
          this.setState(state);
          const steps = result.steps;
          return {
            runId,
            state,
            steps,
            totalSteps: result.history[result.history.length - 1]?.totalSteps ?? steps,
            initialEvalLoss: result.initialEvalLoss,
            evalLoss: result.evalLoss,
            ms: performance.now() - t0,
            ...(resumedFrom !== undefined ? { resumedFrom } : {}),
            ...(this.opts.optimizerBudget !== null ? { paging: { ...this.paging } } : {}),
          };
        }
        // Paused: the checkpoint is written; wait for resume or stop.
        this.setState('paused');
        await new Promise<void>((r) => (this.gate = r));
        this.gate = null;
        if (this.stopRequested) {
          this.setState('stopped');
          return { runId, state: 'stopped', steps: result.steps, totalSteps: result.history[result.history.length - 1]?.totalSteps ?? result.steps,
            initialEvalLoss: result.initialEvalLoss, evalLoss: result.evalLoss, ms: performance.now() - t0 };
        }
      }
    } catch (e) {
      this.setState('error', describeTrainingError(e));
      throw e;
    }
  }

  private setState(state: TrainState, message?: string): void {
    this.state = state;
    this.opts.emit({ kind: 'train-state', runId: this.opts.runId, state, ...(message ? { message } : {}) });
  }
}

/** The store as the paging layer sees it, counting page reads (in) and writes (out). */
function countingStore(store: ByteStore, s: PagingStats): ByteStore {
  return {
    get name() {
      return store.name;
    },
    has: (k) => store.has(k),
    stat: (k): Promise<StoredEntry | undefined> => store.stat(k),
    async get(k) {
      const v = await store.get(k);
      if (v) {
        s.pagesIn++;
        s.bytesIn += v.byteLength;
      }
      return v;
    },
    async read(k, o, n) {
      const v = await store.read(k, o, n);
      s.bytesIn += v.byteLength;
      return v;
    },
    async put(k, v) {
      await store.put(k, v);
      s.pagesOut++;
      s.bytesOut += v.byteLength;
    },
    async writer(k, o): Promise<ValueWriter> {
      const w = await store.writer(k, o);
      return {
        get written() {
          return w.written;
        },
        append: async (c) => {
          await w.append(c);
          s.bytesOut += c.byteLength;
        },
        commit: async () => {
          await w.commit();
          s.pagesOut++;
        },
        abort: () => w.abort(),
        ...(w.flush ? { flush: () => w.flush!() } : {}),
      };
    },
    partialSize: (k) => store.partialSize(k),
    delete: (k) => store.delete(k),
    list: (p) => store.list(p),
  };
}

/** A training failure in words a user can act on. */
export function describeTrainingError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/device (was )?lost|GPU device lost/i.test(msg)) {
    return `The GPU device was lost (${msg}). This happens when the GPU driver resets or the tab used too much GPU memory; the run can resume from its last checkpoint.`;
  }
  if (/out of memory|OutOfMemory/i.test(msg)) {
    return `The GPU ran out of memory (${msg}). Lower the sequence length, the batch size or the LoRA rank, or set a smaller GPU budget.`;
  }
  if (/QuotaExceeded|quota/i.test(msg)) {
    return `The browser's storage is full, so a checkpoint could not be written (${msg}). Delete cached models or old runs to make room.`;
  }
  return msg;
}
