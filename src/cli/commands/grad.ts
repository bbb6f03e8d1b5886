// `qlora grad <model-dir> --adapter <dir> --batch <batch.json> --out <grads.safetensors>`:
// the loss and every LoRA gradient for one batch, dropout off — how the engine is checked
// against other implementations (e.g. PyTorch + PEFT on the same model, adapter and batch).
// batch.json: {"input_ids": [[...]], "labels": [[...]]} (HF convention: unshifted, −100 ignored;
// equal-length rows; "attention_mask" optional, 0 marks padding).

import { readFile, writeFile } from 'node:fs/promises';
import { CliError, type Command } from '../args.ts';
import { writeSafetensors } from '../../formats/safetensors.ts';
import { makeBatch } from '../../llm/batch.ts';
import { modelOptions, openAdapter, openModel, requireModel } from '../model-args.ts';

function intRows(v: unknown, field: string): number[][] {
  if (!Array.isArray(v) || !v.length || !v.every((r) => Array.isArray(r) && r.every((x) => Number.isInteger(x)))) {
    throw new CliError(`batch.json: "${field}" must be a non-empty list of lists of integers`);
  }
  return v as number[][];
}

export const gradCommand: Command = {
  name: 'grad',
  summary: 'loss and LoRA gradients of one batch (for checking against other implementations)',
  usage: 'qlora grad <model-dir> --adapter <dir> --batch <batch.json> --out <grads.safetensors> [--quant nf4|fp4|none]',
  options: { ...modelOptions, adapter: { type: 'string' }, batch: { type: 'string' }, out: { type: 'string' } },
  async run(values, positionals) {
    const dir = requireModel(positionals[0], this.usage);
    for (const f of ['adapter', 'batch', 'out']) if (typeof values[f] !== 'string') throw new CliError(`--${f} is required\nusage: ${this.usage}`);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(await readFile(values.batch as string, 'utf8'));
    } catch (e) {
      throw new CliError(`${values.batch}: ${(e as Error).message}`);
    }
    const inputIds = intRows(json.input_ids, 'input_ids');
    const labels = json.labels === undefined ? inputIds : intRows(json.labels, 'labels');
    const mask = json.attention_mask === undefined ? null : intRows(json.attention_mask, 'attention_mask');
    const S = inputIds[0]!.length;
    inputIds.forEach((r, b) => {
      if (r.length !== S) throw new CliError(`batch.json: input_ids row ${b} has ${r.length} tokens, row 0 has ${S} (rows must be equal length)`);
      if (labels[b]?.length !== S) throw new CliError(`batch.json: labels row ${b} must have ${S} entries like input_ids`);
      if (mask && mask[b]?.length !== S) throw new CliError(`batch.json: attention_mask row ${b} must have ${S} entries`);
    });
    const m = await openModel(dir, values, { maxPositions: S });
    for (const r of inputIds) for (const id of r) if (id < 0 || id >= m.config.vocabSize) throw new CliError(`batch.json: token id ${id} is outside the vocabulary (0..${m.config.vocabSize - 1})`);
    const lora = await openAdapter(m, values.adapter as string);
    (lora.settings as { dropout: number }).dropout = 0;
    const batch = makeBatch({ inputIds, labels, segmentIds: mask ?? undefined });
    lora.zeroGrads(m.rt);
    m.model.trainStep(batch, lora, 0);
    const loss = await m.model.readLoss();
    const grads = await lora.readGrads(m.rt);
    const tensors = [
      { name: 'loss', dtype: 'F32' as const, shape: [1], data: new Float32Array([loss.mean]) },
      ...[...grads].map(([name, g]) => ({ name, dtype: 'F32' as const, shape: g.shape, data: g.data })),
    ];
    await writeFile(values.out as string, writeSafetensors(tensors, { format: 'pt' }));
    process.stderr.write(`loss ${loss.mean.toFixed(6)} over ${loss.count} tokens; ${grads.size} gradient tensors → ${values.out}\n`);
    lora.destroy();
    m.model.destroy();
  },
};
