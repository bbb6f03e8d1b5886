// `qlora quantize <model-dir> --out <dir>`: an HF model folder (single or sharded safetensors,
// F32/F16/BF16) → a bitsandbytes 4-bit folder that transformers + bitsandbytes load: decoder
// linears in bnb's layout, config.json with quantization_config, tokenizer files copied.
// `qlora dequantize <bnb-dir> --out <dir>`: back to F32 safetensors.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError, choice, formatBytes, num, printJson, type Command } from '../args.ts';
import { openCheckpoint } from '../../model/weights.ts';
import { modelFolder } from '../../node/model-folder.ts';
import { dequantizeCheckpoint, quantizeCheckpoint } from '../../quant/convert.ts';
import { bnbQuantizationConfig } from '../../quant/bnb-tensors.ts';
import { validateBlocksize } from '../../quant/blockwise4.ts';
import type { QuantType } from '../../quant/codes.ts';
import { copyModelFiles, prepareOutDir, writeWeights } from '../model-writer.ts';
import { requireDir } from '../model-args.ts';

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  try {
    const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error('expected a JSON object');
    return c;
  } catch (e) {
    throw new CliError(`${join(dir, 'config.json')}: ${(e as Error).message}`);
  }
}

function computeDtype(config: Record<string, unknown>): 'bfloat16' | 'float16' | 'float32' {
  const d = config.torch_dtype ?? config.dtype;
  return d === 'bfloat16' || d === 'float16' ? d : 'float32';
}

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'quantize a model folder to a bitsandbytes 4-bit folder (NF4/FP4)',
  usage: 'qlora quantize <model-dir> --out <dir> [--type nf4|fp4] [--no-double-quant] [--blocksize 64] [--json]',
  options: { out: { type: 'string' }, type: { type: 'string' }, 'no-double-quant': { type: 'boolean' }, blocksize: { type: 'string' }, json: { type: 'boolean' } },
  async run(values, positionals) {
    const dir = requireDir(positionals[0], 'model', this.usage);
    if (typeof values.out !== 'string') throw new CliError(`--out is required\nusage: ${this.usage}`);
    const type = choice<QuantType>(values, 'type', ['nf4', 'fp4'], 'nf4');
    const blocksize = num(values, 'blocksize', 64, { int: true });
    try {
      validateBlocksize(blocksize, '--blocksize');
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    const doubleQuant = values['no-double-quant'] !== true;
    const config = await readConfig(dir);
    if (config.quantization_config) throw new CliError(`${dir}/config.json already has a quantization_config: the model is quantized`);
    await prepareOutDir(dir, values.out);
    const ckpt = await openCheckpoint(modelFolder(dir));
    const { tensors, stats } = await quantizeCheckpoint(ckpt, { type, blocksize, doubleQuant });
    const files = await writeWeights(values.out, tensors);
    const out = { ...config, quantization_config: bnbQuantizationConfig({ type, doubleQuant, computeDtype: computeDtype(config) }) };
    await writeFile(join(values.out, 'config.json'), JSON.stringify(out, null, 2) + '\n');
    const copied = await copyModelFiles(dir, values.out);
    if (values.json) {
      printJson({ ...stats, type, blocksize, doubleQuant, files: [...files, 'config.json', ...copied] });
      return;
    }
    process.stdout.write(
      `quantized ${stats.quantized} linear weights to ${type.toUpperCase()}${doubleQuant ? ' with double-quantized absmax' : ''} (blocksize ${blocksize}); kept ${stats.kept} tensors as they were\n` +
        `bytes: ${stats.bytesBefore.toLocaleString('en-US')} (${formatBytes(stats.bytesBefore)}) → ${stats.bytesAfter.toLocaleString('en-US')} (${formatBytes(stats.bytesAfter)}), ` +
        `${(stats.bytesBefore / Math.max(1, stats.bytesAfter)).toFixed(2)}× smaller\n` +
        `mean relative error of the quantized weights: ${(stats.meanRelativeError * 100).toFixed(3)}%\n` +
        `wrote ${[...files, 'config.json', ...copied].join(', ')} to ${values.out}\n`,
    );
  },
};

export const dequantizeCommand: Command = {
  name: 'dequantize',
  summary: 'write a bitsandbytes 4-bit folder back as F32 safetensors',
  usage: 'qlora dequantize <bnb-dir> --out <dir>',
  options: { out: { type: 'string' } },
  async run(values, positionals) {
    const dir = requireDir(positionals[0], 'bnb model', this.usage);
    if (typeof values.out !== 'string') throw new CliError(`--out is required\nusage: ${this.usage}`);
    const config = await readConfig(dir);
    await prepareOutDir(dir, values.out);
    const ckpt = await openCheckpoint(modelFolder(dir));
    const { tensors, dequantized } = await dequantizeCheckpoint(ckpt);
    const files = await writeWeights(values.out, tensors);
    const { quantization_config: _dropped, ...rest } = config;
    await writeFile(join(values.out, 'config.json'), JSON.stringify({ ...rest, torch_dtype: 'float32' }, null, 2) + '\n');
    const copied = await copyModelFiles(dir, values.out);
    process.stdout.write(`dequantized ${dequantized} linear weights to F32; wrote ${[...files, 'config.json', ...copied].join(', ')} to ${values.out}\n`);
  },
};
