// `qlora data <file|hf-dataset-id> --model <model-dir>`: runs the data pipeline and prints the
// detected format, statistics, the length histogram, skipped-row reasons and examples with the trained
// tokens marked ([[…]], or green on a terminal); `--json` prints the same plus the first batch as JSON.
// Node only (reads files); the pipeline itself is engine code.

import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { CliError, type Command } from '../args.ts';
import { modelFiles } from '../model-args.ts';
import type { ModelFiles } from '../../model/model-files.ts';
import { FORMAT_NAMES, parseFormatName } from '../../data/formats.ts';
import { looksLikeHfDatasetId } from '../../data/hf.ts';
import { prepareData, type DataSource, type PipelineOptions } from '../../data/pipeline.ts';
import { exampleLabels, markTrained } from '../../data/preview.ts';
import { FILE_KINDS, type FileKind } from '../../data/readers.ts';
import { formatHistogram, formatStats } from '../../data/stats.ts';
import { chatTemplateFromConfig, type ChatTemplate } from '../../data/template.ts';
import { createDataTokenizer, type DataTokenizer } from '../../data/tokenize.ts';

export const DATA_USAGE =
  'qlora data <file|hf-dataset-id> --model <model-dir> [--format auto|' + FORMAT_NAMES.join('|') + '] [--max-length N] ' +
  '[--packing] [--all-tokens] [--truncation drop|split|truncate] [--eval-split F] [--seed N] [--batch-size N] [--preview N] ' +
  '[--file-kind jsonl|json|csv|tsv|text] [--text-unit line|paragraph|document] [--config NAME] [--split NAME] [--endpoint URL] ' +
  '[--max-rows N] [--strict] [--fallback-template] [--json]';

export const DATA_OPTIONS = {
  model: { type: 'string', short: 'm' },
  format: { type: 'string', short: 'f' },
  'max-length': { type: 'string' },
  'seq-len': { type: 'string' },
  packing: { type: 'boolean' },
  'all-tokens': { type: 'boolean' },
  truncation: { type: 'string' },
  'eval-split': { type: 'string' },
  seed: { type: 'string' },
  'batch-size': { type: 'string' },
  preview: { type: 'string' },
  'file-kind': { type: 'string' },
  'text-unit': { type: 'string' },
  config: { type: 'string' },
  split: { type: 'string' },
  endpoint: { type: 'string' },
  'max-rows': { type: 'string' },
  strict: { type: 'boolean' },
  'fallback-template': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

export interface DataIo {
  out?: (s: string) => void;
  /** Colour the trained text (default: stdout is a TTY and NO_COLOR is unset). */
  color?: boolean;
  env?: Record<string, string | undefined>;
}

function int(v: Values, flag: string, fallback: number, min: number): number {
  const raw = v[flag];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new CliError(`--${flag} expects an integer ≥ ${min}, got "${String(raw)}"`);
  return n;
}

function oneOf<T extends string>(v: Values, flag: string, allowed: readonly T[]): T | undefined {
  const raw = v[flag];
  if (raw === undefined) return undefined;
  if (!allowed.includes(raw as T)) throw new CliError(`--${flag} expects one of ${allowed.join(', ')}, got "${String(raw)}"`);
  return raw as T;
}

/** Loads tokenizer.json, tokenizer_config.json and (if present) chat_template.jinja of a model. */
export async function loadModelTokenizer(files: ModelFiles, fallbackTemplate = false): Promise<{ tokenizer: DataTokenizer; template: ChatTemplate }> {
  const names = await files.list();
  if (!names.includes('tokenizer.json')) throw new CliError(`--model: no tokenizer.json (expected a model with tokenizer.json and tokenizer_config.json)`);
  const cfg = names.includes('tokenizer_config.json') ? (JSON.parse(await files.text('tokenizer_config.json')) as Record<string, unknown>) : {};
  const jinja = !fallbackTemplate && names.includes('chat_template.jinja') ? await files.text('chat_template.jinja') : null;
  return {
    tokenizer: createDataTokenizer(await files.text('tokenizer.json'), cfg),
    template: chatTemplateFromConfig(cfg, { chatTemplateJinja: jinja, fallback: fallbackTemplate }),
  };
}

export function dataSource(spec: string, v: Values, env: Record<string, string | undefined>): DataSource {
  if (existsSync(spec) && statSync(spec).isFile()) {
    const fileKind = oneOf(v, 'file-kind', FILE_KINDS) as FileKind | undefined;
    return { kind: 'file', name: basename(spec), chunks: createReadStream(spec, { highWaterMark: 1 << 20 }), fileKind };
  }
  if (!looksLikeHfDatasetId(spec)) throw new CliError(`no such file "${spec}" (and it is not a Hugging Face dataset id like owner/name)`);
  return {
    kind: 'hf',
    dataset: spec,
    options: {
      endpoint: (v.endpoint as string | undefined) ?? env.QLORA_DATASETS_ENDPOINT,
      token: env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN,
      config: v.config as string | undefined,
      split: v.split as string | undefined,
    },
  };
}

/** Runs the command from parsed option values and positionals. */
export async function runData(v: Values, positionals: string[], io: DataIo = {}): Promise<void> {
  const out = io.out ?? ((s: string) => void process.stdout.write(s));
  const env = io.env ?? process.env;
  if (positionals.length !== 1) throw new CliError(`expected one dataset (a file or a Hugging Face dataset id)\nusage: ${DATA_USAGE}`);
  if (typeof v.model !== 'string') throw new CliError(`--model <model-dir> is required (its tokenizer and chat template are used)\nusage: ${DATA_USAGE}`);
  let format: string;
  try {
    format = parseFormatName((v.format as string | undefined) ?? 'auto');
  } catch (e) {
    throw new CliError(`--format: ${(e as Error).message}`);
  }
  const evalRaw = v['eval-split'];
  const evalSplit = evalRaw === undefined ? 0 : Number(evalRaw);
  if (!Number.isFinite(evalSplit) || evalSplit < 0) throw new CliError(`--eval-split expects a fraction (0.1) or a count (100), got "${String(evalRaw)}"`);
  const opts: PipelineOptions = {
    format,
    maxLength: int(v, 'max-length', int(v, 'seq-len', 1024, 2), 2),
    packing: v.packing === true,
    labelMode: v['all-tokens'] ? 'all' : 'assistant',
    truncation: oneOf(v, 'truncation', ['drop', 'split', 'truncate', 'auto'] as const),
    evalSplit,
    seed: int(v, 'seed', 0, 0),
    batchSize: int(v, 'batch-size', 1, 1),
    previews: int(v, 'preview', 2, 0),
    textUnit: oneOf(v, 'text-unit', ['line', 'paragraph', 'document'] as const),
    maxRows: v['max-rows'] === undefined ? undefined : int(v, 'max-rows', 0, 1),
    onBadRow: v.strict ? 'error' : 'skip',
  };
  const { tokenizer, template } = await loadModelTokenizer(await modelFiles(v.model), v['fallback-template'] === true);
  const data = await prepareData(dataSource(positionals[0]!, v, env), opts, tokenizer, template);

  if (v.json) {
    const batch = data.train.batches().next().value;
    out(JSON.stringify({
      format: data.format,
      stats: { ...data.stats, histogram: { ...data.stats.histogram, edges: data.stats.histogram.edges.map((e) => (e === Infinity ? null : e)) } },
      previews: data.previews.map((p) => ({ where: p.where, text: p.text, marked: markTrained(p, tokenizer), ids: Array.from(p.ids), labels: exampleLabels(p) })),
      batch: batch && {
        batchSize: batch.batchSize, seqLen: batch.seqLen, inputIds: Array.from(batch.inputIds), labels: Array.from(batch.labels), targets: Array.from(batch.targets),
        positionIds: Array.from(batch.positionIds), segmentIds: Array.from(batch.segmentIds),
      },
    }, null, 2) + '\n');
    return;
  }
  const color = io.color ?? (process.stdout.isTTY === true && !env.NO_COLOR);
  const s = data.stats;
  out(formatStats(s) + '\n\n');
  out(`length histogram (tokens per example, max length ${s.maxLength}):\n${formatHistogram(s.histogram)}\n`);
  if (s.skipped.samples.length) {
    out(`\nskipped rows (first ${Math.min(5, s.skipped.samples.length)} of ${s.skipped.total}):\n`);
    for (const x of s.skipped.samples.slice(0, 5)) out(`  ${x.where}: ${x.reason}\n`);
  }
  for (const [i, p] of data.previews.entries()) {
    const trained = p.trained.reduce((a, b) => a + b, 0);
    out(`\nexample ${i + 1} (${p.where}): ${p.ids.length} tokens, ${trained} trained${color ? ' (trained text in green)' : ', trained text in [[…]]'}\n`);
    out(markTrained(p, tokenizer, color ? 'ansi' : 'brackets') + '\n');
  }
}

/** Entry for `qlora data …` given the arguments after "data". */
export async function runDataCommand(argv: string[], io: DataIo = {}): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: DATA_OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message.split('\n')[0]}\nusage: ${DATA_USAGE}`);
  }
  await runData(parsed.values as Values, parsed.positionals, io);
}

/** The command object for src/cli/main.ts's command list. */
export const dataCommand: Command = {
  name: 'data',
  summary: 'read a dataset, apply the chat template, show token statistics and trained tokens',
  usage: DATA_USAGE,
  options: DATA_OPTIONS,
  run: (values, positionals) => runData(values, positionals),
};
