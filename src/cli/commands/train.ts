// `qlora train <model-dir> --data <file|hf-id> --out <adapter-dir>`: QLoRA fine-tuning in Node
// with the same engine and kernels as the studio. Prints one line per optimizer step (step,
// loss, lr, grad norm, tokens/s; eval loss when evaluated) and writes a PEFT adapter folder.
// With --run-id / --checkpoint-every the run checkpoints into the cache folder (FsStore) and
// `--resume <run-id>` continues it exactly (flags not given again come from the checkpoint);
// --gpu-budget pages Adam m/v to CPU memory beyond the budget and prints paging statistics.

import { mkdir, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { CliError, choice, formatBytes, num, type Command } from '../args.ts';
import { dataSource, loadModelTokenizer } from './data.ts';
import { prepareData } from '../../data/pipeline.ts';
import { parseFormatName } from '../../data/formats.ts';
import type { SkipSummary } from '../../data/errors.ts';
import { makeLoraConfig, LoraConfigError, LORA_MODULES, type LoraModule } from '../../train/lora-config.ts';
import { makeTrainConfig, SCHEDULE_KINDS, TrainConfigError, type ScheduleKind } from '../../train/train-config.ts';
import { LoraAdapter } from '../../llm/lora.ts';
import { finetune } from '../../llm/finetune.ts';
import { saveAdapter } from '../../llm/adapter-io.ts';
import { modelOptions, openModel, requireModel } from '../model-args.ts';
import { FsStore } from '../../node/fs-store.ts';
import { migrate } from '../../storage/layout.ts';
import { MemoryStore } from '../../storage/memory-store.ts';
import { newRunId, readRunState } from '../../llm/checkpoint.ts';
import { existsSync } from 'node:fs';

export const TRAIN_USAGE =
  'qlora train <model-dir> --data <file|hf-dataset-id> --out <adapter-dir> [--steps N] [--epochs E] [--lr LR] [--rank R] ' +
  '[--alpha A] [--dropout P] [--targets q_proj,v_proj,...] [--rslora] [--seq-len N] [--batch-size N] [--grad-accum N] ' +
  '[--schedule constant|linear|cosine] [--warmup N] [--seed S] [--quant nf4|fp4|none] [--eval-split 0.05] [--eval-every N] ' +
  '[--max-grad-norm X] [--weight-decay X] [--format auto|...] [--packing] [--all-tokens] [--max-rows N] [--strict] [--base-model ID] ' +
  '[--gpu-budget 64MB] [--run-id ID] [--checkpoint-every N] [--resume RUN-ID]';

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a LoRA adapter on a frozen 4-bit base and write it in PEFT format',
  usage: TRAIN_USAGE,
  options: {
    ...modelOptions,
    data: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    rank: { type: 'string' },
    alpha: { type: 'string' },
    dropout: { type: 'string' },
    targets: { type: 'string' },
    rslora: { type: 'boolean' },
    'seq-len': { type: 'string' },
    'batch-size': { type: 'string' },
    'grad-accum': { type: 'string' },
    schedule: { type: 'string' },
    warmup: { type: 'string' },
    seed: { type: 'string' },
    'eval-split': { type: 'string' },
    'eval-every': { type: 'string' },
    'max-grad-norm': { type: 'string' },
    'weight-decay': { type: 'string' },
    format: { type: 'string' },
    packing: { type: 'boolean' },
    'all-tokens': { type: 'boolean' },
    'max-rows': { type: 'string' },
    strict: { type: 'boolean' },
    'base-model': { type: 'string' },
    'file-kind': { type: 'string' },
    'text-unit': { type: 'string' },
    'gpu-budget': { type: 'string' },
    'run-id': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    resume: { type: 'string' },
  },
  async run(values, positionals) {
    const dir = requireModel(positionals[0], TRAIN_USAGE);
    const gpuBudget = values['gpu-budget'] === undefined ? undefined : parseBytes(String(values['gpu-budget']), '--gpu-budget');
    const checkpointEvery = num(values, 'checkpoint-every', 100, { int: true, min: 0 });
    const resumeId = values.resume as string | undefined;
    if (resumeId !== undefined && values['run-id'] !== undefined) throw new CliError('--resume continues a run under its own id; leave out --run-id');
    let runId = resumeId ?? (values['run-id'] as string | undefined);
    if (runId === undefined && values['checkpoint-every'] !== undefined) runId = newRunId();
    const store = runId === undefined ? undefined : new FsStore();
    if (store) await migrate(store);
    if (resumeId !== undefined) {
      const st = await readRunState(store!, resumeId);
      if (!st) throw new CliError(`run ${resumeId}: no checkpoint in ${store!.name}`);
      // Flags not given again come from the run; flags given must say what the run was started with.
      const saved = (st.config.options.cli ?? {}) as Values;
      const given = comparable(values);
      const diffs = Object.keys(given).filter((k) => JSON.stringify(given[k]) !== JSON.stringify(comparable(saved)[k])).map((k) => `--${k}`);
      if (diffs.length) throw new CliError(`run ${resumeId} was started with other settings for ${diffs.join(', ')}; leave them out to use the run's own`);
      values = { ...saved, ...definedOnly(values) };
    }
    if (typeof values.data !== 'string') throw new CliError(`--data is required\nusage: ${TRAIN_USAGE}`);
    if (typeof values.out !== 'string') throw new CliError(`--out is required\nusage: ${TRAIN_USAGE}`);
    const targets = typeof values.targets === 'string' ? values.targets.split(',').map((s) => s.trim()).filter(Boolean) : [...LORA_MODULES];
    let lora, train;
    try {
      lora = makeLoraConfig({
        r: num(values, 'rank', 64, { int: true }),
        alpha: num(values, 'alpha', 16),
        dropout: num(values, 'dropout', 0.05),
        targetModules: targets as LoraModule[],
        useRslora: values.rslora === true,
        seed: num(values, 'seed', 0, { int: true }),
      });
      const steps = num(values, 'steps', 0, { int: true, min: 0 });
      train = makeTrainConfig({
        lr: num(values, 'lr', 2e-4),
        maxSteps: steps,
        epochs: num(values, 'epochs', 1, { int: true, min: 1 }),
        seqLen: num(values, 'seq-len', 512, { int: true }),
        batchSize: num(values, 'batch-size', 1, { int: true }),
        gradAccum: num(values, 'grad-accum', 1, { int: true }),
        schedule: choice<ScheduleKind>(values, 'schedule', SCHEDULE_KINDS, 'constant'),
        warmupSteps: num(values, 'warmup', 0, { int: true, min: 0 }),
        warmupRatio: values.warmup === undefined ? 0.03 : 0,
        seed: num(values, 'seed', 0, { int: true }),
        evalSplit: num(values, 'eval-split', 0.05, { min: 0 }),
        maxGradNorm: num(values, 'max-grad-norm', 0.3, { min: 0 }),
        weightDecay: num(values, 'weight-decay', 0, { min: 0 }),
      });
    } catch (e) {
      if (e instanceof LoraConfigError || e instanceof TrainConfigError) throw new CliError(e.message.replace(/:\n- /, ': ').replace(/\n- /g, '; '));
      throw e;
    }
    let format: string;
    try {
      format = parseFormatName((values.format as string | undefined) ?? 'auto');
    } catch (e) {
      throw new CliError(`--format: ${(e as Error).message}`);
    }

    const m = await openModel(dir, values, { maxPositions: train.seqLen });
    const { tokenizer, template } = await loadModelTokenizer(m.files);
    const data = await prepareData(
      dataSource(values.data, values, process.env),
      {
        format,
        maxLength: train.seqLen,
        packing: values.packing === true,
        labelMode: values['all-tokens'] ? 'all' : 'assistant',
        evalSplit: train.evalSplit,
        seed: train.seed,
        batchSize: train.batchSize,
        maxRows: values['max-rows'] === undefined ? undefined : num(values, 'max-rows', 0, { int: true, min: 1 }),
        padding: 'longest',
        onBadRow: values.strict === true ? 'error' : 'skip',
      },
      tokenizer,
      template,
    );
    const s = data.stats;
    process.stderr.write(
      `data: ${data.format}, ${data.train.examples} train / ${data.eval.examples} eval examples, ${s.tokens} tokens, ${s.trainedTokens} trained\n` +
        skippedLines(s.skipped) +
        `model: ${m.config.modelType} ${m.config.numLayers} layers, ${m.quant}${m.prequantized ? ' (pre-quantized)' : ''}; ` +
        `LoRA r=${lora.r} alpha=${lora.alpha} on ${lora.targetModules.join(',')}\n`,
    );
    const adapter = LoraAdapter.init(m.rt, m.config, { ...lora, targetModules: lora.targetModules });
    const baseModel = (values['base-model'] as string | undefined) ?? baseModelId(m.config.raw, dir);
    let stopRequested = false;
    const onSigint = () => {
      stopRequested = true;
      process.stderr.write('stopping after this step (a checkpoint is written first)...\n');
    };
    if (store) {
      process.stderr.write(`run ${runId}: checkpoints ${checkpointEvery ? `every ${checkpointEvery} steps ` : ''}in ${store.name}\n`);
      process.once('SIGINT', onSigint);
    }
    const result = await finetune(m.rt, m.model, adapter, data, {
      train,
      evalEvery: num(values, 'eval-every', 0, { int: true, min: 0 }),
      store,
      runId,
      checkpointEvery: store ? checkpointEvery : 0,
      resume: resumeId !== undefined,
      shouldStop: () => stopRequested,
      meta: { modelId: baseModel, options: { cli: comparable(values) } },
      gpuBudget,
      pageStore: gpuBudget === undefined ? undefined : new MemoryStore('CPU memory', { share: true }),
      onMessage: (msg) => process.stderr.write(`${msg}\n`),
      onCheckpoint: (c) => process.stderr.write(`checkpoint step ${c.step}: run ${c.runId} (${formatBytes(c.bytes)}, ${c.ms.toFixed(0)} ms)\n`),
      onStep: (e) => {
        const ev = e.evalLoss !== undefined ? `  eval ${e.evalLoss.toFixed(4)}` : '';
        process.stdout.write(
          `step ${e.step}/${e.totalSteps}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(3)}  grad-norm ${e.gradNorm.toFixed(4)}  tok/s ${e.tokensPerSecond.toFixed(1)}${ev}\n`,
        );
      },
    });
    process.off('SIGINT', onSigint);
    const files = await saveAdapter(m.rt, adapter, baseModel);
    await mkdir(values.out, { recursive: true });
    for (const [name, content] of Object.entries(files)) await writeFile(join(values.out, name), content);
    await writeFile(
      join(values.out, 'training_log.json'),
      JSON.stringify({ baseModel, lora, train, data: { format: data.format, stats: s }, result }, null, 2) + '\n',
    );
    const before = result.initialEvalLoss === null ? '' : `eval loss ${result.initialEvalLoss.toFixed(4)} → ${result.evalLoss?.toFixed(4)}; `;
    process.stderr.write(`${before}adapter written to ${resolve(values.out)}\n`);
    const p = result.paging;
    if (p) {
      process.stderr.write(
        `paging: budget ${formatBytes(p.budget)} for ${formatBytes(adapter.parameterCount * 8)} of Adam state; ${p.pagesIn} pages in (${formatBytes(p.bytesIn)}), ` +
          `${p.pagesOut} out (${formatBytes(p.bytesOut)}); waited ${p.waitMs.toFixed(1)} ms, reads ${p.readMs.toFixed(1)} ms, write-backs ${p.writeMs.toFixed(1)} ms (overlapped)\n`,
      );
    }
    if (result.stopped && runId) process.stderr.write(`paused at step ${result.steps}; continue with: qlora train ${dir} --resume ${runId} --out ${values.out}\n`);
    adapter.destroy();
    m.model.destroy();
  },
};

/** The Hub id to record as base_model_name_or_path: config's _name_or_path unless it is a local path. */
function baseModelId(raw: Readonly<Record<string, unknown>>, dir: string): string {
  const n = raw._name_or_path;
  if (typeof n === 'string' && n && !isAbsolute(n) && !n.startsWith('.')) return n;
  return basename(resolve(dir));
}

type Values = Record<string, string | boolean | string[] | undefined>;

/** Flags that do not change the numbers of a run (not stored with it, free to change on resume). */
const RUN_FREE = new Set(['out', 'gpu-budget', 'checkpoint-every', 'run-id', 'resume', 'help']);

function definedOnly(values: Values): Values {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/** The flags a run is defined by, with a local --data file made absolute. */
function comparable(values: Values): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || RUN_FREE.has(k)) continue;
    out[k] = k === 'data' && typeof v === 'string' && existsSync(v) ? resolve(v) : v;
  }
  return out;
}

/** "64MB", "1.5GB", "4096" (bytes); KB/MB/GB are powers of 1024 (KiB/MiB/GiB also accepted). */
export function parseBytes(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\s*$/i.exec(text);
  if (!m) throw new CliError(`${flag} expects a size like 64MB (B, KB, MB or GB), got "${text}"`);
  const unit = (m[2] ?? 'B').toUpperCase().replace('I', '');
  const bytes = Math.floor(Number(m[1]) * 1024 ** ['B', 'KB', 'MB', 'GB'].indexOf(unit));
  if (bytes <= 0) throw new CliError(`${flag} must be more than 0 bytes, got "${text}"`);
  return bytes;
}

/**
 * What `train` says about rows it did not use: the count by reason and the first few rows with
 * theirs (`qlora data` shows the full report; --strict makes the first bad row an error).
 */
export function skippedLines(sk: SkipSummary, show = 3): string {
  if (sk.total === 0) return '';
  const reasons = Object.entries(sk.byReason).map(([k, n]) => `${k} ${n}`).join(', ');
  const head = `data: skipped ${sk.total} row${sk.total === 1 ? '' : 's'} (${reasons}); --strict stops at the first instead\n`;
  return head + sk.samples.slice(0, show).map((x) => `  ${x.where}: ${x.reason}\n`).join('') + (sk.total > show ? `  … ${sk.total - show} more (qlora data lists them)\n` : '');
}
