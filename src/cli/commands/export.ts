// `qlora export <adapter-dir> --zip <file.zip>`: the adapter as a PEFT zip with a model card (and
// the run's training config and loss history when the folder has training_log.json).
// `qlora export <adapter-dir> --model <model-dir> --merged --out <dir>`: the base model with the
// adapter merged into its weights, as F16/BF16/F32 safetensors (sharded past --shard-size) with
// config.json and the tokenizer files — on the GPU (the base loaded as it was trained, NF4 by
// default), or on the CPU with --cpu.

import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CliError, choice, formatBytes, type Command } from '../args.ts';
import { prepareOutDir } from '../model-writer.ts';
import { QUANT_CHOICES, requireDir } from '../model-args.ts';
import { createNodeRuntime } from '../../gpu/node.ts';
import { modelFolder } from '../../node/model-folder.ts';
import { openCheckpoint } from '../../model/weights.ts';
import { parseModelConfig } from '../../model/config.ts';
import { openSafetensors } from '../../formats/safetensors.ts';
import { loadGpuModel, type QuantChoice } from '../../llm/load.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter } from '../../llm/adapter-io.ts';
import { parseAdapterConfig, readAdapter } from '../../train/peft.ts';
import { RefError } from '../../share/refs.ts';
import { ExportError, type FileSink } from '../../export/sink.ts';
import { parseTrainingRecord, streamAdapterZip, type TrainingRecord } from '../../export/adapter-zip.ts';
import { DEFAULT_SHARD_BYTES, MERGE_DTYPES, mergeOnCpu, mergeOnGpu, type MergeDtype, type MergeResult } from '../../export/merge.ts';

export const EXPORT_USAGE =
  'qlora export <adapter-dir> --zip <file.zip> [--base-model REPO-ID] [--dataset REF] [--title TEXT]\n' +
  '       qlora export <adapter-dir> --model <model-dir> --merged --out <dir> [--dtype f16|bf16|f32] [--quant nf4|fp4|none] [--shard-size 2GB] [--cpu]';

export const TRAINING_LOG = 'training_log.json';

/** "2GB", "500MB", "1.5GiB", "123456" → bytes (GB = 10^9 as the Hub counts, GiB = 2^30). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i.exec(s);
  if (!m) throw new CliError(`--shard-size expects a size like 2GB, 500MB or a byte count, got "${s}"`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };
  const n = Math.floor(Number(m[1]) * mult[unit]!);
  if (n < 1) throw new CliError(`--shard-size must be at least 1 byte, got "${s}"`);
  return n;
}

/** A FileSink writing into a folder: each file to <name>.partial, renamed when complete. */
export function folderSink(dir: string): FileSink {
  return {
    async file(name) {
      if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) throw new ExportError(`refusing to write ${JSON.stringify(name)}: not a plain file name`);
      const path = join(dir, name);
      const tmp = `${path}.partial`;
      const fh = await open(tmp, 'w');
      return {
        async write(chunk) {
          let done = 0;
          while (done < chunk.byteLength) done += (await fh.write(chunk, done, chunk.byteLength - done)).bytesWritten;
        },
        async close() {
          await fh.close();
          await rename(tmp, path);
        },
      };
    },
  };
}

async function readRecord(adapterDir: string): Promise<TrainingRecord | null> {
  const p = join(adapterDir, TRAINING_LOG);
  if (!existsSync(p)) return null;
  return parseTrainingRecord(await readFile(p, 'utf8'), p);
}

function cliMessage(e: unknown): never {
  if (e instanceof RefError || e instanceof ExportError) throw new CliError(e.message);
  throw e;
}

async function exportZip(adapterDir: string, file: string, values: Record<string, unknown>): Promise<void> {
  for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) if (!existsSync(join(adapterDir, f))) throw new CliError(`${adapterDir}: no ${f} (not a PEFT adapter folder)`);
  const files = {
    [ADAPTER_CONFIG]: await readFile(join(adapterDir, ADAPTER_CONFIG), 'utf8'),
    [ADAPTER_WEIGHTS]: new Uint8Array(await readFile(join(adapterDir, ADAPTER_WEIGHTS))),
  };
  const record = await readRecord(adapterDir);
  await mkdir(dirname(resolve(file)), { recursive: true });
  const tmp = `${file}.partial`;
  const out = createWriteStream(tmp);
  const failed = new Promise<never>((_, rej) => out.on('error', rej));
  let bytes = 0;
  let names: string[];
  try {
    names = await streamAdapterZip(
      {
        files,
        record,
        baseModel: values['base-model'] as string | undefined,
        dataset: values.dataset as string | undefined,
        title: values.title as string | undefined,
      },
      async (chunk) => {
        bytes += chunk.byteLength;
        if (!out.write(chunk)) await Promise.race([new Promise<void>((r) => out.once('drain', () => r())), failed]);
      },
    );
    await Promise.race([new Promise<void>((r) => out.end(() => r())), failed]);
  } catch (e) {
    out.destroy();
    await rm(tmp, { force: true });
    cliMessage(e);
  }
  await rename(tmp, file);
  process.stdout.write(`wrote ${file} (${formatBytes(bytes)}): ${names!.join(', ')}${record ? '' : ` (no ${TRAINING_LOG} in ${adapterDir}: the model card has no training statistics)`}\n`);
}

async function exportMerged(adapterDir: string, values: Record<string, unknown>): Promise<void> {
  const modelDir = values.model;
  if (typeof modelDir !== 'string') throw new CliError(`--merged needs --model <model-dir> (the base model folder)\nusage: ${EXPORT_USAGE}`);
  requireDir(modelDir, 'model', EXPORT_USAGE);
  const out = values.out;
  if (typeof out !== 'string') throw new CliError(`--merged needs --out <dir>\nusage: ${EXPORT_USAGE}`);
  if (resolve(out) === resolve(adapterDir)) throw new CliError(`--out ${out} is the adapter folder; choose another folder`);
  const dtype = choice<MergeDtype>(values, 'dtype', MERGE_DTYPES, 'f16');
  const record = await readRecord(adapterDir);
  const trained = QUANT_CHOICES.includes(record?.quant as QuantChoice) ? (record!.quant as QuantChoice) : 'nf4';
  const quant = choice<QuantChoice>(values, 'quant', QUANT_CHOICES, trained);
  const maxShardBytes = typeof values['shard-size'] === 'string' ? parseSize(values['shard-size']) : DEFAULT_SHARD_BYTES;
  await prepareOutDir(modelDir, out);
  const base = modelFolder(modelDir);
  const adapterFiles = modelFolder(adapterDir);
  const sink = folderSink(out);
  let lastPct = -1;
  const onProgress = (done: number, total: number) => {
    const pct = Math.floor((100 * done) / total);
    if (pct >= lastPct + 10 || done === total) {
      lastPct = pct;
      process.stderr.write(`merging: ${done}/${total} tensors\n`);
    }
  };
  let res: MergeResult;
  try {
    if (values.cpu) {
      const config = parseModelConfig(await base.text('config.json'));
      const parsed = parseAdapterConfig(await adapterFiles.text(ADAPTER_CONFIG), join(adapterDir, ADAPTER_CONFIG), { numLayers: config.numLayers });
      const tensors = await readAdapter(await openSafetensors(await adapterFiles.open(ADAPTER_WEIGHTS)), parsed.config, config);
      res = await mergeOnCpu(config, await openCheckpoint(base), { config: parsed.config, tensors }, sink, { dtype, quant, maxShardBytes, files: base, onProgress });
    } else {
      const rt = await createNodeRuntime({ onError: (m) => process.stderr.write(`qlora: ${m}\n`) });
      const { model, config } = await loadGpuModel(rt, base, { quant, maxPositions: 16 });
      const { adapter } = await loadAdapter(rt, adapterFiles, config);
      res = await mergeOnGpu(rt, model, adapter, await openCheckpoint(base), sink, { dtype, maxShardBytes, files: base, onProgress });
      adapter.destroy();
      model.destroy();
    }
  } catch (e) {
    cliMessage(e);
  }
  process.stdout.write(
    `merged the adapter into ${res!.merged} linear weights (base ${quant === 'none' ? 'in full precision' : `dequantized from ${quant.toUpperCase()}`}) on the ${values.cpu ? 'CPU' : 'GPU'}; ` +
      `wrote ${res!.tensors} ${dtype.toUpperCase()} tensors (${formatBytes(res!.bytes)}) in ${res!.shards} file${res!.shards > 1 ? 's' : ''}: ${res!.files.join(', ')} to ${out}\n`,
  );
}

export const exportCommand: Command = {
  name: 'export',
  summary: 'export an adapter as a PEFT zip with a model card, or merged into its base model',
  usage: EXPORT_USAGE,
  options: {
    zip: { type: 'string' },
    merged: { type: 'boolean' },
    model: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string' },
    quant: { type: 'string' },
    'shard-size': { type: 'string' },
    cpu: { type: 'boolean' },
    'base-model': { type: 'string' },
    dataset: { type: 'string' },
    title: { type: 'string' },
  },
  async run(values, positionals) {
    const adapterDir = requireDir(positionals[0], 'adapter', EXPORT_USAGE);
    if (positionals.length > 1) throw new CliError(`unexpected argument "${positionals[1]}"\nusage: ${EXPORT_USAGE}`);
    if (typeof values.zip !== 'string' && !values.merged) throw new CliError(`choose --zip <file.zip> and/or --merged --out <dir>\nusage: ${EXPORT_USAGE}`);
    if (values.merged !== true && (values.out !== undefined || values.model !== undefined)) throw new CliError(`--out and --model go with --merged\nusage: ${EXPORT_USAGE}`);
    if (typeof values.zip === 'string') await exportZip(adapterDir, values.zip, values);
    if (values.merged) await exportMerged(adapterDir, values);
  },
};
