// The typed message protocol between the studio (UI thread) and the engine worker.
//
//   UI → worker: EngineRequest   { id, command, args }
//   worker → UI: EngineReply     { id, type: 'result', command, result }   answers request `id`
//                                { id, type: 'error', command, error }     request `id` failed
//                                { id: null, type: 'error', error }        an error not tied to a
//                                                                          request (device lost,
//                                                                          uncaught exception)
//                                { id: null, type: 'event', event }        progress while a request
//                                                                          runs (load progress, a
//                                                                          training step, a token)
// Every request gets exactly one reply; errors always come back as messages, never swallowed.
// Long work (loading, training, generating) is one request that settles when the work ends, with
// events streaming meanwhile; pause / resume / stop / cancel are requests of their own that the
// worker answers while the long one is still running.
// Add a command by adding an entry to `EngineCommands`, to COMMANDS, and a handler in engine-host.ts.

import type { AdapterReport } from '../gpu/runtime.ts';
import type { DownloadProgress } from '../hub/hub-client.ts';
import type { CachedModel } from '../storage/model-store.ts';
import type { FormatName } from '../data/formats.ts';
import type { LabelMode } from '../data/labels.ts';
import type { FileKind } from '../data/readers.ts';
import type { TrainedRun } from '../data/preview.ts';
import type { DataStats } from '../data/stats.ts';
import type { ModelDims } from '../llm/memory-estimate.ts';
import type { LoraConfig } from '../train/lora-config.ts';
import type { TrainConfig } from '../train/train-config.ts';
import type { TrainingRecord } from '../export/adapter-zip.ts';

/** Why the engine has no GPU: no WebGPU API in the worker, or an API with no adapter. */
export type ProbeResult =
  | { available: true; adapter: AdapterReport }
  | { available: false; cause: 'no-webgpu' | 'no-adapter'; reason: string };

export interface SelfTestArgs {
  /** Element count (default 100003: not a multiple of the workgroup size). */
  n?: number;
  /** mulberry32 seed of the random input (default 1234). */
  seed?: number;
  /** The `a` of y = a*x + y (default 0.75). */
  a?: number;
}

export interface SelfTestResult {
  n: number;
  seed: number;
  a: number;
  /** max |gpu - cpu| over all elements. */
  maxAbsError: number;
  /** Elements whose error is above `tolerance`. */
  mismatches: number;
  tolerance: number;
  /** Wall time of upload + kernel + readback, in milliseconds. */
  ms: number;
}

// ---- models ------------------------------------------------------------------------------

/** Where a model's files come from: files the user picked (a folder), or the studio's cache. */
export type ModelSource =
  | { kind: 'files'; name: string; files: File[] }
  | { kind: 'cache'; repo: string; revision?: string };

/** Hub access from the studio's settings. The token travels only in messages and headers, never in URLs. */
export interface HubSettings {
  endpoint?: string;
  token?: string;
}

export interface DownloadArgs extends HubSettings {
  /** Client-chosen id, named by cancelDownload. */
  downloadId: string;
  repo: string;
  revision?: string;
  /** Store a bitsandbytes 4-bit copy (<revision>+nf4) as each shard lands; it loads without quantizing. */
  quantize?: 'nf4' | 'fp4';
  /** With quantize: keep the full-precision files too (default: drop them once the copy is complete). */
  keepOriginal?: boolean;
}

export interface HubConfigArgs extends HubSettings {
  repo: string;
  revision?: string;
}

/** A Hub repo's config.json, read before downloading (for the memory estimate). */
export interface HubConfig {
  repo: string;
  modelType: string;
  dims: ModelDims;
  /** config.json names a bitsandbytes quantization_config. */
  prequantized: boolean;
}

export interface DownloadSummary {
  repo: string;
  revision: string;
  /** The cache entry to load: the 4-bit copy when one was made, else `revision`. */
  loadRevision: string;
  /** Whether the full-precision files were dropped after the 4-bit copy was made. */
  droppedOriginal: boolean;
  fetched: number;
  resumed: number;
  restarts: number;
  elapsedMs: number;
  persisted: boolean | null;
}

export interface ImportArgs {
  downloadId: string;
  name: string;
  files: File[];
}

export interface StorageInfo {
  /** Where models and checkpoints live ("IndexedDB "qlora-studio"", or "memory" without IndexedDB). */
  store: string;
  quota: number | null;
  usage: number | null;
  persisted: boolean | null;
}

export type QuantMode = 'nf4' | 'fp4' | 'none';

export interface ModelFileInfo {
  name: string;
  size: number;
}

/** What a model folder holds, read without touching the GPU (config, tokenizer, shard headers). */
export interface ModelInspection {
  name: string;
  /** Set when the files come from the studio's cache (a download or an imported folder). */
  cached: { repo: string; revision: string } | null;
  modelType: string;
  dims: ModelDims;
  /** Parameters from the safetensors headers (4-bit packed weights counted two per byte). */
  params: number;
  /** Whether the linears are already bitsandbytes 4-bit. */
  prequantized: boolean;
  files: ModelFileInfo[];
  bytes: number;
  hasTokenizer: boolean;
  chatTemplate: string | null;
}

export interface LoadModelArgs {
  source: ModelSource;
  quant?: QuantMode;
  /** Longest sequence the model is loaded for (RoPE table); default min(config, 4096). */
  maxPositions?: number;
}

export interface ModelInfo extends ModelInspection {
  quant: QuantMode;
  /** Bytes of the frozen base on the GPU. */
  weightBytes: number;
  /** All engine GPU bytes alive after loading. */
  gpuBytes: number;
  loadMs: number;
  vocabSize: number;
  bosToken: string | null;
  eosToken: string | null;
  /** The chat template's name, and whether it is the documented fallback (the model has none). */
  template: string;
  templateIsFallback: boolean;
}

// ---- data --------------------------------------------------------------------------------

export type DataSpec =
  | { kind: 'file'; file: File; fileKind?: FileKind | 'auto' }
  /** Bytes kept with a run in the store (a file or pasted text, saved when the run started). */
  | { kind: 'stored'; name: string; key: string; fileKind?: FileKind | 'auto' }
  /** Pasted text, or a sample the page fetched. */
  | { kind: 'text'; name: string; text: string; fileKind?: FileKind | 'auto' }
  /** A file the worker fetches (same origin: the shipped samples). */
  | { kind: 'url'; name: string; url: string; fileKind?: FileKind | 'auto' }
  | { kind: 'hf'; dataset: string; config?: string; split?: string; endpoint?: string; token?: string };

export interface DataOptions {
  format: FormatName | 'auto';
  labelMode: LabelMode;
  /** Tokens per sequence (the training seqLen). */
  maxLength: number;
  packing: boolean;
  evalSplit: number;
  seed: number;
  batchSize: number;
  /** Read at most this many rows (Hub datasets especially). */
  maxRows?: number;
}

export interface PreviewRuns {
  where: string;
  tokens: number;
  trainedTokens: number;
  runs: TrainedRun[];
}

export interface DataSummary {
  name: string;
  format: FormatName;
  /** Whether `format` was detected (the request said 'auto'). */
  detected: boolean;
  stats: DataStats;
  previews: PreviewRuns[];
  ms: number;
}

export interface PrepareDataArgs {
  spec: DataSpec;
  options: DataOptions;
  previews?: number;
}

// ---- training ----------------------------------------------------------------------------

export interface TrainArgs {
  /** The dataset and how to prepare it (reused when it equals the last prepareData). */
  data: DataSpec;
  dataOptions: DataOptions;
  lora: LoraConfig;
  train: TrainConfig;
  /** Evaluate every N steps (0: at the end only). */
  evalEvery: number;
  /** Checkpoint every N steps (0: on pause/stop and at the end only). */
  checkpointEvery: number;
  /**
   * Bytes of Adam m/v allowed on the GPU; beyond it, optimizer pages go to the store (paging).
   * null: no paging (everything resident).
   */
  optimizerBudget: number | null;
  runId: string;
  /** Continue `runId` from its newest checkpoint (after a reload or a lost device). */
  resume?: boolean;
  /** Shown in the runs list. */
  label: string;
  /** A Hub dataset's token for this session (never stored with the run). */
  hubToken?: string;
}

/** What the studio keeps with a run (beside the engine's checkpoints) to list and resume it. */
export interface RunRecord {
  runId: string;
  label: string;
  created: number;
  /** The cached model the run trains (repo and revision in the store). */
  model: { repo: string; revision: string; name: string };
  /** The dataset as it can be prepared again (files and pasted text are stored with the run). */
  data: Exclude<DataSpec, { kind: 'file' } | { kind: 'text' }>;
  dataOptions: DataOptions;
  lora: LoraConfig;
  train: TrainConfig;
  evalEvery: number;
  checkpointEvery: number;
  optimizerBudget: number | null;
}

export interface RunListing {
  record: RunRecord;
  /** From the newest checkpoint (null: none written yet). */
  step: number | null;
  totalSteps: number | null;
  finished: boolean;
  history: Array<{ step: number; loss: number; evalLoss?: number; lr: number; gradNorm: number; tokensPerSecond: number }>;
  initialEvalLoss: number | null;
  evalLoss: number | null;
  updated: number;
}

export type TrainState = 'preparing' | 'running' | 'pausing' | 'paused' | 'stopping' | 'done' | 'stopped' | 'error';

export interface TrainSummary {
  runId: string;
  state: 'done' | 'stopped';
  steps: number;
  totalSteps: number;
  initialEvalLoss: number | null;
  evalLoss: number | null;
  ms: number;
  resumedFrom?: number;
  paging?: PagingStats;
}

/** Optimizer-page traffic between the GPU and the store so far in a run. */
export interface PagingStats {
  pagesIn: number;
  pagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** GPU bytes of Adam m/v allowed. */
  budget: number;
}

export interface StepReport {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  ms: number;
  tokensPerSecond: number;
  evalLoss?: number;
  /** Wall time of the run so far (pauses excluded). */
  elapsedMs: number;
  memory: { live: number; peak: number };
  paging?: PagingStats;
}

// ---- generation --------------------------------------------------------------------------

export interface GenerateArgs {
  /** Client-chosen id: token events carry it, cancelGenerate names it. */
  requestId: string;
  prompt: string;
  /** Apply the model's chat template to the prompt as one user turn. */
  chat: boolean;
  /** Use the trained adapter (when there is one). */
  adapter: boolean;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

export interface GenerateResult {
  text: string;
  tokens: number;
  finish: 'eos' | 'length' | 'stopped' | 'context';
  tokensPerSecond: number;
}

// ---- adapters and exports ---------------------------------------------------------------

/** The current adapter as a PEFT folder's two files (for share links). */
export interface AdapterFiles {
  /** adapter_config.json text. */
  config: string;
  /** adapter_model.safetensors bytes. */
  weights: Uint8Array;
  /** The base model's repo id written into the config. */
  baseModel: string;
}

export interface LoadAdapterArgs {
  config: string;
  weights: Uint8Array;
}

export interface LoadedAdapterInfo {
  r: number;
  alpha: number;
  targetModules: string[];
  parameters: number;
}

export type ExportKind = 'adapter-zip' | 'training-config' | 'loss-csv' | 'merged-zip';

export interface ExportArgs {
  kind: ExportKind;
  /** The run as the studio shows it (model card, training_config.json, loss_history.csv). */
  record: TrainingRecord;
  title?: string;
}

export interface ExportedFile {
  name: string;
  mime: string;
  /**
   * The file: bytes built in memory (small exports), or a disk-backed File in the browser's private
   * file system (the merged model, streamed there chunk by chunk; structured clone does not copy it).
   */
  data: Uint8Array | Blob;
  /** Its size in bytes. */
  bytes: number;
  /** Where the worker built it: in memory, or streamed to a temp file in OPFS. */
  storage: 'memory' | 'opfs';
  /** What the user should know about how it was built (e.g. in memory: this browser has no OPFS). */
  warning?: string;
}

/** A published adapter (a Hub repo, or an https folder) for the worker to fetch. */
export interface FetchAdapterArgs {
  adapter: { kind: 'hub'; repo: string; revision?: string } | { kind: 'url'; url: string };
  /** The studio's Hub endpoint (Hub adapters); the token, if set, is sent to it only. */
  endpoint?: string;
  token?: string;
  /** The base model the adapter is for: its adapter_config.json must name this repo (or none). */
  baseModel?: string;
  /** Accept an http://localhost adapter URL (the studio itself runs on localhost: tests). */
  allowHttpLocalhost?: boolean;
}

/** A fetched adapter, checked (safetensors header, PEFT config, tensor names and shapes, finite values). */
export interface FetchedAdapter {
  config: string;
  weights: Uint8Array;
  /** The URLs fetched: adapter_config.json, then adapter_model.safetensors. */
  urls: string[];
}

// ---- events ------------------------------------------------------------------------------

export type EngineEvent =
  | { kind: 'load-progress'; done: number; total: number; name: string }
  | { kind: 'train-state'; runId: string; state: TrainState; message?: string }
  | { kind: 'train-eval'; runId: string; step: number; evalLoss: number }
  | ({ kind: 'train-step'; runId: string } & StepReport)
  | { kind: 'token'; requestId: string; text: string }
  | { kind: 'download-progress'; downloadId: string; progress: DownloadProgress }
  | { kind: 'train-note'; runId: string; message: string }
  | { kind: 'checkpoint'; runId: string; step: number; bytes: number; ms: number };

// ---- the command table -------------------------------------------------------------------

type Empty = Record<string, never>;

/** Command name → its arguments and its result. */
export interface EngineCommands {
  probe: { args: Empty; result: ProbeResult };
  selftest: { args: SelfTestArgs; result: SelfTestResult };
  inspectModel: { args: { source: ModelSource }; result: ModelInspection };
  hubConfig: { args: HubConfigArgs; result: HubConfig };
  download: { args: DownloadArgs; result: DownloadSummary };
  importModel: { args: ImportArgs; result: { repo: string; revision: string } };
  cancelDownload: { args: { downloadId: string }; result: { cancelled: boolean } };
  listCache: { args: Empty; result: CachedModel[] };
  deleteCached: { args: { repo: string; revision?: string }; result: { deleted: number } };
  storageInfo: { args: Empty; result: StorageInfo };
  listRuns: { args: Empty; result: RunListing[] };
  deleteRun: { args: { runId: string }; result: { deleted: boolean } };
  loadModel: { args: LoadModelArgs; result: ModelInfo };
  unloadModel: { args: Empty; result: { gpuBytes: number } };
  prepareData: { args: PrepareDataArgs; result: DataSummary };
  train: { args: TrainArgs; result: TrainSummary };
  pauseTraining: { args: Empty; result: { state: TrainState | 'idle' } };
  resumeTraining: { args: Empty; result: { state: TrainState | 'idle' } };
  stopTraining: { args: Empty; result: { state: TrainState | 'idle' } };
  generate: { args: GenerateArgs; result: GenerateResult };
  cancelGenerate: { args: { requestId: string }; result: { cancelled: boolean } };
  adapterFiles: { args: Empty; result: AdapterFiles };
  loadAdapter: { args: LoadAdapterArgs; result: LoadedAdapterInfo };
  fetchAdapter: { args: FetchAdapterArgs; result: FetchedAdapter };
  exportFile: { args: ExportArgs; result: ExportedFile };
}

export type CommandName = keyof EngineCommands;
export type CommandArgs<K extends CommandName> = EngineCommands[K]['args'];
export type CommandResult<K extends CommandName> = EngineCommands[K]['result'];

export type EngineRequest<K extends CommandName = CommandName> = K extends CommandName
  ? { id: number; command: K; args: CommandArgs<K> }
  : never;

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** A machine-readable kind when the error has one (HubError: 'auth', 'quota', 'network', ...). */
  code?: string;
}

export type ResultReply<K extends CommandName = CommandName> = K extends CommandName
  ? { id: number; type: 'result'; command: K; result: CommandResult<K> }
  : never;

export type ErrorReply =
  | { id: number; type: 'error'; command: CommandName | null; error: SerializedError }
  | { id: null; type: 'error'; command: null; error: SerializedError };

export interface EventMessage {
  id: null;
  type: 'event';
  event: EngineEvent;
}

export type EngineReply = ResultReply | ErrorReply | EventMessage;

export const COMMANDS: readonly CommandName[] = [
  'probe',
  'selftest',
  'inspectModel',
  'hubConfig',
  'download',
  'importModel',
  'cancelDownload',
  'listCache',
  'deleteCached',
  'storageInfo',
  'listRuns',
  'deleteRun',
  'loadModel',
  'unloadModel',
  'prepareData',
  'train',
  'pauseTraining',
  'resumeTraining',
  'stopTraining',
  'generate',
  'cancelGenerate',
  'adapterFiles',
  'loadAdapter',
  'fetchAdapter',
  'exportFile',
];

export function isCommandName(x: unknown): x is CommandName {
  return typeof x === 'string' && (COMMANDS as readonly string[]).includes(x);
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, stack: err.stack, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : String(err) };
}

const EVENT_KINDS = ['load-progress', 'train-state', 'train-eval', 'train-step', 'token', 'download-progress', 'train-note', 'checkpoint'];

/** A structurally valid message from the worker (anything else is a protocol bug, reported as such). */
export function isEngineReply(x: unknown): x is EngineReply {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  if (m.type === 'result') return typeof m.id === 'number' && isCommandName(m.command);
  if (m.type === 'error') {
    const e = m.error as Record<string, unknown> | null | undefined;
    return (typeof m.id === 'number' || m.id === null) && typeof e?.message === 'string';
  }
  if (m.type === 'event') {
    const e = m.event as Record<string, unknown> | null | undefined;
    return m.id === null && typeof e?.kind === 'string' && EVENT_KINDS.includes(e.kind);
  }
  return false;
}
