// `qlora inspect <file.safetensors|dir>`: the tensors of one safetensors file or of a model
// folder (single file or sharded through model.safetensors.index.json), with totals.

import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { CliError, formatBytes, printJson, table, type Command } from '../args.ts';
import { openSafetensors, type TensorInfo } from '../../formats/safetensors.ts';
import { parseIndex } from '../../formats/safetensors-index.ts';
import { fileSource, modelFolder } from '../../node/model-folder.ts';

interface Listed {
  file: string;
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  numel: number;
}

async function listFile(path: string, label: string): Promise<{ tensors: Listed[]; metadata: Record<string, string> | null }> {
  const reader = await openSafetensors(await fileSource(path, label));
  const tensors = reader.header.tensors.map((t: TensorInfo) => ({
    file: label,
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    bytes: t.end - t.begin,
    numel: t.numel,
  }));
  return { tensors, metadata: reader.header.metadata };
}

async function listTarget(target: string) {
  const st = await stat(target).catch(() => {
    throw new CliError(`${target}: no such file or folder`);
  });
  if (!st.isDirectory()) return { files: [basename(target)], ...(await listFile(target, basename(target))) };
  const folder = modelFolder(target);
  const names = await folder.list();
  let shards: string[];
  if (names.includes('model.safetensors.index.json')) {
    shards = parseIndex(await folder.text('model.safetensors.index.json')).shards;
  } else {
    shards = names.filter((n) => n.endsWith('.safetensors'));
  }
  if (!shards.length) throw new CliError(`${target}: no .safetensors files in this folder`);
  const tensors: Listed[] = [];
  let metadata: Record<string, string> | null = null;
  for (const shard of shards) {
    const r = await listFile(`${target}/${shard}`, shard);
    tensors.push(...r.tensors);
    metadata ??= r.metadata;
  }
  return { files: shards, tensors, metadata };
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'list the tensors of a safetensors file or model folder',
  usage: 'qlora inspect <file.safetensors|dir> [--json]',
  options: { json: { type: 'boolean' } },
  async run(values, positionals) {
    const target = positionals[0];
    if (!target || positionals.length > 1) throw new CliError(`expected one file or folder\nusage: ${this.usage}`);
    const { files, tensors, metadata } = await listTarget(target);
    const totals = {
      files: files.length,
      tensors: tensors.length,
      parameters: tensors.reduce((s, t) => s + t.numel, 0),
      bytes: tensors.reduce((s, t) => s + t.bytes, 0),
      byDtype: Object.fromEntries(
        [...new Set(tensors.map((t) => t.dtype))].sort().map((d) => [d, tensors.filter((t) => t.dtype === d).reduce((s, t) => s + t.bytes, 0)]),
      ),
    };
    if (values.json) {
      printJson({ files, metadata, tensors, totals });
      return;
    }
    const multi = files.length > 1;
    const rows = [[...(multi ? ['file'] : []), 'name', 'dtype', 'shape', 'bytes']];
    for (const t of tensors) rows.push([...(multi ? [t.file] : []), t.name, t.dtype, `[${t.shape.join(', ')}]`, String(t.bytes)]);
    process.stdout.write(table(rows, [rows[0]!.length - 1]) + '\n\n');
    const dtypes = Object.entries(totals.byDtype).map(([d, b]) => `${d} ${formatBytes(b)}`).join(', ');
    process.stdout.write(
      `${totals.tensors} tensors in ${totals.files} file${totals.files > 1 ? 's' : ''}, ` +
        `${totals.parameters.toLocaleString('en-US')} elements, ${totals.bytes.toLocaleString('en-US')} bytes (${formatBytes(totals.bytes)}: ${dtypes})\n`,
    );
    if (metadata) process.stdout.write(`metadata: ${JSON.stringify(metadata)}\n`);
  },
};
