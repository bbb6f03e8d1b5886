// Shared by the CLI commands that load a model: the GPU runtime, a model folder on disk loaded
// to the GPU (quantized on load unless --quant none), its tokenizer, and an optional adapter.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, choice } from './args.ts';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { modelFolder } from '../node/model-folder.ts';
import { createTokenizer, type TextTokenizer } from '../model/tokenizer.ts';
import { loadGpuModel, type LoadedModel, type QuantChoice } from '../llm/load.ts';
import { loadAdapter } from '../llm/adapter-io.ts';
import type { LoraAdapter } from '../llm/lora.ts';

export const QUANT_CHOICES = ['nf4', 'fp4', 'none'] as const;

export const modelOptions = {
  quant: { type: 'string' as const },
  'max-positions': { type: 'string' as const },
};

export interface CliModel extends LoadedModel {
  rt: GpuRuntime;
  dir: string;
  tokenizer: TextTokenizer;
}

export function requireDir(dir: string | undefined, what: string, usage: string): string {
  if (!dir) throw new CliError(`expected a ${what} folder\nusage: ${usage}`);
  if (!existsSync(dir)) throw new CliError(`${dir}: no such folder`);
  return dir;
}

export async function openModel(dir: string, values: Record<string, unknown>, extra: { maxPositions?: number } = {}): Promise<CliModel> {
  const quant = choice<QuantChoice>(values, 'quant', QUANT_CHOICES, 'nf4');
  const rt = await createNodeRuntime({ onError: (m) => process.stderr.write(`qlora: ${m}\n`) });
  const files = modelFolder(dir);
  const loaded = await loadGpuModel(rt, files, { quant, maxPositions: extra.maxPositions });
  const tjson = join(dir, 'tokenizer.json');
  if (!existsSync(tjson)) throw new CliError(`${dir}: no tokenizer.json (the model folder needs its tokenizer)`);
  const tcfg = existsSync(join(dir, 'tokenizer_config.json')) ? await files.text('tokenizer_config.json') : null;
  const tokenizer = createTokenizer(await files.text('tokenizer.json'), tcfg, loaded.config);
  return { ...loaded, rt, dir, tokenizer };
}

export async function openAdapter(m: CliModel, dir: string): Promise<LoraAdapter> {
  if (!existsSync(dir)) throw new CliError(`${dir}: no such adapter folder`);
  const { adapter } = await loadAdapter(m.rt, modelFolder(dir), m.config);
  return adapter;
}
