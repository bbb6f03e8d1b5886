// Small instruct models that fit a browser, with the config numbers that size them, so the memory
// estimate is shown before anything is downloaded. Numbers from each repo's config.json; parameter
// counts are computed from them (and match what the Hub shows). The unsloth "-bnb-4bit" repos hold
// the same models already quantized with bitsandbytes NF4 (double-quantized), so they download
// about a third of the bytes and load without quantizing.

import { paramCounts, quant4Bytes, type ModelDims } from '../llm/memory-estimate.ts';
import { LLAMA32_1B, QWEN25_05B, SMOLLM2_135M, SMOLLM2_360M, TINYLLAMA } from '../llm/known-dims.ts';

export interface CatalogModel {
  repo: string;
  /** Short display name. */
  name: string;
  family: string;
  dims: ModelDims;
  /** Already bitsandbytes 4-bit on the Hub. */
  bnb4bit: boolean;
  /** Needs a Hub token and an accepted licence. */
  gated: boolean;
  note: string;
}

export const CATALOG: readonly CatalogModel[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', name: 'SmolLM2 135M Instruct', family: 'SmolLM2', dims: SMOLLM2_135M, bnb4bit: false, gated: false, note: 'Smallest; trains fast on any GPU' },
  { repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', name: 'SmolLM2 360M Instruct', family: 'SmolLM2', dims: SMOLLM2_360M, bnb4bit: false, gated: false, note: 'Better answers, still light' },
  { repo: 'Qwen/Qwen2.5-0.5B-Instruct', name: 'Qwen2.5 0.5B Instruct', family: 'Qwen2.5', dims: QWEN25_05B, bnb4bit: false, gated: false, note: 'Multilingual; large vocabulary' },
  { repo: 'meta-llama/Llama-3.2-1B-Instruct', name: 'Llama 3.2 1B Instruct', family: 'Llama 3.2', dims: LLAMA32_1B, bnb4bit: false, gated: true, note: 'Gated: accept the licence on the Hub and set a token' },
  { repo: 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', name: 'TinyLlama 1.1B Chat', family: 'TinyLlama', dims: TINYLLAMA, bnb4bit: false, gated: false, note: 'Llama 2 architecture, 2k context' },
  { repo: 'unsloth/SmolLM2-135M-Instruct-bnb-4bit', name: 'SmolLM2 135M Instruct · 4-bit', family: 'SmolLM2', dims: SMOLLM2_135M, bnb4bit: true, gated: false, note: 'Pre-quantized NF4' },
  { repo: 'unsloth/SmolLM2-360M-Instruct-bnb-4bit', name: 'SmolLM2 360M Instruct · 4-bit', family: 'SmolLM2', dims: SMOLLM2_360M, bnb4bit: true, gated: false, note: 'Pre-quantized NF4' },
  { repo: 'unsloth/Qwen2.5-0.5B-Instruct-bnb-4bit', name: 'Qwen2.5 0.5B Instruct · 4-bit', family: 'Qwen2.5', dims: QWEN25_05B, bnb4bit: true, gated: false, note: 'Pre-quantized NF4' },
  { repo: 'unsloth/Llama-3.2-1B-Instruct-bnb-4bit', name: 'Llama 3.2 1B Instruct · 4-bit', family: 'Llama 3.2', dims: LLAMA32_1B, bnb4bit: true, gated: false, note: 'Pre-quantized NF4, no token needed' },
  { repo: 'unsloth/tinyllama-chat-bnb-4bit', name: 'TinyLlama 1.1B Chat · 4-bit', family: 'TinyLlama', dims: TINYLLAMA, bnb4bit: true, gated: false, note: 'Pre-quantized NF4' },
];

/** The model preselected on a first visit. */
export const DEFAULT_REPO = 'HuggingFaceTB/SmolLM2-135M-Instruct';

export function catalogModel(repo: string): CatalogModel | undefined {
  return CATALOG.find((m) => m.repo.toLowerCase() === repo.trim().toLowerCase());
}

/** About how many bytes the safetensors weights of a catalog model take (bf16, or bnb NF4 + bf16 rest). */
export function approxDownloadBytes(m: Pick<CatalogModel, 'dims' | 'bnb4bit'>): number {
  const p = paramCounts(m.dims);
  if (!m.bnb4bit) return p.total * 2;
  const perLayer = p.linear / m.dims.numLayers / 7; // average linear size; sizes differ, the sum is what counts
  return p.other * 2 + quant4Bytes(perLayer, true) * 7 * m.dims.numLayers;
}

/** "owner/name" with Hub-legal characters. */
export function isRepoId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/.test(s.trim());
}
