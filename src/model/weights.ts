// Load a model's float tensors from a ModelFiles folder: a single `model.safetensors` or shards
// listed in `model.safetensors.index.json`. F32/F16/BF16 become Float32Array, keyed by HF name;
// every shape is checked against the config. Tied embeddings: no lm_head.weight is loaded.

import { openSafetensors, type SafetensorsReader, type TensorInfo } from '../formats/safetensors.ts';
import { INDEX_FILE, parseIndex } from '../formats/safetensors-index.ts';
import { parseModelConfig, type ModelConfig } from './config.ts';
import type { ModelFiles } from './model-files.ts';
import { modelTensorShapes, type TensorShape } from './names.ts';

export type { ModelFiles } from './model-files.ts';

export const SINGLE_FILE = 'model.safetensors';
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Tensor name → F32 data (row-major, HF shapes). */
export type WeightMap = Map<string, Float32Array>;

/** All tensors of a checkpoint, whichever file (shard) holds them. */
export interface Checkpoint {
  /** Files read: ['model.safetensors'] or the shard names. */
  readonly files: readonly string[];
  names(): string[];
  has(name: string): boolean;
  /** Header info; `file` is the shard that holds the tensor. */
  info(name: string): TensorInfo & { file: string };
  readFloat32(name: string): Promise<Float32Array>;
  readBytes(name: string): Promise<Uint8Array>;
}

export class WeightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightError';
  }
}

/** Opens `model.safetensors`, or every shard of `model.safetensors.index.json`. */
export async function openCheckpoint(files: ModelFiles): Promise<Checkpoint> {
  const listed = await files.list();
  const readers = new Map<string, SafetensorsReader>();
  const where = new Map<string, string>();
  if (listed.includes(SINGLE_FILE)) {
    const r = await openSafetensors(await files.open(SINGLE_FILE));
    readers.set(SINGLE_FILE, r);
    for (const n of r.names()) where.set(n, SINGLE_FILE);
  } else if (listed.includes(INDEX_FILE)) {
    const index = parseIndex(await files.text(INDEX_FILE));
    for (const shard of index.shards) readers.set(shard, await openSafetensors(await files.open(shard)));
    for (const [tensor, shard] of index.weightMap) {
      if (!readers.get(shard)!.has(tensor)) {
        throw new WeightError(`${INDEX_FILE} puts ${tensor} in ${shard}, but that shard has no such tensor`);
      }
      where.set(tensor, shard);
    }
  } else {
    throw new WeightError(`no ${SINGLE_FILE} or ${INDEX_FILE} among the model files (${listed.join(', ') || 'none'})`);
  }
  const reader = (name: string) => {
    const file = where.get(name);
    if (file === undefined) throw new WeightError(`tensor ${name} is not in the checkpoint (${[...readers.keys()].join(', ')})`);
    return { file, r: readers.get(file)! };
  };
  return {
    files: [...readers.keys()],
    names: () => [...where.keys()],
    has: (name) => where.has(name),
    info: (name) => {
      const { file, r } = reader(name);
      return { ...r.info(name), file };
    },
    readFloat32: (name) => reader(name).r.readFloat32(name),
    readBytes: (name) => reader(name).r.readBytes(name),
  };
}

export interface LoadWeightsOptions {
  /** Which tensors to load (default: every base-model tensor of the config). */
  tensors?: readonly TensorShape[];
  onProgress?: (loaded: number, total: number, name: string) => void;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Checks a tensor's dtype and shape against what the config expects. */
export function checkTensor(ckpt: Checkpoint, expected: TensorShape): void {
  const info = ckpt.info(expected.name);
  if (!FLOAT_DTYPES.has(info.dtype)) {
    throw new WeightError(
      `${expected.name} (${info.file}): dtype ${info.dtype} is not a float type (F32, F16, BF16); ` +
        'a bitsandbytes-quantized checkpoint needs the 4-bit loader',
    );
  }
  const actual = info.shape;
  if (actual.length !== expected.shape.length || actual.some((d, i) => d !== expected.shape[i])) {
    throw new WeightError(`${expected.name} (${info.file}): expected shape ${shapeText(expected.shape)}, got ${shapeText(actual)}`);
  }
}

/** Loads and shape-checks the base model's tensors as F32. */
export async function loadWeights(files: ModelFiles, config: ModelConfig, opts: LoadWeightsOptions = {}): Promise<WeightMap> {
  const ckpt = await openCheckpoint(files);
  const wanted = opts.tensors ?? modelTensorShapes(config);
  const missing = wanted.filter((t) => !ckpt.has(t.name)).map((t) => t.name);
  if (missing.length) {
    const hint = missing.includes('lm_head.weight') && !config.tieWordEmbeddings
      ? ' (config.json says tie_word_embeddings is false, so lm_head.weight is required)' : '';
    throw new WeightError(
      `checkpoint (${ckpt.files.join(', ')}) is missing ${missing.length} tensor(s): ` +
        `${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}${hint}`,
    );
  }
  for (const t of wanted) checkTensor(ckpt, t);
  const out: WeightMap = new Map();
  for (const t of wanted) {
    out.set(t.name, await ckpt.readFloat32(t.name));
    opts.onProgress?.(out.size, wanted.length, t.name);
  }
  return out;
}

/** config.json + all float weights. */
export async function loadModel(files: ModelFiles, opts: LoadWeightsOptions = {}): Promise<{ config: ModelConfig; weights: WeightMap }> {
  const config = parseModelConfig(await files.text('config.json'));
  return { config, weights: await loadWeights(files, config, opts) };
}
