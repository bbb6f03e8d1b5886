// Builds a GpuModel from a Hugging Face model folder (any ModelFiles: a Node directory, browser
// Files, IndexedDB): config.json → each tensor streamed from its safetensors shard to the GPU.
// Decoder linears are quantized on load on the GPU (NF4 or FP4, double-quantized absmax by
// default; bit-exact with bitsandbytes), kept in f32 with quant 'none', or — for a bnb-4bit
// checkpoint — loaded as stored. Embeddings, norms, biases and an untied lm_head stay f32.

import type { GpuRuntime } from '../gpu/runtime.ts';
import { parseModelConfig, type ModelConfig } from '../model/config.ts';
import type { ModelFiles } from '../model/model-files.ts';
import {
  EMBED_TOKENS,
  FINAL_NORM,
  LM_HEAD,
  LORA_TARGETS,
  biasName,
  hasBias,
  inputNormName,
  moduleName,
  modelTensorShapes,
  postAttentionNormName,
  targetShape,
  weightName,
  type LoraTarget,
} from '../model/names.ts';
import { checkTensor, openCheckpoint, WeightError, type Checkpoint } from '../model/weights.ts';
import { ropeTable } from '../nn/rope-table.ts';
import { fromBnbTensors, findQuantizedLinears } from '../quant/bnb-tensors.ts';
import type { QuantType } from '../quant/codes.ts';
import { gpuDoubleQuantize, gpuQuantize4 } from '../quant/gpu/gpu-quant.ts';
import { Linear4 } from '../quant/gpu/matmul4.ts';
import { F32Linear, Quant4Linear, type FrozenLinear } from './linear.ts';
import { GpuModel, type LayerWeights } from './model.ts';

export type QuantChoice = QuantType | 'none';

export interface LoadOptions {
  /** Quantization of the decoder linears when the checkpoint is full precision (default nf4). */
  quant?: QuantChoice;
  blocksize?: number;
  doubleQuant?: boolean;
  /** Longest sequence the RoPE table covers (default min(config max, 4096)). */
  maxPositions?: number;
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface LoadedModel {
  model: GpuModel;
  config: ModelConfig;
  /** 'nf4' | 'fp4' | 'none', and whether the 4-bit weights came pre-quantized (bnb checkpoint). */
  quant: QuantChoice;
  prequantized: boolean;
}

export async function loadGpuModel(rt: GpuRuntime, files: ModelFiles, opts: LoadOptions = {}): Promise<LoadedModel> {
  const config = parseModelConfig(await files.text('config.json'));
  const ckpt = await openCheckpoint(files);
  const bnbPrefixes = new Set(findQuantizedLinears(ckpt.names()));
  const prequantized = bnbPrefixes.size > 0;
  const quant: QuantChoice = prequantized ? bnbType(ckpt, [...bnbPrefixes][0]!) : (opts.quant ?? 'nf4');

  // Check every full-precision tensor we will read before uploading anything.
  const shapes = modelTensorShapes(config).filter((t) => !bnbPrefixes.has(t.name.replace(/\.weight$/, '')));
  const missing = shapes.filter((t) => !ckpt.has(t.name)).map((t) => t.name);
  if (missing.length) {
    throw new WeightError(`checkpoint (${ckpt.files.join(', ')}) is missing ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`);
  }
  for (const t of shapes) checkTensor(ckpt, t);

  const total = 3 + config.numLayers * (2 + LORA_TARGETS.length);
  let done = 0;
  const progress = (name: string) => opts.onProgress?.(++done, total, name);
  const f32 = async (name: string) => {
    const data = await ckpt.readFloat32(name);
    progress(name);
    return data;
  };

  const embed = rt.upload(await f32(EMBED_TOKENS), 'embed_tokens');
  const finalNorm = rt.upload(await f32(FINAL_NORM), 'norm');
  const head = config.tieWordEmbeddings
    ? { weight: embed, tied: true }
    : { weight: rt.upload(await f32(LM_HEAD), 'lm_head'), tied: false };
  if (config.tieWordEmbeddings) progress(LM_HEAD);

  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const inputNorm = rt.upload(await f32(inputNormName(l)), `L${l}.input_norm`);
    const postNorm = rt.upload(await f32(postAttentionNormName(l)), `L${l}.post_norm`);
    const linears = {} as Record<LoraTarget, FrozenLinear>;
    for (const t of LORA_TARGETS) {
      const bias = hasBias(config, t) ? await ckpt.readFloat32(biasName(l, t)) : null;
      const prefix = moduleName(l, t);
      if (bnbPrefixes.has(prefix)) {
        linears[t] = await loadBnbLinear(rt, ckpt, config, l, t, bias);
      } else if (quant === 'none') {
        linears[t] = F32Linear.upload(rt, await ckpt.readFloat32(weightName(l, t)), targetShape(config, t), bias, prefix);
      } else {
        linears[t] = await quantizeOnLoad(rt, await ckpt.readFloat32(weightName(l, t)), targetShape(config, t), bias, {
          type: quant,
          blocksize: opts.blocksize ?? 64,
          doubleQuant: opts.doubleQuant ?? true,
        });
      }
      progress(weightName(l, t));
    }
    layers.push({ inputNorm, postNorm, linears });
  }

  const maxPos = Math.min(config.maxPositionEmbeddings, opts.maxPositions ?? 4096);
  const table = rt.upload(
    ropeTable(config.headDim, config.ropeTheta, maxPos, ropeScalingForTable(config)),
    'rope_table',
  );
  const model = new GpuModel(rt, config, embed, finalNorm, head, layers, { table, maxPos });
  await rt.sync();
  return { model, config, quant, prequantized };
}

/** The rope_scaling object as the RoPE table builder reads it (HF key names). */
function ropeScalingForTable(c: ModelConfig) {
  const s = c.ropeScaling;
  if (!s) return null;
  if (s.type === 'linear') return { rope_type: 'linear', factor: s.factor };
  return {
    rope_type: 'llama3',
    factor: s.factor,
    low_freq_factor: s.lowFreqFactor,
    high_freq_factor: s.highFreqFactor,
    original_max_position_embeddings: s.originalMaxPositionEmbeddings,
  };
}

/** Uploads an f32 weight, quantizes it on the GPU, double-quantizes the absmax (CPU, tiny). */
async function quantizeOnLoad(
  rt: GpuRuntime,
  w: Float32Array,
  shape: [number, number],
  bias: Float32Array | null,
  q: { type: QuantType; blocksize: number; doubleQuant: boolean },
): Promise<Quant4Linear> {
  const src = rt.upload(w, 'quantize.src');
  let t = gpuQuantize4(rt, src, w.length, { type: q.type, blocksize: q.blocksize });
  if (q.doubleQuant) t = await gpuDoubleQuantize(rt, t);
  rt.flush();
  src.destroy();
  return new Quant4Linear(Linear4.fromGpu(rt, t, shape[0], shape[1], { ownsWeight: true, ...(bias ? { bias } : {}) }));
}

function bnbType(ckpt: Checkpoint, prefix: string): QuantType {
  return ckpt.has(`${prefix}.weight.quant_state.bitsandbytes__fp4`) ? 'fp4' : 'nf4';
}

/** A pre-quantized bitsandbytes linear, with the stored maps and quant state, as is. */
async function loadBnbLinear(
  rt: GpuRuntime,
  ckpt: Checkpoint,
  config: ModelConfig,
  l: number,
  t: LoraTarget,
  bias: Float32Array | null,
): Promise<Quant4Linear> {
  const prefix = moduleName(l, t);
  const names = ckpt.names().filter((n) => n.startsWith(`${prefix}.weight`));
  const tensors = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
  for (const n of names) {
    const info = ckpt.info(n);
    tensors.set(n, { dtype: info.dtype, shape: info.shape, data: await ckpt.readBytes(n) });
  }
  const q = fromBnbTensors(prefix, (n) => tensors.get(n));
  const [out, inF] = targetShape(config, t);
  if (q.shape[0] !== out || q.shape[1] !== inF) {
    throw new WeightError(`${prefix}.weight: quant_state shape [${q.shape.join(', ')}] but config.json implies [${out}, ${inF}]`);
  }
  return new Quant4Linear(Linear4.upload(rt, q, bias ? { bias } : {}));
}
