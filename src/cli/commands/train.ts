// `qlora train <model-dir> --data <file|hf-id> --out <adapter-dir>`: QLoRA fine-tuning in Node
// with the same engine and kernels as the studio. Prints one line per optimizer step (step,
// loss, lr, grad norm, tokens/s; eval loss when evaluated) and writes a PEFT adapter folder.

import { mkdir, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { CliError, choice, num, type Command } from '../args.ts';
import { dataSource, loadModelTokenizer } from './data.ts';
import { prepareData } from '../../data/pipeline.ts';
import { parseFormatName } from '../../data/formats.ts';
import { makeLoraConfig, LoraConfigError, LORA_MODULES, type LoraModule } from '../../train/lora-config.ts';
import { makeTrainConfig, SCHEDULE_KINDS, TrainConfigError, type ScheduleKind } from '../../train/train-config.ts';
import { LoraAdapter } from '../../llm/lora.ts';
import { finetune } from '../../llm/finetune.ts';
import { saveAdapter } from '../../llm/adapter-io.ts';
import { modelOptions, openModel, requireDir } from '../model-args.ts';

export const TRAIN_USAGE =
  'qlora train <model-dir> --data <file|hf-dataset-id> --out <adapter-dir> [--steps N] [--epochs E] [--lr LR] [--rank R] ' +
  '[--alpha A] [--dropout P] [--targets q_proj,v_proj,...] [--rslora] [--seq-len N] [--batch-size N] [--grad-accum N] ' +
  '[--schedule constant|linear|cosine] [--warmup N] [--seed S] [--quant nf4|fp4|none] [--eval-split 0.05] [--eval-every N] ' +
  '[--max-grad-norm X] [--weight-decay X] [--format auto|...] [--packing] [--all-tokens] [--max-rows N] [--base-model ID]';

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
    'base-model': { type: 'string' },
    'file-kind': { type: 'string' },
    'text-unit': { type: 'string' },
  },
  async run(values, positionals) {
    const dir = requireDir(positionals[0], 'model', TRAIN_USAGE);
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
    const { tokenizer, template } = loadModelTokenizer(dir);
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
      },
      tokenizer,
      template,
    );
    const s = data.stats;
    process.stderr.write(
      `data: ${data.format}, ${data.train.examples} train / ${data.eval.examples} eval examples, ${s.tokens} tokens, ${s.trainedTokens} trained\n` +
        `model: ${m.config.modelType} ${m.config.numLayers} layers, ${m.quant}${m.prequantized ? ' (pre-quantized)' : ''}; ` +
        `LoRA r=${lora.r} alpha=${lora.alpha} on ${lora.targetModules.join(',')}\n`,
    );
    const adapter = LoraAdapter.init(m.rt, m.config, { ...lora, targetModules: lora.targetModules });
    const result = await finetune(m.rt, m.model, adapter, data, {
      train,
      evalEvery: num(values, 'eval-every', 0, { int: true, min: 0 }),
      onStep: (e) => {
        const ev = e.evalLoss !== undefined ? `  eval ${e.evalLoss.toFixed(4)}` : '';
        process.stdout.write(
          `step ${e.step}/${e.totalSteps}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(3)}  grad-norm ${e.gradNorm.toFixed(4)}  tok/s ${e.tokensPerSecond.toFixed(1)}${ev}\n`,
        );
      },
    });
    const baseModel = (values['base-model'] as string | undefined) ?? baseModelId(m.config.raw, dir);
    const files = await saveAdapter(m.rt, adapter, baseModel);
    await mkdir(values.out, { recursive: true });
    for (const [name, content] of Object.entries(files)) await writeFile(join(values.out, name), content);
    await writeFile(
      join(values.out, 'training_log.json'),
      JSON.stringify({ baseModel, lora, train, data: { format: data.format, stats: s }, result }, null, 2) + '\n',
    );
    const before = result.initialEvalLoss === null ? '' : `eval loss ${result.initialEvalLoss.toFixed(4)} → ${result.evalLoss?.toFixed(4)}; `;
    process.stderr.write(`${before}adapter written to ${resolve(values.out)}\n`);
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
