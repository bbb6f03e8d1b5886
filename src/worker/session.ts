// The engine's state inside the worker: the store (IndexedDB in the browser: cached models, runs
// and their checkpoints), the model folder (config, tokenizer, chat template), the model on the
// GPU, the prepared dataset, the training run and the trained adapter. Every method is engine
// code (no DOM); the worker host (engine-host.ts) routes protocol commands here and forwards the
// events it emits. GPU work is serialized by one lock, so a generation asked for while a run is
// paused never interleaves with a training step.

import type { GpuRuntime } from '../gpu/runtime.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import { blobModelFiles, type ModelFiles } from '../model/model-files.ts';
import { openCheckpoint } from '../model/weights.ts';
import { createTokenizer, type TextTokenizer } from '../model/tokenizer.ts';
import { findQuantizedLinears } from '../quant/bnb-tensors.ts';
import { prepareData, type DataSource, type PreparedData } from '../data/pipeline.ts';
import { blobChunks, bytesChunks } from '../data/stream.ts';
import { trainedRuns } from '../data/preview.ts';
import { chatTemplateFromConfig, type ChatTemplate } from '../data/template.ts';
import { createDataTokenizer, type DataTokenizer } from '../data/tokenize.ts';
import { DataError } from '../data/errors.ts';
import { loadGpuModel } from '../llm/load.ts';
import type { GpuModel } from '../llm/model.ts';
import { LoraAdapter } from '../llm/lora.ts';
import { generate as generateTokens } from '../llm/generate.ts';
import { dimsFromConfig, paramsFromSafetensorsHeaders } from '../llm/memory-estimate.ts';
import { runPrefix } from '../storage/layout.ts';
import { saveAdapter, ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../llm/adapter-io.ts';
import { bytesSource } from '../formats/byte-source.ts';
import { openSafetensors } from '../formats/safetensors.ts';
import { parseAdapterConfig, readAdapter } from '../train/peft.ts';
import { peftLoraName } from '../model/names.ts';
import { adapterZip, lossHistoryCsv, trainingConfigJson } from '../export/adapter-zip.ts';
import { mergeOnGpu } from '../export/merge.ts';
import { collectZip, ZIP_MAX_BYTES, type FileSink } from '../export/sink.ts';
import { diskZipSink, openExportFile } from './opfs-sink.ts';
import { mergedZipBytes } from './merged-size.ts';
import { openStoredModel } from '../storage/model-store.ts';
import type {
  AdapterFiles,
  ExportArgs,
  ExportedFile,
  LoadAdapterArgs,
  LoadedAdapterInfo,
  DataOptions,
  DataSpec,
  DataSummary,
  GenerateArgs,
  GenerateResult,
  LoadModelArgs,
  ModelInfo,
  ModelInspection,
  ModelSource,
  PrepareDataArgs,
  RunRecord,
  TrainArgs,
  TrainState,
  TrainSummary,
} from './protocol.ts';
import { TrainingRun } from './training-run.ts';
import { RUN_DATASET, RUN_RECORD, safeName, StoreService, UserError, type SessionDeps } from './store-service.ts';

export { UserError, type SessionDeps } from './store-service.ts';

/** Why a merged model was built in memory (the browser has no Origin Private File System). */
export const NO_OPFS_WARNING =
  "This browser has no private file system (OPFS), so the merged model was built in the engine's memory: a large model may not fit. A recent Chrome, Edge, Firefox or Safari streams it to disk instead.";

interface Folder {
  /** Identifies the source (picked files by name, size and date; a cached repo by id). */
  key: string;
  name: string;
  files: ModelFiles;
  config: ModelConfig;
  inspection: ModelInspection;
  dataTokenizer: DataTokenizer;
  textTokenizer: TextTokenizer;
  template: ChatTemplate;
}

interface Loaded {
  folder: Folder;
  model: GpuModel;
  info: ModelInfo;
  rt: GpuRuntime;
}

/** A simple FIFO lock: GPU work of training and generation never interleaves. */
export class GpuLock {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}


export class EngineSession extends StoreService {
  private folder: Folder | null = null;
  private loaded: Loaded | null = null;
  private data: { specKey: string; key: string; prepared: PreparedData } | null = null;
  private run: TrainingRun | null = null;
  private adapter: LoraAdapter | null = null;
  /** The adapter of the run in progress (usable by the playground while the run is paused). */
  private liveLora: LoraAdapter | null = null;
  private readonly lock = new GpuLock();
  private readonly generations = new Map<string, { cancelled: boolean }>();

  constructor(deps: SessionDeps) {
    super(deps);
  }

  /** Before a cached model is deleted: refuse while it trains, else unload it. */
  override async beforeDeleteModel(repo: string, revision?: string): Promise<void> {
    const cur = this.folder?.inspection.cached;
    if (cur && cur.repo === repo && (!revision || revision === cur.revision)) {
      if (this.run?.active) throw new UserError('This model is being trained: stop the run before deleting it.');
      this.unload();
      this.folder = null;
    }
  }

  /** Before a run is deleted: refuse while it is the one training. */
  override async beforeDeleteRun(runId: string): Promise<void> {
    if (this.run?.active && this.run.runId === runId) throw new UserError('This run is in progress: stop it first.');
  }

  // ---- models --------------------------------------------------------------------------

  async inspectModel(source: ModelSource): Promise<ModelInspection> {
    const folder = await this.openFolder(source);
    return folder.inspection;
  }

  async loadModel(rt: GpuRuntime, args: LoadModelArgs): Promise<ModelInfo> {
    if (this.run?.active) throw new UserError('A training run is in progress: stop it before loading another model.');
    const folder = await this.openFolder(args.source);
    this.unload();
    const t0 = performance.now();
    const quant = args.quant ?? 'nf4';
    const { model, quant: used } = await loadGpuModel(rt, folder.files, {
      quant,
      maxPositions: args.maxPositions,
      onProgress: (done, total, name) => this.deps.emit({ kind: 'load-progress', done, total, name }),
    });
    const info: ModelInfo = {
      ...folder.inspection,
      quant: used,
      weightBytes: model.weightBytes,
      gpuBytes: rt.memory.live,
      loadMs: performance.now() - t0,
      vocabSize: folder.config.vocabSize,
      bosToken: folder.textTokenizer.bosToken,
      eosToken: folder.textTokenizer.eosToken,
      template: folder.template.name,
      templateIsFallback: folder.template.isFallback,
    };
    this.loaded = { folder, model, info, rt };
    void rt.lost.then(() => {
      if (this.loaded?.rt === rt) {
        this.loaded = null;
        this.adapter = null;
      }
    });
    return info;
  }

  unload(): void {
    if (this.loaded) {
      this.adapter?.destroy();
      this.adapter = null;
      this.liveLora = null;
      this.loaded.model.destroy();
      this.loaded = null;
    }
  }

  get gpuBytes(): number {
    return this.loaded?.rt.memory.live ?? 0;
  }

  // ---- data ----------------------------------------------------------------------------

  async prepareData(args: PrepareDataArgs): Promise<DataSummary> {
    const folder = this.requireFolder('prepare data');
    const t0 = performance.now();
    const prepared = await this.prepare(folder, args.spec, args.options, args.previews ?? 3);
    const tok = folder.dataTokenizer;
    return {
      name: prepared.stats.source,
      format: prepared.format,
      detected: args.options.format === 'auto',
      stats: prepared.stats,
      previews: prepared.previews.map((p) => ({
        where: p.where,
        tokens: p.ids.length,
        trainedTokens: p.trained.reduce((a, b) => a + b, 0),
        runs: trainedRuns(p, tok),
      })),
      ms: performance.now() - t0,
    };
  }

  private async prepare(folder: Folder, spec: DataSpec, options: DataOptions, previews: number): Promise<PreparedData> {
    const specKey = dataSpecKey(spec);
    const key = JSON.stringify({ folder: folder.key, options, previews });
    if (this.data && this.data.specKey === specKey && this.data.key === key) return this.data.prepared;
    const source = await this.dataSource(spec);
    const prepared = await prepareData(
      source,
      {
        format: options.format,
        maxLength: options.maxLength,
        packing: options.packing,
        labelMode: options.labelMode,
        evalSplit: options.evalSplit,
        seed: options.seed,
        batchSize: options.batchSize,
        maxRows: options.maxRows,
        padding: options.packing ? 'max-length' : 'longest',
        previews,
      },
      folder.dataTokenizer,
      folder.template,
    );
    this.data = { specKey, key, prepared };
    return prepared;
  }

  private async dataSource(spec: DataSpec): Promise<DataSource> {
    switch (spec.kind) {
      case 'file':
        return { kind: 'file', name: spec.file.name, chunks: blobChunks(spec.file), fileKind: spec.fileKind };
      case 'text':
        if (!spec.text.trim()) throw new DataError('the pasted text is empty', spec.name);
        return { kind: 'file', name: spec.name, chunks: bytesChunks(spec.text), fileKind: spec.fileKind };
      case 'stored': {
        const bytes = await this.store.get(spec.key);
        if (!bytes) throw new DataError('the dataset kept with this run is gone from the browser storage', spec.name);
        return { kind: 'file', name: spec.name, chunks: bytesChunks(bytes), fileKind: spec.fileKind };
      }
      case 'url': {
        const res = await (this.deps.fetch ?? fetch)(spec.url);
        if (!res.ok) throw new DataError(`could not fetch the dataset (HTTP ${res.status})`, spec.name);
        return { kind: 'file', name: spec.name, chunks: bytesChunks(new Uint8Array(await res.arrayBuffer())), fileKind: spec.fileKind };
      }
      case 'hf':
        return {
          kind: 'hf',
          dataset: spec.dataset,
          options: { endpoint: spec.endpoint || undefined, token: spec.token || undefined, config: spec.config || undefined, split: spec.split || undefined },
        };
    }
  }

  // ---- training ------------------------------------------------------------------------

  async train(args: TrainArgs): Promise<TrainSummary> {
    if (this.run?.active) throw new UserError('A training run is already in progress.');
    const loaded = this.requireLoaded('train');
    const cached = loaded.folder.inspection.cached;
    const emitState = (state: TrainState, message?: string) => this.deps.emit({ kind: 'train-state', runId: args.runId, state, message });
    emitState('preparing');
    let prepared: PreparedData;
    let record: RunRecord;
    try {
      let spec = args.data;
      if (args.resume) {
        const raw = await this.store.get(runPrefix(args.runId) + RUN_RECORD);
        if (!raw) throw new UserError(`Run ${args.runId} is not in the browser storage any more, so it cannot resume.`);
        record = JSON.parse(new TextDecoder().decode(raw)) as RunRecord;
        if (cached && (record.model.repo !== cached.repo || record.model.revision !== cached.revision)) {
          throw new UserError(`Run ${args.runId} trained ${record.model.name}; load that model to resume it.`);
        }
        spec = record.data.kind === 'hf' ? { ...record.data, token: args.hubToken } : record.data;
      } else {
        record = await this.saveRecord(args, loaded);
      }
      prepared = await this.prepare(loaded.folder, spec, args.resume ? record.dataOptions : args.dataOptions, 3);
    } catch (e) {
      emitState('error', (e as Error).message);
      throw e;
    }
    this.adapter?.destroy();
    this.adapter = null;
    const { rt, model } = loaded;
    const cfg = args.resume ? record : args;
    const lora = LoraAdapter.init(rt, loaded.folder.config, {
      r: cfg.lora.r,
      alpha: cfg.lora.alpha,
      dropout: cfg.lora.dropout,
      useRslora: cfg.lora.useRslora,
      targetModules: cfg.lora.targetModules,
      seed: cfg.lora.seed,
    });
    const run = new TrainingRun(rt, model, lora, prepared, {
      runId: args.runId,
      train: cfg.train,
      evalEvery: cfg.evalEvery,
      checkpointEvery: cfg.checkpointEvery,
      optimizerBudget: cfg.optimizerBudget,
      store: this.store,
      meta: { modelId: `${record.model.repo}@${record.model.revision}`, options: { data: dataSpecKey(record.data), dataOptions: record.dataOptions } },
      emit: this.deps.emit,
      lock: this.lock,
    });
    this.run = run;
    this.liveLora = lora;
    try {
      const summary = await run.run(args.resume ?? false);
      this.adapter = lora;
      return summary;
    } catch (e) {
      lora.destroy();
      throw e;
    } finally {
      if (this.liveLora === lora) this.liveLora = null;
    }
  }

  /** Writes the run's record, and the dataset bytes when they came from a file or a paste. */
  private async saveRecord(args: TrainArgs, loaded: Loaded): Promise<RunRecord> {
    const prefix = runPrefix(args.runId);
    const cached = loaded.folder.inspection.cached;
    let data: RunRecord['data'];
    const d = args.data;
    if (d.kind === 'file' || d.kind === 'text') {
      const bytes = d.kind === 'file' ? new Uint8Array(await d.file.arrayBuffer()) : new TextEncoder().encode(d.text);
      await this.store.put(prefix + RUN_DATASET, bytes);
      data = { kind: 'stored', name: d.kind === 'file' ? d.file.name : d.name, key: prefix + RUN_DATASET, fileKind: d.fileKind };
    } else if (d.kind === 'hf') {
      data = { kind: 'hf', dataset: d.dataset, config: d.config, split: d.split, endpoint: d.endpoint }; // never the token
    } else {
      data = d;
    }
    const record: RunRecord = {
      runId: args.runId,
      label: args.label,
      created: Date.now(),
      model: { repo: cached?.repo ?? `local/${safeName(loaded.folder.name)}`, revision: cached?.revision ?? 'unsaved', name: loaded.folder.name },
      data,
      dataOptions: args.dataOptions,
      lora: args.lora,
      train: args.train,
      evalEvery: args.evalEvery,
      checkpointEvery: args.checkpointEvery,
      optimizerBudget: args.optimizerBudget,
    };
    await this.store.put(prefix + RUN_RECORD, new TextEncoder().encode(JSON.stringify(record, null, 1)));
    return record;
  }

  pauseTraining(): TrainState | 'idle' {
    return this.run?.pause() ?? 'idle';
  }

  resumeTraining(): TrainState | 'idle' {
    return this.run?.resume() ?? 'idle';
  }

  stopTraining(): TrainState | 'idle' {
    return this.run?.stop() ?? 'idle';
  }

  // ---- generation ----------------------------------------------------------------------

  async generate(args: GenerateArgs): Promise<GenerateResult> {
    const loaded = this.requireLoaded('generate');
    const { folder, model } = loaded;
    const tok = folder.textTokenizer;
    const text = args.chat ? folder.template.render([{ role: 'user', content: args.prompt }], { addGenerationPrompt: true }) : args.prompt;
    // A rendered chat already holds its BOS when the template writes it.
    const bos = folder.template.bosToken;
    const ids = tok.encode(text, { addBos: args.chat && bos && text.startsWith(bos) ? false : undefined });
    const lora = args.adapter ? this.currentAdapter() : null;
    if (args.adapter && !lora) throw new UserError('There is no trained adapter yet: train first, or generate with the base model.');
    const job = { cancelled: false };
    this.generations.set(args.requestId, job);
    const decoder = tok.createDecoder();
    let out = '';
    try {
      const r = await this.lock.run(() =>
        generateTokens(model, ids, {
          maxNewTokens: args.maxNewTokens,
          temperature: args.temperature,
          topK: args.topK,
          topP: args.topP,
          repetitionPenalty: args.repetitionPenalty,
          seed: args.seed,
          stopIds: tok.eosIds,
          lora,
          onToken: (id) => {
            const piece = decoder.push(id);
            if (piece) {
              out += piece;
              this.deps.emit({ kind: 'token', requestId: args.requestId, text: piece });
            }
            return !job.cancelled;
          },
        }),
      );
      const rest = decoder.flush();
      if (rest) {
        out += rest;
        this.deps.emit({ kind: 'token', requestId: args.requestId, text: rest });
      }
      return { text: out, tokens: r.ids.length, finish: r.finish, tokensPerSecond: r.tokensPerSecond };
    } finally {
      this.generations.delete(args.requestId);
    }
  }

  cancelGenerate(requestId: string): boolean {
    const job = this.generations.get(requestId);
    if (job) job.cancelled = true;
    return !!job;
  }

  // ---- adapters and exports ------------------------------------------------------------

  /** The trained (or loaded) adapter, else the one of a run in progress. */
  private currentAdapter(): LoraAdapter | null {
    return this.adapter ?? this.liveLora;
  }

  private requireAdapter(what: string): { loaded: Loaded; lora: LoraAdapter } {
    const loaded = this.requireLoaded(what);
    const lora = this.currentAdapter();
    if (!lora) throw new UserError(`There is no adapter yet: train one (or open a demo link) to ${what}.`, 'NoAdapter');
    return { loaded, lora };
  }

  /** The base model's repo id for exports and links (the cache repo; never a local path). */
  private baseModelId(loaded: Loaded): string {
    return loaded.folder.inspection.cached?.repo ?? `local/${safeName(loaded.folder.name)}`;
  }

  async adapterFiles(): Promise<AdapterFiles> {
    const { loaded, lora } = this.requireAdapter('share it');
    const baseModel = this.baseModelId(loaded);
    const files = await this.lock.run(() => saveAdapter(loaded.rt, lora, baseModel));
    return { config: files[ADAPTER_CONFIG] as string, weights: files[ADAPTER_WEIGHTS] as Uint8Array, baseModel };
  }

  /** Loads a PEFT adapter (config text + safetensors bytes) for the loaded model; it replaces the current one. */
  async loadAdapterBytes(args: LoadAdapterArgs): Promise<LoadedAdapterInfo> {
    const loaded = this.requireLoaded('load an adapter');
    if (this.run?.active) throw new UserError('A training run is in progress: stop it before loading another adapter.');
    const config = loaded.folder.config;
    const parsed = parseAdapterConfig(args.config, ADAPTER_CONFIG, { numLayers: config.numLayers });
    const reader = await openSafetensors(bytesSource(args.weights, ADAPTER_WEIGHTS));
    const tensors = await readAdapter(reader, parsed.config, config);
    const c = parsed.config;
    const adapter = LoraAdapter.fromTensors(
      loaded.rt,
      config,
      { r: c.r, alpha: c.alpha, dropout: c.dropout, useRslora: c.useRslora, targetModules: c.targetModules, seed: c.seed },
      (l, t) => ({ a: tensors.get(peftLoraName(l, t, 'A'))!.data, b: tensors.get(peftLoraName(l, t, 'B'))!.data }),
    );
    await this.lock.run(async () => {
      this.adapter?.destroy();
      this.adapter = adapter;
    });
    return { r: c.r, alpha: c.alpha, targetModules: [...c.targetModules], parameters: adapter.parameterCount };
  }

  /**
   * One export, built in the worker. Small ones (adapter zip, config, CSV) are bytes in memory; the
   * merged model streams tensor by tensor into a temp file in the browser's private file system
   * (OPFS) and the page gets a disk-backed File, so memory does not grow with the model. Without
   * OPFS at all, the merged zip is built in memory, with a warning in the result.
   */
  async exportFile(args: ExportArgs): Promise<ExportedFile> {
    const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'model';
    const inMemory = (name: string, mime: string, data: Uint8Array, warning?: string): ExportedFile => ({
      name,
      mime,
      data,
      bytes: data.byteLength,
      storage: 'memory',
      ...(warning ? { warning } : {}),
    });
    if (args.kind === 'training-config' || args.kind === 'loss-csv') {
      const loaded = this.requireLoaded('export');
      const baseModel = args.record.baseModel ?? this.baseModelId(loaded);
      const name = slug(baseModel.split('/').pop()!);
      if (args.kind === 'training-config') {
        const text = trainingConfigJson(args.record, { baseModel });
        return inMemory(`${name}-training_config.json`, 'application/json', new TextEncoder().encode(text));
      }
      const text = lossHistoryCsv(args.record.result?.history ?? []);
      return inMemory(`${name}-loss_history.csv`, 'text/csv', new TextEncoder().encode(text));
    }
    const { loaded, lora } = this.requireAdapter('export it');
    const baseModel = this.baseModelId(loaded);
    const name = slug(baseModel.split('/').pop()!);
    if (args.kind === 'adapter-zip') {
      const files = await this.lock.run(() => saveAdapter(loaded.rt, lora, baseModel));
      const data = await adapterZip({ files, baseModel, record: { ...args.record, baseModel }, title: args.title });
      return inMemory(`${name}-lora-adapter.zip`, 'application/zip', data);
    }
    const fileName = `${name}-merged-f16.zip`;
    const ckpt = await openCheckpoint(loaded.folder.files);
    const merge = (sink: FileSink) => mergeOnGpu(loaded.rt, loaded.model, lora, ckpt, sink, { dtype: 'f16', files: loaded.folder.files });
    const opfs = this.deps.opfs;
    if (!opfs) {
      const data = await this.lock.run(async () => {
        const zip = collectZip();
        await merge(zip);
        return zip.finish();
      });
      return inMemory(fileName, 'application/zip', data, NO_OPFS_WARNING);
    }
    const expectedBytes = mergedZipBytes(loaded.folder.config, loaded.folder.inspection.files, 'f16');
    if (expectedBytes > ZIP_MAX_BYTES) {
      throw new UserError(
        `The merged model would be a ${(expectedBytes / 2 ** 30).toFixed(1)} GiB zip; zip files without ZIP64 hold at most 4 GiB. Export the adapter, or merge with the command line (qlora export <adapter> --model <model> --merged --out <folder>).`,
      );
    }
    const disk = await openExportFile(opfs, { download: fileName, expectedBytes });
    try {
      const file = await this.lock.run(async () => {
        const zip = diskZipSink(disk);
        await merge(zip);
        return zip.finish();
      });
      // The temp file stays: the page downloads from it; the next export removes it.
      return { name: fileName, mime: 'application/zip', data: file, bytes: file.size, storage: 'opfs' };
    } catch (e) {
      await disk.abort();
      throw e;
    }
  }

  // ---- internals -----------------------------------------------------------------------

  private requireFolder(what: string): Folder {
    if (!this.folder) throw new UserError(`Pick a model first: its tokenizer and chat template are needed to ${what}.`, 'NoModel');
    return this.folder;
  }

  private requireLoaded(what: string): Loaded {
    if (!this.loaded) throw new UserError(`Load a model first to ${what}.`, 'NoModel');
    return this.loaded;
  }

  private async openFolder(source: ModelSource): Promise<Folder> {
    const key = sourceKey(source);
    if (this.folder && this.folder.key === key) return this.folder;
    let files: ModelFiles;
    let name: string;
    let cached: ModelInspection['cached'] = null;
    if (source.kind === 'files') {
      if (!source.files.length) throw new UserError('The folder is empty.', 'UnsupportedModel');
      files = blobModelFiles(source.files, source.name);
      name = source.name;
    } else {
      const revision = source.revision || 'main';
      files = await openStoredModel(this.store, source.repo, revision);
      name = source.repo.startsWith('local/') ? source.repo.slice('local/'.length) : source.repo;
      cached = { repo: source.repo, revision };
    }
    const list = await files.list();
    if (!list.includes('config.json')) {
      throw new UserError(`${name} has no config.json: pick the folder that holds config.json, tokenizer.json and the .safetensors weights.`, 'UnsupportedModel');
    }
    let config: ModelConfig;
    try {
      config = parseModelConfig(await files.text('config.json'), `${name}/config.json`);
    } catch (e) {
      throw new UserError(`This model is not supported: ${(e as Error).message}`, 'UnsupportedModel');
    }
    if (!list.includes('tokenizer.json')) {
      throw new UserError(`${name} has no tokenizer.json: the studio needs the model's fast tokenizer file.`, 'UnsupportedModel');
    }
    let ckpt;
    try {
      ckpt = await openCheckpoint(files);
    } catch (e) {
      throw new UserError(`${name}: ${(e as Error).message}`, 'UnsupportedModel');
    }
    const headers = [Object.fromEntries(ckpt.names().map((n) => [n, ckpt.info(n)]))];
    const tcfgText = list.includes('tokenizer_config.json') ? await files.text('tokenizer_config.json') : null;
    const tcfg = tcfgText ? (JSON.parse(tcfgText) as Record<string, unknown>) : {};
    const jinja = list.includes('chat_template.jinja') ? await files.text('chat_template.jinja') : null;
    const tjson = await files.text('tokenizer.json');
    const template = chatTemplateFromConfig(tcfg, { chatTemplateJinja: jinja });
    const sizes = await Promise.all(list.map(async (f) => ({ name: f, size: (await files.open(f)).size })));
    const inspection: ModelInspection = {
      name,
      cached,
      modelType: config.modelType,
      dims: dimsFromConfig(config),
      params: paramsFromSafetensorsHeaders(headers),
      prequantized: findQuantizedLinears(ckpt.names()).length > 0,
      files: sizes.sort((a, b) => a.name.localeCompare(b.name)),
      bytes: sizes.reduce((s, f) => s + f.size, 0),
      hasTokenizer: true,
      chatTemplate: template.isFallback ? null : template.name,
    };
    const folder: Folder = {
      key,
      name,
      files,
      config,
      inspection,
      dataTokenizer: createDataTokenizer(tjson, tcfg),
      textTokenizer: createTokenizer(tjson, tcfg, config),
      template,
    };
    this.data = null; // another tokenizer: prepare again
    this.folder = folder;
    return folder;
  }
}

function sourceKey(source: ModelSource): string {
  if (source.kind === 'cache') return `cache:${source.repo}@${source.revision || 'main'}`;
  const files = source.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).sort();
  return `files:${source.name}:${files.join('|')}`;
}

function dataSpecKey(spec: DataSpec): string {
  switch (spec.kind) {
    case 'file':
      return `file:${spec.file.name}:${spec.file.size}:${spec.file.lastModified}:${spec.fileKind ?? 'auto'}`;
    case 'text':
      return `text:${spec.name}:${spec.text.length}:${hashString(spec.text)}:${spec.fileKind ?? 'auto'}`;
    case 'stored':
      return `stored:${spec.key}`;
    case 'url':
      return `url:${spec.url}`;
    case 'hf':
      return `hf:${spec.dataset}:${spec.config ?? ''}:${spec.split ?? ''}:${spec.endpoint ?? ''}`;
  }
}

function hashString(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}
