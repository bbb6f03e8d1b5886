// Shared by the CLI commands that load a model: the GPU runtime, a model folder on disk loaded
// to the GPU (quantized on load unless --quant none), its tokenizer, and an optional adapter.

import { existsSync } from 'node:fs';
import { CliError, choice } from './args.ts';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { modelFolder } from '../node/model-folder.ts';
import { resolveModelArg } from '../node/resolve-model.ts';
import type { ModelFiles } from '../model/model-files.ts';
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
  /** The model argument as given (folder or repo id). */
  dir: string;
  files: ModelFiles;
  tokenizer: TextTokenizer;
}

export function requireDir(dir: string | undefined, what: string, usage: string): string {
  if (!dir) throw new CliError(`expected a ${what} folder\nusage: ${usage}`);
  if (!existsSync(dir)) throw new CliError(`${dir}: no such folder`);
  return dir;
}

/** A model argument: a folder, or a Hub repo id ("owner/name[@rev]") that `qlora pull` cached. */
export function requireModel(arg: string | undefined, usage: string): string {
  if (!arg) throw new CliError(`expected a model folder or a cached Hub repo id\nusage: ${usage}`);
  return arg;
}

/** The model's files from a folder or the cache (errors as one CLI line). */
export async function modelFiles(arg: string): Promise<ModelFiles> {
  try {
    return await resolveModelArg(arg);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

export async function openModel(arg: string, values: Record<string, unknown>, extra: { maxPositions?: number } = {}): Promise<CliModel> {
  const quant = choice<QuantChoice>(values, 'quant', QUANT_CHOICES, 'nf4');
  const files = await modelFiles(arg);
  const names = await files.list();
  if (!names.includes('tokenizer.json')) throw new CliError(`${arg}: no tokenizer.json (the model needs its tokenizer)`);
  const rt = await createNodeRuntime({ onError: (m) => process.stderr.write(`qlora: ${m}\n`) });
  const loaded = await loadGpuModel(rt, files, { quant, maxPositions: extra.maxPositions });
  const tcfg = names.includes('tokenizer_config.json') ? await files.text('tokenizer_config.json') : null;
  const tokenizer = createTokenizer(await files.text('tokenizer.json'), tcfg, loaded.config);
  return { ...loaded, rt, dir: arg, files, tokenizer };
}

export async function openAdapter(m: CliModel, dir: string): Promise<LoraAdapter> {
  if (!existsSync(dir)) throw new CliError(`${dir}: no such adapter folder`);
  const { adapter } = await loadAdapter(m.rt, modelFolder(dir), m.config);
  return adapter;
}
