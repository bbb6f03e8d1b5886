// A merged model for tools that want one plain checkpoint (transformers without PEFT, llama.cpp's
// convert_hf_to_gguf.py, MLX): every decoder linear becomes
//     W' = W + s·B·A      (s = alpha/r, or alpha/√r with rsLoRA; PEFT's merge_and_unload)
// where W is the base weight the adapter was trained against: the 4-bit weight dequantized
// (NF4/FP4, bit-exact with bitsandbytes) for a QLoRA run, or the full-precision weight. The rest
// (embeddings, norms, biases, an untied lm_head) is copied from the base checkpoint. Written as
// F16, BF16 or F32 safetensors — one model.safetensors, or shards of at most `maxShardBytes`
// (default 2 GB, like transformers' save_pretrained) with model.safetensors.index.json — plus
// config.json without quantization_config and the tokenizer files.
//
// Two engines, same output:
//   mergeOnGpu: the studio's loaded GpuModel + LoraAdapter. Dequantize kernel (gpu-quant.ts) into
//     a buffer, then one gemm accumulates s·B·A into it (beta = 1, B and A read from the adapter's
//     [A | B] parameter buffer by offset); read back. A tensor too large for one storage binding
//     takes the CPU path instead.
//   mergeOnCpu: no GPU: the base checkpoint quantized and dequantized on the CPU exactly as
//     loading does (or taken as is with quant 'none', or a bnb-4bit checkpoint dequantized), plus
//     the adapter tensors. For small models and machines without WebGPU.
// Everything streams tensor by tensor through a FileSink (sink.ts): the whole model is never in
// memory, only the tensor being written. No DOM or Node APIs.

import type { GpuRuntime } from '../gpu/runtime.ts';
import { gemm } from '../nn/gemm.ts';
import { planSafetensors, type SafetensorsPlan, type TensorSpec } from '../formats/safetensors.ts';
import { buildIndex, INDEX_FILE, shardName } from '../formats/safetensors-index.ts';
import { dtypeByteLength, f32ToBf16, f32ToF16, type DType } from '../formats/dtypes.ts';
import type { ModelConfig } from '../model/config.ts';
import type { ModelFiles } from '../model/model-files.ts';
import type { Checkpoint } from '../model/weights.ts';
import { LORA_TARGETS, modelTensorShapes, moduleName, peftLoraName, targetShape, weightName, type LoraTarget } from '../model/names.ts';
import { dequantizeLinear, findQuantizedLinears, fromBnbTensors, quantizeLinear } from '../quant/bnb-tensors.ts';
import { dequantize4bit } from '../quant/blockwise4.ts';
import { gpuDequantize4, readQuant4 } from '../quant/gpu/gpu-quant.ts';
import type { QuantType } from '../quant/codes.ts';
import { Quant4Linear } from '../llm/linear.ts';
import type { GpuModel } from '../llm/model.ts';
import type { LoraAdapter } from '../llm/lora.ts';
import { loraScaling, type LoraConfig } from '../train/lora-config.ts';
import type { AdapterTensor } from '../train/peft.ts';
import { looksLikeLocalPath } from '../share/refs.ts';
import { ExportError, countingWriter, writeWholeFile, type FileSink } from './sink.ts';

export type MergeDtype = 'f16' | 'bf16' | 'f32';
export const MERGE_DTYPES: readonly MergeDtype[] = ['f16', 'bf16', 'f32'];

/** transformers' default max_shard_size is "5GB"; the studio uses 2 GB (10^9 bytes, as HF counts). */
export const DEFAULT_SHARD_BYTES = 2_000_000_000;

const SAFETENSORS_DTYPE: Record<MergeDtype, DType> = { f16: 'F16', bf16: 'BF16', f32: 'F32' };
const TORCH_DTYPE: Record<MergeDtype, string> = { f16: 'float16', bf16: 'bfloat16', f32: 'float32' };

/** Files carried over from the base model folder (tokenizer, chat template, generation config). */
export const CARRIED_FILES =
  /^(?:tokenizer(?:_config)?\.json|tokenizer\.model|special_tokens_map\.json|added_tokens\.json|vocab\.(?:json|txt)|merges\.txt|generation_config\.json|chat_template\.(?:jinja|json))$/;

export interface MergeOptions {
  /** Output dtype (default f16). */
  dtype?: MergeDtype;
  /** Largest shard, in bytes of tensor data (default 2 GB); past it the weights are sharded. */
  maxShardBytes?: number;
  /** The base model folder, to copy its tokenizer files (CARRIED_FILES) from. */
  files?: ModelFiles | null;
  /** Called after each tensor is written. */
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface MergeResult {
  /** Files written, in order. */
  files: string[];
  tensors: number;
  /** Linears that received a LoRA update. */
  merged: number;
  dtype: MergeDtype;
  shards: number;
  /** Bytes of tensor data. */
  bytes: number;
}

// ---- layout ----------------------------------------------------------------------------------

export interface ShardPlan {
  file: string;
  plan: SafetensorsPlan;
}

/**
 * Groups tensors (in the given order) into shards of at most `maxShardBytes` of data — a tensor
 * bigger than that gets a shard of its own — and lays each out. One shard is `model.safetensors`;
 * more are model-0000i-of-0000n.safetensors and need the index (shardIndex).
 */
export function planShards(specs: readonly TensorSpec[], maxShardBytes = DEFAULT_SHARD_BYTES): ShardPlan[] {
  if (!(maxShardBytes > 0)) throw new ExportError(`maxShardBytes must be > 0, got ${maxShardBytes}`);
  const groups: TensorSpec[][] = [[]];
  let size = 0;
  for (const s of specs) {
    const bytes = dtypeByteLength(s.dtype, s.shape.reduce((a, b) => a * b, 1));
    if (size > 0 && size + bytes > maxShardBytes) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1]!.push(s);
    size += bytes;
  }
  const meta = { format: 'pt' };
  if (groups.length === 1) return [{ file: 'model.safetensors', plan: planSafetensors(groups[0]!, meta) }];
  return groups.map((g, i) => ({ file: shardName(i + 1, groups.length), plan: planSafetensors(g, meta) }));
}

/** model.safetensors.index.json for sharded plans (transformers' format). */
export function shardIndex(shards: readonly ShardPlan[]): string {
  return buildIndex(shards.map((s) => ({ file: s.file, tensors: s.plan.tensors })), { totalParameters: true });
}

/** The merged model's config.json: quantization_config removed, dtype set, local paths dropped. */
export function mergedConfigJson(raw: Readonly<Record<string, unknown>>, dtype: MergeDtype): string {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'quantization_config') continue;
    if (k === '_name_or_path' && (typeof v !== 'string' || looksLikeLocalPath(v))) continue;
    out[k] = v;
  }
  out.torch_dtype = TORCH_DTYPE[dtype];
  if ('dtype' in raw) out.dtype = TORCH_DTYPE[dtype];
  return JSON.stringify(sortKeys(out), null, 2) + '\n';
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

// ---- the writer shared by both engines -------------------------------------------------------

/** Produces one tensor of the merged model in f32 (row-major, HF shape). */
type TensorFn = (name: string) => Promise<Float32Array>;

const CHUNK_VALUES = 4 * 1024 * 1024;

/** Converts f32 values to the output dtype's little-endian bytes; refuses overflow to ±inf. */
function encode(values: Float32Array, dtype: MergeDtype, name: string): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  const conv = dtype === 'f16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < values.length; i++) {
    const h = conv(values[i]!);
    out[i] = h;
    if (dtype === 'f16' && (h & 0x7c00) === 0x7c00 && Number.isFinite(values[i]!)) {
      throw new ExportError(`${name}: value ${values[i]} is outside the F16 range (±65504); export as bf16 or f32`);
    }
  }
  return new Uint8Array(out.buffer);
}

async function writeMerged(
  config: ModelConfig,
  tensor: TensorFn,
  sink: FileSink,
  opts: MergeOptions,
  mergedCount: () => number,
): Promise<MergeResult> {
  const dtype = opts.dtype ?? 'f16';
  if (!MERGE_DTYPES.includes(dtype)) throw new ExportError(`dtype must be one of ${MERGE_DTYPES.join(', ')}, got ${JSON.stringify(dtype)}`);
  const specs = modelTensorShapes(config).map((t) => ({ name: t.name, dtype: SAFETENSORS_DTYPE[dtype], shape: t.shape }));
  const shards = planShards(specs, opts.maxShardBytes ?? DEFAULT_SHARD_BYTES);
  const written: string[] = [];
  await writeWholeFile(sink, 'config.json', mergedConfigJson(config.raw, dtype));
  written.push('config.json');
  let done = 0;
  let bytes = 0;
  for (const shard of shards) {
    const { plan, file } = shard;
    const w = countingWriter(file, plan.totalSize, await sink.file(file, plan.totalSize));
    await w.write(plan.header);
    for (const t of plan.tensors) {
      const values = await tensor(t.name);
      if (values.length !== t.numel) throw new ExportError(`${t.name}: ${values.length} values, expected ${t.numel}`);
      for (let i = 0; i < values.length; i += CHUNK_VALUES) {
        const part = encode(values.subarray(i, Math.min(values.length, i + CHUNK_VALUES)), dtype, t.name);
        await w.write(part);
      }
      bytes += t.end - t.begin;
      opts.onProgress?.(++done, specs.length, t.name);
    }
    await w.close();
    written.push(file);
  }
  if (shards.length > 1) {
    await writeWholeFile(sink, INDEX_FILE, shardIndex(shards));
    written.push(INDEX_FILE);
  }
  if (opts.files) {
    for (const name of (await opts.files.list()).filter((n) => CARRIED_FILES.test(n)).sort()) {
      const src = await opts.files.open(name);
      const w = countingWriter(name, src.size, await sink.file(name, src.size));
      for (let at = 0; at < src.size; at += 16 << 20) await w.write(await src.read(at, Math.min(16 << 20, src.size - at)));
      await w.close();
      written.push(name);
    }
  }
  return { files: written, tensors: specs.length, merged: mergedCount(), dtype, shards: shards.length, bytes };
}

/** name → (layer, target) of every decoder linear weight. */
function linearIndex(config: ModelConfig): Map<string, { layer: number; target: LoraTarget }> {
  const m = new Map<string, { layer: number; target: LoraTarget }>();
  for (let layer = 0; layer < config.numLayers; layer++) for (const target of LORA_TARGETS) m.set(weightName(layer, target), { layer, target });
  return m;
}

/** w[out, in] += s · B[out, r] · A[r, in], in place (f32). */
export function addLoraDelta(w: Float32Array, a: Float32Array, b: Float32Array, out: number, inF: number, r: number, scale: number): void {
  if (w.length !== out * inF || a.length !== r * inF || b.length !== out * r) {
    throw new ExportError(`LoRA delta: W ${w.length}, A ${a.length}, B ${b.length} values do not fit [${out}, ${inF}] with r=${r}`);
  }
  const row = new Float64Array(inF);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k]!;
      if (bk === 0) continue;
      const ak = k * inF;
      for (let i = 0; i < inF; i++) row[i] += bk * a[ak + i]!;
    }
    const wo = o * inF;
    for (let i = 0; i < inF; i++) w[wo + i] = w[wo + i]! + scale * row[i]!;
  }
}

// ---- GPU -------------------------------------------------------------------------------------

async function readBig(rt: GpuRuntime, buf: GPUBuffer, n: number): Promise<Float32Array> {
  const out = new Float32Array(n);
  const step = 16 * 1024 * 1024; // floats per readback (64 MB staging at most)
  for (let at = 0; at < n; at += step) out.set(await rt.readF32(buf, Math.min(step, n - at), at * 4), at);
  return out;
}

/**
 * Merges a loaded GPU model (4-bit or f32 linears) with `lora` (null: the base alone, dequantized)
 * and writes the result through `sink`. `checkpoint` is the base model's checkpoint (the same files
 * the model was loaded from): embeddings, norms, biases and f32 linears are read from it.
 */
export async function mergeOnGpu(
  rt: GpuRuntime,
  model: GpuModel,
  lora: LoraAdapter | null,
  checkpoint: Checkpoint,
  sink: FileSink,
  opts: MergeOptions & { /** Tensors above this many bytes are merged on the CPU (default: the GPU's binding limit). */ gpuTensorLimit?: number } = {},
): Promise<MergeResult> {
  const config = model.config;
  if (lora && lora.numLayers !== config.numLayers) throw new ExportError(`the adapter has ${lora.numLayers} layers, the model ${config.numLayers}`);
  const linears = linearIndex(config);
  const maxBinding = Math.min(rt.device.limits.maxStorageBufferBindingSize, rt.device.limits.maxBufferSize, opts.gpuTensorLimit ?? Infinity);
  let merged = 0;
  const tensor: TensorFn = async (name) => {
    const lin = linears.get(name);
    if (!lin) return checkpoint.readFloat32(name);
    const { layer, target } = lin;
    const frozen = model.layers[layer]!.linears[target];
    const [out, inF] = targetShape(config, target);
    const n = out * inF;
    const m = lora?.get(layer, target);
    if (m && (m.outF !== out || m.inF !== inF)) throw new ExportError(`${peftLoraName(layer, target, 'A')}: adapter shape does not match the model`);
    if (m) merged++;
    if (Math.ceil(n / 8) * 32 > maxBinding) {
      // Too big for one binding: dequantize / add on the CPU.
      let w: Float32Array;
      if (frozen instanceof Quant4Linear) {
        const q = frozen.weight;
        const { packed, absmax } = await readQuant4(rt, q);
        w = dequantize4bit(packed, absmax, q.n, q.type, q.blocksize, q.codeValues);
      } else w = await checkpoint.readFloat32(name);
      if (m) {
        const ab = await readBig(rt, m.params, m.size);
        addLoraDelta(w, ab.subarray(0, m.aSize), ab.subarray(m.aSize), out, inF, m.r, lora!.scale);
      }
      return w;
    }
    const buf = frozen instanceof Quant4Linear ? gpuDequantize4(rt, frozen.weight) : rt.upload(await checkpoint.readFloat32(name), `merge.${name}`);
    try {
      // W[out, in] += s · B[out, r] · A[r, in]; B sits after A in the module's [A | B] buffer.
      if (m) gemm(rt, m.params, m.params, buf, { M: out, N: inF, K: m.r, alpha: lora!.scale, beta: 1, offA: m.aSize, offB: 0 });
      return await readBig(rt, buf, n);
    } finally {
      buf.destroy();
    }
  };
  return writeMerged(config, tensor, sink, opts, () => merged);
}

// ---- CPU -------------------------------------------------------------------------------------

export interface CpuMergeOptions extends MergeOptions {
  /** How the base was quantized for training (default nf4): the merge adds the update to dequant(quant(W)). */
  quant?: QuantType | 'none';
  blocksize?: number;
  doubleQuant?: boolean;
}

export interface AdapterForMerge {
  config: Pick<LoraConfig, 'r' | 'alpha' | 'useRslora'> & { targetModules: readonly LoraTarget[] };
  /** lora_A [r, in] and lora_B [out, r] under PEFT names (readAdapter's output). */
  tensors: ReadonlyMap<string, AdapterTensor>;
}

/**
 * Merges on the CPU from the base checkpoint and the adapter's tensors. The base linear is the
 * bnb-4bit weight dequantized (pre-quantized checkpoints), or the f32 weight quantized and
 * dequantized with `quant` (as loadGpuModel does on load), or the f32 weight itself (quant 'none').
 */
export async function mergeOnCpu(
  config: ModelConfig,
  checkpoint: Checkpoint,
  adapter: AdapterForMerge | null,
  sink: FileSink,
  opts: CpuMergeOptions = {},
): Promise<MergeResult> {
  const linears = linearIndex(config);
  const bnb = new Set(findQuantizedLinears(checkpoint.names()));
  const quant = opts.quant ?? 'nf4';
  const scale = adapter ? loraScaling(adapter.config) : 0;
  let merged = 0;
  const tensor: TensorFn = async (name) => {
    const lin = linears.get(name);
    if (!lin) return checkpoint.readFloat32(name);
    const { layer, target } = lin;
    const shape = targetShape(config, target);
    const prefix = moduleName(layer, target);
    let w: Float32Array;
    if (bnb.has(prefix)) {
      const parts = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
      for (const n of checkpoint.names().filter((x) => x.startsWith(`${prefix}.weight`))) {
        const info = checkpoint.info(n);
        parts.set(n, { dtype: info.dtype, shape: info.shape, data: await checkpoint.readBytes(n) });
      }
      w = dequantizeLinear(fromBnbTensors(prefix, (n) => parts.get(n)));
    } else {
      w = await checkpoint.readFloat32(name);
      if (quant !== 'none') w = dequantizeLinear(quantizeLinear(w, shape, { type: quant, blocksize: opts.blocksize ?? 64, doubleQuant: opts.doubleQuant ?? true }));
    }
    if (adapter && adapter.config.targetModules.includes(target)) {
      const a = adapter.tensors.get(peftLoraName(layer, target, 'A'));
      const b = adapter.tensors.get(peftLoraName(layer, target, 'B'));
      if (!a || !b) throw new ExportError(`the adapter has no ${peftLoraName(layer, target, a ? 'B' : 'A')}`);
      addLoraDelta(w, a.data, b.data, shape[0], shape[1], adapter.config.r, scale);
      merged++;
    }
    return w;
  };
  return writeMerged(config, tensor, sink, opts, () => merged);
}
