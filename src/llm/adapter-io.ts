// PEFT adapter folders ↔ a GPU LoraAdapter: adapter_config.json (PEFT's exact format) and
// adapter_model.safetensors (F32 lora_A [r, in] / lora_B [out, r] under PEFT names). Loading
// accepts adapters trained elsewhere with PEFT (F32/F16/BF16, with or without adapter names).

import type { GpuRuntime } from '../gpu/runtime.ts';
import { bytesSource } from '../formats/byte-source.ts';
import { openSafetensors } from '../formats/safetensors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { ModelFiles } from '../model/model-files.ts';
import { adapterConfigJson, parseAdapterConfig, readAdapter, writeAdapter } from '../train/peft.ts';
import type { LoraConfig } from '../train/lora-config.ts';
import { peftLoraName } from '../model/names.ts';
import { LoraAdapter } from './lora.ts';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** The two files of a PEFT adapter folder, from the adapter's current GPU parameters. */
export async function saveAdapter(rt: GpuRuntime, lora: LoraAdapter, baseModel: string): Promise<Record<string, string | Uint8Array>> {
  const s = lora.settings;
  const cfg: LoraConfig = { r: s.r, alpha: s.alpha, dropout: s.dropout, targetModules: [...s.targetModules], useRslora: s.useRslora, seed: s.seed };
  const tensors = await lora.read(rt);
  return {
    [ADAPTER_CONFIG]: adapterConfigJson(cfg, baseModel),
    [ADAPTER_WEIGHTS]: writeAdapter(new Map([...tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data }]))),
  };
}

/** Loads a PEFT adapter folder onto the GPU for a model with `config`. */
export async function loadAdapter(rt: GpuRuntime, files: ModelFiles, config: ModelConfig): Promise<{ adapter: LoraAdapter; baseModel: string | null }> {
  const parsed = parseAdapterConfig(await files.text(ADAPTER_CONFIG), ADAPTER_CONFIG, { numLayers: config.numLayers });
  const src = await files.open(ADAPTER_WEIGHTS);
  const reader = await openSafetensors(bytesSource(await src.read(0, src.size), ADAPTER_WEIGHTS));
  const tensors = await readAdapter(reader, parsed.config, config);
  const c = parsed.config;
  const adapter = LoraAdapter.fromTensors(
    rt,
    config,
    { r: c.r, alpha: c.alpha, dropout: c.dropout, useRslora: c.useRslora, targetModules: c.targetModules, seed: c.seed },
    (l, t) => ({ a: tensors.get(peftLoraName(l, t, 'A'))!.data, b: tensors.get(peftLoraName(l, t, 'B'))!.data }),
  );
  return { adapter, baseModel: parsed.baseModel };
}
