// Writing a Hugging Face model folder on disk: safetensors weights (one file, or shards with
// model.safetensors.index.json past a size limit), config.json, and the tokenizer and other
// small files copied from the source folder. Never writes into the source folder.

import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CliError } from './args.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { buildIndex, shardName } from '../formats/safetensors-index.ts';
import type { OutTensor } from '../quant/convert.ts';

const WEIGHT_FILE = /^(model.*\.safetensors|model\.safetensors\.index\.json|pytorch_model.*\.bin(\.index\.json)?)$/;

/** Files of `src` to carry over: tokenizer files, generation config, chat template, README… */
export async function copyModelFiles(src: string, out: string): Promise<string[]> {
  const copied: string[] = [];
  for (const e of await readdir(src, { withFileTypes: true })) {
    if (!e.isFile() || e.name === 'config.json' || WEIGHT_FILE.test(e.name)) continue;
    await copyFile(join(src, e.name), join(out, e.name));
    copied.push(e.name);
  }
  return copied;
}

export async function prepareOutDir(src: string, out: string): Promise<void> {
  if (resolve(src) === resolve(out)) throw new CliError(`--out ${out} is the source folder; choose another folder (the source is never overwritten)`);
  await mkdir(out, { recursive: true });
}

/** Writes tensors as model.safetensors, or shards of at most `maxShardBytes` plus the index. */
export async function writeWeights(out: string, tensors: OutTensor[], maxShardBytes = 2 ** 31): Promise<string[]> {
  const shards: OutTensor[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + t.data.byteLength > maxShardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(t);
    size += t.data.byteLength;
  }
  const meta = { format: 'pt' };
  if (shards.length === 1) {
    await writeFile(join(out, 'model.safetensors'), writeSafetensors(tensors, meta));
    return ['model.safetensors'];
  }
  const files: string[] = [];
  const index: Array<{ file: string; tensors: OutTensor[] }> = [];
  for (const [i, group] of shards.entries()) {
    const file = shardName(i + 1, shards.length);
    await writeFile(join(out, file), writeSafetensors(group, meta));
    files.push(file);
    index.push({ file, tensors: group });
  }
  const entries = index.map((s) => ({
    file: s.file,
    tensors: s.tensors.map((t) => ({ name: t.name, begin: 0, end: t.data.byteLength, numel: t.shape.reduce((a, b) => a * b, 1) })),
  }));
  await writeFile(join(out, 'model.safetensors.index.json'), buildIndex(entries));
  return [...files, 'model.safetensors.index.json'];
}
