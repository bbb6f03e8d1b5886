// Quantize while streaming: as each file of a model download lands in the store, a 4-bit copy is
// built next to it, so a later visit loads the bnb-4bit model straight from the store (and the
// original shards may be dropped). Engine code: a ByteStore only, no Node APIs.
//
// Key layout (see ./layout.ts): the copy of <repo>@<rev> quantized with <type> (nf4|fp4) is the
// model entry <repo>@<rev>+<type>, i.e.
//   v1/models/<repo>@<rev>%2B<type>/manifest.json   ModelManifest with `quantized: {from: <rev>, type,
//                                                   blocksize, doubleQuant, fromCommit}`
//   v1/models/<repo>@<rev>%2B<type>/files/<file>    the same file names as the source:
//     *.safetensors                   the same tensors, decoder linears (LINEAR_WEIGHT) in bitsandbytes'
//                                     4-bit layout (weight U8 + absmax/quant_map/nested_*/quant_state),
//                                     every other tensor byte for byte
//     config.json                     the source's, plus quantization_config (bnbQuantizationConfig)
//     model.safetensors.index.json    rebuilt from the 4-bit shards (when the source is sharded)
//     anything else                   copied byte for byte (tokenizer, generation config, …)
// ("+" is URI-encoded in keys like every revision; `qlora generate <repo>@main+nf4` opens it.)
//
// Atomic: the derived manifest is written with `complete: false` before any file and only turns
// complete in finish(), once every file (index last) is committed, so a half-made 4-bit model is
// listed as partial and never opens. An interrupted run keeps the files already done (same options
// and source commit) and continues. With keepOriginal false the source entry is deleted after the
// 4-bit one is complete.
//
// Quantization runs on the CPU with quantizeLinear (bit-exact with the GPU kernel and with
// quantizeCheckpoint); the GPU kernel of src/quant is the faster path for big models. One shard is
// held in memory at a time (its 4-bit output and one source tensor).

import { openSafetensors } from '../formats/safetensors.ts';
import { buildIndex, INDEX_FILE, parseIndex } from '../formats/safetensors-index.ts';
import { writeSafetensors, type TensorData } from '../formats/safetensors.ts';
import { bnbQuantizationConfig, quantizeLinear, toBnbTensors } from '../quant/bnb-tensors.ts';
import { validateBlocksize } from '../quant/blockwise4.ts';
import { LINEAR_WEIGHT } from '../quant/convert.ts';
import type { QuantDtype } from '../quant/quant-state.ts';
import { fileKey, migrate, LAYOUT_VERSION, type DerivedQuantization, type ManifestFile, type ModelManifest } from './layout.ts';
import { deleteModel, readManifest, storedSource, writeManifest } from './model-store.ts';
import type { ByteStore } from './store.ts';

export type DownloadQuantType = 'nf4' | 'fp4';

export interface QuantizeOnDownloadOptions {
  type: DownloadQuantType;
  /** Default 64. */
  blocksize?: number;
  /** Default true. */
  doubleQuant?: boolean;
  /** Keep the original (full precision) entry once the 4-bit one is complete (default true). */
  keepOriginal?: boolean;
  /** Called as each file of the 4-bit model is committed. */
  onFile?: (name: string, info: { bytes: number; quantized: number }) => void;
}

export interface QuantizeOnDownloadResult {
  repo: string;
  /** The derived entry's revision: `${revision}+${type}`. */
  revision: string;
  from: string;
  files: number;
  /** Bytes of the 4-bit entry's files. */
  bytes: number;
  /** Linear weights quantized in this session. */
  quantized: number;
  /** Whether the original entry was deleted. */
  droppedOriginal: boolean;
}

const CHUNK = 4 << 20;
const SAFETENSORS = /\.safetensors$/;

/** The revision of the 4-bit copy of `revision`: "main" → "main+nf4". */
export function quantizedRevision(revision: string, type: DownloadQuantType): string {
  return `${revision}+${type}`;
}

/** {from, type} of a derived revision ("main+nf4"), or null. */
export function parseQuantizedRevision(revision: string): { from: string; type: DownloadQuantType } | null {
  const m = /^(.+)\+(nf4|fp4)$/.exec(revision);
  return m ? { from: m[1]!, type: m[2] as DownloadQuantType } : null;
}

function computeDtype(config: Record<string, unknown>): QuantDtype {
  const d = config.torch_dtype ?? config.dtype;
  return d === 'bfloat16' || d === 'float16' ? d : 'float32';
}

function dtypeName(d: string): QuantDtype {
  return d === 'BF16' ? 'bfloat16' : d === 'F16' ? 'float16' : 'float32';
}

async function writeValue(store: ByteStore, key: string, bytes: Uint8Array): Promise<void> {
  const w = await store.writer(key);
  try {
    for (let o = 0; o < bytes.byteLength; o += CHUNK) await w.append(bytes.subarray(o, Math.min(bytes.byteLength, o + CHUNK)));
    await w.commit();
  } catch (e) {
    await w.abort().catch(() => undefined);
    throw e;
  }
}

/**
 * Builds `<repo>@<revision>+<type>` from `<repo>@<revision>` as its files land. Hand fileDone to
 * downloadModel's onFileDone, then call finish() after the download (it also handles files that
 * an earlier session had already stored).
 */
export class QuantizeOnDownload {
  readonly revision: string;
  private readonly q: DerivedQuantization;
  private manifest: ModelManifest | undefined;
  private source: ModelManifest | undefined;
  private chain: Promise<void> = Promise.resolve();
  private quantizedCount = 0;

  constructor(
    readonly store: ByteStore,
    readonly repo: string,
    readonly from: string,
    readonly opts: QuantizeOnDownloadOptions,
  ) {
    if (opts.type !== 'nf4' && opts.type !== 'fp4') throw new Error(`quantize: type must be nf4 or fp4, got ${JSON.stringify(opts.type)}`);
    const blocksize = opts.blocksize ?? 64;
    validateBlocksize(blocksize);
    this.revision = quantizedRevision(from, opts.type);
    this.q = { from, type: opts.type, blocksize, doubleQuant: opts.doubleQuant ?? true };
  }

  /** Quantizes / copies one source file that just landed (serialized; safe to call concurrently). */
  fileDone(name: string): Promise<void> {
    const p = this.chain.then(() => this.process(name));
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Processes whatever is left, writes the index, marks the 4-bit entry complete. */
  async finish(): Promise<QuantizeOnDownloadResult> {
    await this.chain;
    const m = await this.init();
    const src = this.source!;
    if (!src.complete) throw new Error(`${this.repo}@${this.from}: the download is unfinished; the ${this.opts.type} copy needs every file`);
    for (const f of m.files) if (!f.done && f.name !== INDEX_FILE) await this.process(f.name);
    const idx = m.files.find((f) => f.name === INDEX_FILE);
    if (idx && !idx.done) {
      const index = parseIndex(new TextDecoder().decode(await this.need(fileKey(this.repo, this.from, INDEX_FILE))));
      const shards = [];
      for (const file of index.shards) {
        const r = await openSafetensors(await storedSource(this.store, fileKey(this.repo, this.revision, file), file));
        shards.push({ file, tensors: r.header.tensors });
      }
      const bytes = new TextEncoder().encode(buildIndex(shards));
      await this.store.put(fileKey(this.repo, this.revision, INDEX_FILE), bytes);
      await this.markDone(idx, bytes.byteLength, 0);
    }
    m.complete = m.files.every((f) => f.done);
    if (!m.complete) throw new Error(`${this.repo}@${this.revision}: not every file was made`);
    await this.save();
    let droppedOriginal = false;
    if (this.opts.keepOriginal === false) {
      await deleteModel(this.store, this.repo, this.from);
      droppedOriginal = true;
    }
    return {
      repo: this.repo, revision: this.revision, from: this.from, files: m.files.length, bytes: m.files.reduce((n, f) => n + (f.size ?? 0), 0),
      quantized: this.quantizedCount, droppedOriginal,
    };
  }

  private async need(key: string): Promise<Uint8Array> {
    const b = await this.store.get(key);
    if (!b) throw new Error(`${this.store.name}: no value "${key}"`);
    return b;
  }

  private async save(): Promise<void> {
    const m = this.manifest!;
    m.updated = Date.now();
    await writeManifest(this.store, JSON.parse(JSON.stringify(m)) as ModelManifest);
  }

  /** Reads the source manifest and starts (or continues) the derived one, complete: false. */
  private async init(): Promise<ModelManifest> {
    await migrate(this.store);
    const src = await readManifest(this.store, this.repo, this.from);
    if (!src) throw new Error(`${this.repo}@${this.from} is not in ${this.store.name}`);
    if (src.quantized) throw new Error(`${this.repo}@${this.from} is already a quantized copy`);
    this.source = src;
    if (this.manifest) return this.manifest;
    const old = await readManifest(this.store, this.repo, this.revision).catch(() => undefined);
    const same = !!old?.quantized && old.quantized.type === this.q.type && old.quantized.blocksize === this.q.blocksize &&
      old.quantized.doubleQuant === this.q.doubleQuant && old.quantized.fromCommit === src.commit;
    const files: ManifestFile[] = [];
    for (const f of src.files) {
      const prev = same ? old!.files.find((x) => x.name === f.name) : undefined;
      const kept = !!prev?.done && !!(await this.store.stat(fileKey(this.repo, this.revision, f.name)));
      files.push({ name: f.name, size: kept ? prev!.size : null, done: kept });
    }
    const now = Date.now();
    this.manifest = {
      layout: LAYOUT_VERSION, repo: this.repo, revision: this.revision, commit: src.commit, source: src.source, endpoint: src.endpoint,
      files, complete: false, created: same ? old!.created : now, updated: now,
      quantized: { ...this.q, ...(src.commit ? { fromCommit: src.commit } : {}) },
    };
    // A complete copy from the same source stays complete (nothing to do).
    if (same && old!.complete && files.every((f) => f.done)) this.manifest.complete = true;
    await this.save();
    // Files of an older, different copy go (after the manifest above says incomplete).
    for (const f of old?.files ?? []) if (!files.some((x) => x.name === f.name && x.done)) await this.store.delete(fileKey(this.repo, this.revision, f.name));
    return this.manifest;
  }

  private async markDone(entry: ManifestFile, bytes: number, quantized: number): Promise<void> {
    entry.size = bytes;
    entry.done = true;
    await this.save();
    this.opts.onFile?.(entry.name, { bytes, quantized });
  }

  private async process(name: string): Promise<void> {
    const m = await this.init();
    const entry = m.files.find((f) => f.name === name);
    if (!entry || entry.done || name === INDEX_FILE) return; // the index is rebuilt in finish()
    const srcKey = fileKey(this.repo, this.from, name);
    const outKey = fileKey(this.repo, this.revision, name);
    if (SAFETENSORS.test(name)) {
      const r = await openSafetensors(await storedSource(this.store, srcKey, name));
      const out: TensorData[] = [];
      let quantized = 0;
      for (const t of r.names()) {
        const info = r.info(t);
        if (LINEAR_WEIGHT.test(t) && info.shape.length === 2 && ['F32', 'F16', 'BF16'].includes(info.dtype)) {
          const q = quantizeLinear(await r.readFloat32(t), info.shape as [number, number], {
            type: this.q.type, blocksize: this.q.blocksize, doubleQuant: this.q.doubleQuant, dtype: dtypeName(info.dtype),
          });
          out.push(...toBnbTensors(t.replace(/\.weight$/, ''), q));
          quantized++;
        } else if (/\.weight\.quant_state\.bitsandbytes__(nf4|fp4)$/.test(t)) {
          throw new Error(`${this.repo}@${this.from}: ${name} is already bitsandbytes-quantized`);
        } else {
          out.push({ name: t, dtype: info.dtype, shape: info.shape, data: await r.readBytes(t) });
        }
      }
      const bytes = writeSafetensors(out, r.header.metadata ?? { format: 'pt' });
      await writeValue(this.store, outKey, bytes);
      this.quantizedCount += quantized;
      await this.markDone(entry, bytes.byteLength, quantized);
    } else if (name === 'config.json') {
      const config = JSON.parse(new TextDecoder().decode(await this.need(srcKey))) as Record<string, unknown>;
      if (!config || typeof config !== 'object' || Array.isArray(config)) throw new Error(`${this.repo}@${this.from}: config.json is not a JSON object`);
      if (config.quantization_config) throw new Error(`${this.repo}@${this.from}: config.json already has a quantization_config: the model is quantized`);
      const text = JSON.stringify({ ...config, quantization_config: bnbQuantizationConfig({ type: this.q.type, doubleQuant: this.q.doubleQuant, computeDtype: computeDtype(config) }) }, null, 2) + '\n';
      const bytes = new TextEncoder().encode(text);
      await this.store.put(outKey, bytes);
      await this.markDone(entry, bytes.byteLength, 0);
    } else {
      const st = await this.store.stat(srcKey);
      if (!st) throw new Error(`${this.store.name}: no value "${srcKey}"`);
      const w = await this.store.writer(outKey);
      try {
        for (let o = 0; o < st.size; o += CHUNK) await w.append(await this.store.read(srcKey, o, Math.min(CHUNK, st.size - o)));
        await w.commit();
      } catch (e) {
        await w.abort().catch(() => undefined);
        throw e;
      }
      await this.markDone(entry, st.size, 0);
    }
  }
}
