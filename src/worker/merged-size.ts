// The size of a merged-model zip before it is built, from the model's shapes: the safetensors
// shards laid out exactly as mergeOnGpu writes them, config.json, the shard index, the carried
// tokenizer files, and the zip's per-entry records. An upper bound (text files are deflated, so
// they come out smaller), used to check the disk quota before an export starts.

import { CARRIED_FILES, mergedConfigJson, planShards, shardIndex, type MergeDtype } from '../export/merge.ts';
import { INDEX_FILE } from '../formats/safetensors-index.ts';
import type { ModelConfig } from '../model/config.ts';
import { modelTensorShapes } from '../model/names.ts';

const DTYPE = { f16: 'F16', bf16: 'BF16', f32: 'F32' } as const;

/** Zip bytes per entry beside its data: local header, data descriptor, central record (name twice). */
const entryOverhead = (name: string) => 30 + 16 + 46 + 2 * new TextEncoder().encode(name).byteLength;
/** End-of-central-directory record. */
const EOCD = 22;

/** An upper bound on the merged zip's size, in bytes. */
export function mergedZipBytes(config: ModelConfig, files: ReadonlyArray<{ name: string; size: number }>, dtype: MergeDtype = 'f16'): number {
  const specs = modelTensorShapes(config).map((t) => ({ name: t.name, dtype: DTYPE[dtype], shape: t.shape }));
  const shards = planShards(specs);
  const entries: Array<{ name: string; size: number }> = [{ name: 'config.json', size: new TextEncoder().encode(mergedConfigJson(config.raw, dtype)).byteLength }];
  for (const s of shards) entries.push({ name: s.file, size: s.plan.totalSize });
  if (shards.length > 1) entries.push({ name: INDEX_FILE, size: new TextEncoder().encode(shardIndex(shards)).byteLength });
  for (const f of files) if (CARRIED_FILES.test(f.name)) entries.push(f);
  // Deflate may grow incompressible text by a few bytes per 16 KiB block: allow 1% + 64 bytes.
  return entries.reduce((sum, e) => sum + e.size + entryOverhead(e.name) + (e.name.endsWith('.safetensors') ? 0 : Math.ceil(e.size / 100) + 64), EOCD);
}
