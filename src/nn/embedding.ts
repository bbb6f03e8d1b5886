// Token embedding lookup, forward only (shaders/embedding.wgsl). Embeddings are frozen under
// LoRA training, so there is no backward; a tied LM head (logits = h·tableᵀ) is a matmul.
//
// Buffers:
//   ids   u32 [T]          token ids (T = B·S flattened tokens); an id ≥ V yields a zero row
//   table [V, D]           row-major; dtype 'f32' (f32 words) or 'f16' / 'bf16' (two 16-bit
//                          values per u32 word, element e in word e/2, low half first: the
//                          raw little-endian bytes of a safetensors F16/BF16 tensor)
//   out   f32 [T, D]       row-major, out[t, :] = table[ids[t], :]

import { grid, type GpuRuntime } from '../gpu/runtime.ts';

export type EmbeddingDtype = 'f32' | 'f16' | 'bf16';

const WG = 256;

/**
 * Records out[t, :] = table[ids[t], :] for t < T. Returns `out` (created when not given,
 * T·D·4 bytes).
 */
export function embeddingForward(
  rt: GpuRuntime,
  ids: GPUBuffer,
  table: GPUBuffer,
  T: number,
  V: number,
  D: number,
  out?: GPUBuffer,
  dtype: EmbeddingDtype = 'f32',
): GPUBuffer {
  const o = out ?? rt.create(T * D * 4, 'embedding.out');
  const n = T * D;
  if (n > 0) {
    rt.dispatch('embedding', `embed_${dtype}`, [rt.uniform([T, D, V]), ids, o, table], grid(rt, Math.ceil(n / WG)));
  }
  return o;
}
