// The adapter download: a zip that is a PEFT adapter folder — adapter_model.safetensors,
// adapter_config.json (base_model_name_or_path = the base model's Hub repo id, never a local
// path) and a README.md model card (base model, dataset, hyperparameters, steps, losses, and how
// to use it with PEFT, llama.cpp and MLX) — plus, when the run is known, training_config.json and
// loss_history.csv. The same pieces are exported on their own: trainingConfigJson, lossHistoryCsv,
// modelCard. The zip streams through fflate (sink.ts); write the files to any other FileSink
// (a folder) with writeAdapterFiles. No DOM or Node APIs.

import { bytesSource } from '../formats/byte-source.ts';
import { openSafetensors } from '../formats/safetensors.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../llm/adapter-io.ts';
import { LORA_MODULES, loraScaling, type LoraConfig, type LoraModule } from '../train/lora-config.ts';
import { parseAdapterConfig, parseLoraTensorName, PeftFormatError } from '../train/peft.ts';
import { SCHEDULE_KINDS, type TrainConfig } from '../train/train-config.ts';
import { baseModelRepoId, containsToken, datasetRef, isHubRepoId, type DatasetRef } from '../share/refs.ts';
import { collectZip, ExportError, writeWholeFile, zipSink, type Awaitable, type FileSink } from './sink.ts';

export const README = 'README.md';
export const TRAINING_CONFIG = 'training_config.json';
export const LOSS_HISTORY = 'loss_history.csv';

// ---- the run record (training_log.json) ------------------------------------------------------

/** One optimizer step as the history keeps it (finetune's StepEvent has these fields). */
export interface HistoryRow {
  step: number;
  loss: number;
  evalLoss?: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
}

/**
 * What a run records (the CLI's training_log.json, the studio's run state): every field optional.
 * `dataset` is the dataset as given (a Hub id, a file name or a path: exports keep only the Hub
 * id or the base name).
 */
export interface TrainingRecord {
  baseModel?: string;
  revision?: string | null;
  dataset?: string | DatasetRef | null;
  /** 'nf4' | 'fp4' | 'none': how the base was held during training. */
  quant?: string | null;
  lora?: Partial<LoraConfig>;
  train?: Partial<TrainConfig>;
  data?: { format?: string; stats?: Record<string, unknown> };
  result?: {
    steps?: number;
    history?: HistoryRow[];
    evalLoss?: number | null;
    initialEvalLoss?: number | null;
  };
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads training_log.json leniently: fields of the wrong type are dropped (the record only feeds
 * the model card and training_config.json), but the text must be a JSON object.
 */
export function parseTrainingRecord(text: string, source = 'training_log.json'): TrainingRecord {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new ExportError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(j)) throw new ExportError(`${source}: expected a JSON object`);
  const rec: TrainingRecord = {};
  if (typeof j.baseModel === 'string') rec.baseModel = j.baseModel;
  if (typeof j.revision === 'string') rec.revision = j.revision;
  if (typeof j.dataset === 'string') rec.dataset = j.dataset;
  else if (isObj(j.dataset)) {
    if (typeof j.dataset.hub === 'string') rec.dataset = j.dataset.hub;
    else if (typeof j.dataset.name === 'string') rec.dataset = j.dataset.name;
  }
  if (typeof j.quant === 'string') rec.quant = j.quant;
  if (isObj(j.lora)) {
    const l = j.lora;
    const lora: Partial<LoraConfig> = {};
    if (isNum(l.r)) lora.r = l.r;
    if (isNum(l.alpha)) lora.alpha = l.alpha;
    if (isNum(l.dropout)) lora.dropout = l.dropout;
    if (typeof l.useRslora === 'boolean') lora.useRslora = l.useRslora;
    if (isNum(l.seed)) lora.seed = l.seed;
    if (Array.isArray(l.targetModules)) lora.targetModules = l.targetModules.filter((m): m is LoraModule => (LORA_MODULES as readonly unknown[]).includes(m));
    rec.lora = lora;
  }
  if (isObj(j.train)) {
    const train: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(j.train)) {
      if (TRAIN_KEYS.includes(k as keyof TrainConfig) && (isNum(v) || (k === 'schedule' && SCHEDULE_KINDS.includes(v as never)))) train[k] = v;
    }
    rec.train = train as Partial<TrainConfig>;
  }
  if (isObj(j.data)) {
    rec.data = {};
    if (typeof j.data.format === 'string') rec.data.format = j.data.format;
    if (isObj(j.data.stats)) rec.data.stats = j.data.stats;
  }
  if (isObj(j.result)) {
    const r = j.result;
    rec.result = {};
    if (isNum(r.steps)) rec.result.steps = r.steps;
    if (isNum(r.evalLoss) || r.evalLoss === null) rec.result.evalLoss = r.evalLoss as number | null;
    if (isNum(r.initialEvalLoss) || r.initialEvalLoss === null) rec.result.initialEvalLoss = r.initialEvalLoss as number | null;
    if (Array.isArray(r.history)) {
      rec.result.history = r.history.filter(isObj).filter((h) => isNum(h.step) && isNum(h.loss)).map((h) => {
        const row: HistoryRow = {
          step: h.step as number,
          loss: h.loss as number,
          lr: isNum(h.lr) ? h.lr : NaN,
          gradNorm: isNum(h.gradNorm) ? h.gradNorm : NaN,
          tokensPerSecond: isNum(h.tokensPerSecond) ? h.tokensPerSecond : NaN,
        };
        if (isNum(h.evalLoss)) row.evalLoss = h.evalLoss;
        return row;
      });
    }
  }
  return rec;
}

const TRAIN_KEYS: readonly (keyof TrainConfig)[] = [
  'lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'maxGradNorm', 'schedule', 'warmupSteps', 'warmupRatio',
  'maxSteps', 'epochs', 'batchSize', 'gradAccum', 'seqLen', 'evalSplit', 'seed',
];

// ---- loss_history.csv, training_config.json --------------------------------------------------

function csvNum(v: number | undefined | null): string {
  return v === undefined || v === null || Number.isNaN(v) ? '' : String(v);
}

/** The loss history as CSV: step, loss, eval_loss, lr, grad_norm, tokens_per_s (empty = not measured). */
export function lossHistoryCsv(history: readonly HistoryRow[]): string {
  const rows = ['step,loss,eval_loss,lr,grad_norm,tokens_per_s'];
  for (const h of history) rows.push([h.step, h.loss, h.evalLoss, h.lr, h.gradNorm, h.tokensPerSecond].map(csvNum).join(','));
  return rows.join('\n') + '\n';
}

function lastLoss(rec: TrainingRecord | null | undefined): { step: number; loss: number } | null {
  const h = rec?.result?.history;
  if (!h?.length) return null;
  const last = h[h.length - 1]!;
  return { step: last.step, loss: last.loss };
}

function numbersOnly(o: Record<string, unknown> | undefined): Record<string, number> | undefined {
  if (!o) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (isNum(v)) out[k] = v;
  return out;
}

/**
 * training_config.json: the run's settings under the engine's own names (lora: makeLoraConfig's
 * fields, train: makeTrainConfig's), so the studio or the CLI can run it again, with the base model
 * id, the dataset reference (Hub id or file name, never a path) and the outcome.
 */
export function trainingConfigJson(rec: TrainingRecord, opts: { baseModel?: string } = {}): string {
  const baseModel = baseModelRepoId(opts.baseModel ?? rec.baseModel);
  const ds = typeof rec.dataset === 'string' ? datasetRef(rec.dataset) : (rec.dataset ?? null);
  const last = lastLoss(rec);
  const doc = {
    format: 'qlora-studio/training-config',
    version: 1,
    baseModel,
    revision: rec.revision ?? null,
    dataset: ds,
    quant: rec.quant ?? null,
    lora: rec.lora ?? null,
    train: rec.train ?? null,
    data: rec.data ? { format: rec.data.format ?? null, stats: numbersOnly(rec.data.stats) ?? null } : null,
    result: {
      steps: rec.result?.steps ?? last?.step ?? null,
      finalTrainLoss: last?.loss ?? null,
      initialEvalLoss: rec.result?.initialEvalLoss ?? null,
      finalEvalLoss: rec.result?.evalLoss ?? null,
    },
  };
  const text = JSON.stringify(doc, null, 2) + '\n';
  if (containsToken(text)) throw new ExportError('training config contains something that looks like an access token; refusing to export it');
  return text;
}

// ---- adapter_config.json ---------------------------------------------------------------------

/**
 * adapter_config.json text with base_model_name_or_path set to `id` (the rest byte for byte as
 * PEFT wrote it). Checks the result parses and holds exactly that change.
 */
export function withBaseModel(configText: string, id: string): string {
  if (!isHubRepoId(id)) throw new ExportError(`${JSON.stringify(id)} is not a Hub repo id`);
  let before: Record<string, unknown>;
  try {
    before = JSON.parse(configText);
  } catch (e) {
    throw new PeftFormatError(`not valid JSON (${(e as Error).message})`, ADAPTER_CONFIG);
  }
  if (!isObj(before)) throw new PeftFormatError('expected a JSON object', ADAPTER_CONFIG);
  const re = /("base_model_name_or_path"\s*:\s*)("(?:[^"\\]|\\.)*"|null)/g;
  const hits = configText.match(re)?.length ?? 0;
  let text: string;
  if (hits === 1) text = configText.replace(re, (_, key: string) => `${key}${JSON.stringify(id)}`);
  else if (hits === 0 && !('base_model_name_or_path' in before)) text = configText.replace(/^\s*\{/, (m) => `${m}\n  "base_model_name_or_path": ${JSON.stringify(id)},`);
  else throw new PeftFormatError('base_model_name_or_path appears more than once', ADAPTER_CONFIG);
  const after = JSON.parse(text) as Record<string, unknown>;
  const same = Object.keys(before).every((k) => k === 'base_model_name_or_path' || JSON.stringify(after[k]) === JSON.stringify(before[k]));
  if (!same || after.base_model_name_or_path !== id) throw new PeftFormatError('could not set base_model_name_or_path', ADAPTER_CONFIG);
  return text;
}

// ---- the model card --------------------------------------------------------------------------

export interface ModelCardInfo {
  /** Hub repo id of the base model (checked). */
  baseModel: string;
  lora: Pick<LoraConfig, 'r' | 'alpha' | 'dropout' | 'targetModules' | 'useRslora'>;
  /** Decoder layers the adapter covers (for the MLX conversion). */
  numLayers: number;
  record?: TrainingRecord | null;
  dataset?: DatasetRef | null;
  /** A heading (default: "<base name> LoRA adapter"). */
  title?: string;
}

const fmtLoss = (v: number | null | undefined) => (isNum(v) ? v.toFixed(4) : 'n/a');
const fmtNum = (v: number) => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6))));
const oneLine = (s: string, max = 200) => s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, max);
/** Markdown-inert text for a table cell or heading. */
const mdText = (s: string) => oneLine(s).replace(/([\\`*_[\]<>|#])/g, '\\$1');

/** README.md: a Hugging Face model card (YAML front matter for the Hub) for a PEFT adapter. */
export function modelCard(info: ModelCardInfo): string {
  const base = baseModelRepoId(info.baseModel);
  const { lora } = info;
  const rec = info.record ?? null;
  const ds = info.dataset ?? null;
  const scale = loraScaling(lora);
  const targets = [...lora.targetModules].sort((a, b) => LORA_MODULES.indexOf(a) - LORA_MODULES.indexOf(b));
  const last = lastLoss(rec);
  const steps = rec?.result?.steps ?? last?.step ?? null;
  const t = rec?.train ?? {};
  const quant = rec?.quant ?? 'nf4';
  const title = info.title ? mdText(info.title) : `${base.split('/').pop()} LoRA adapter`;

  const front = ['---', `base_model: ${base}`, 'library_name: peft', 'pipeline_tag: text-generation', 'tags:', `- base_model:adapter:${base}`, '- lora'];
  if (quant !== 'none') front.push('- qlora');
  front.push('- transformers', '- qlora-studio');
  if (ds && 'hub' in ds) front.push('datasets:', `- ${ds.hub}`);
  front.push('---');

  const dsText = !ds ? 'not recorded' : 'hub' in ds ? `[${ds.hub}](https://huggingface.co/datasets/${ds.hub})` : `\`${mdText(ds.name)}\` (a local file, not published)`;
  const rows: Array<[string, string]> = [
    ['LoRA rank `r`', String(lora.r)],
    ['`lora_alpha`', fmtNum(lora.alpha)],
    ['scaling', lora.useRslora ? `alpha/√r = ${fmtNum(scale)} (rsLoRA)` : `alpha/r = ${fmtNum(scale)}`],
    ['`lora_dropout`', fmtNum(lora.dropout)],
    ['target modules', targets.map((m) => `\`${m}\``).join(', ')],
  ];
  if (isNum(t.lr)) rows.push(['learning rate', fmtNum(t.lr)]);
  if (t.schedule) rows.push(['schedule', `${t.schedule}${isNum(t.warmupSteps) && t.warmupSteps > 0 ? `, ${t.warmupSteps} warmup steps` : isNum(t.warmupRatio) && t.warmupRatio > 0 ? `, warmup ratio ${fmtNum(t.warmupRatio)}` : ''}`]);
  if (isNum(t.batchSize)) rows.push(['batch', `${t.batchSize} × ${t.gradAccum ?? 1} accumulation = ${t.batchSize * (t.gradAccum ?? 1)} sequences per step`]);
  if (isNum(t.seqLen)) rows.push(['sequence length', String(t.seqLen)]);
  if (isNum(t.beta1) || isNum(t.beta2)) rows.push(['optimizer', `AdamW (β1 ${fmtNum(t.beta1 ?? 0.9)}, β2 ${fmtNum(t.beta2 ?? 0.999)}, eps ${fmtNum(t.eps ?? 1e-8)})`]);
  if (isNum(t.weightDecay)) rows.push(['weight decay', fmtNum(t.weightDecay)]);
  if (isNum(t.maxGradNorm)) rows.push(['max grad norm', fmtNum(t.maxGradNorm)]);
  if (isNum(t.seed)) rows.push(['seed', String(t.seed)]);

  const results: string[] = [];
  if (steps !== null) results.push(`- Optimizer steps: ${steps}`);
  if (last) results.push(`- Final train loss: ${fmtLoss(last.loss)} (step ${last.step})`);
  const ie = rec?.result?.initialEvalLoss;
  const fe = rec?.result?.evalLoss;
  if (isNum(fe)) results.push(`- Eval loss: ${isNum(ie) ? `${fmtLoss(ie)} before training → ` : ''}${fmtLoss(fe)}`);
  if (rec?.data?.format) results.push(`- Data format: ${mdText(rec.data.format)}`);
  if (!results.length) results.push('- Training statistics were not recorded.');

  const quantLine =
    quant === 'none'
      ? 'The base model was kept in full precision during training.'
      : `The base model was held frozen in 4-bit ${quant.toUpperCase()} (bitsandbytes layout, double-quantized absmax) during training; the adapter weights are F32.`;
  const mlxKeys = targets.map((m) => (m === 'gate_proj' || m === 'up_proj' || m === 'down_proj' ? `mlp.${m}` : `self_attn.${m}`));
  const rsloraLlama = lora.useRslora
    ? [
        '',
        `This adapter uses rsLoRA (scale alpha/√r = ${fmtNum(scale)}). llama.cpp ignores \`use_rslora\` and scales by alpha/r = ${fmtNum(lora.alpha / lora.r)}, so apply it with`,
        `\`--lora-scaled adapter.gguf ${fmtNum(Math.sqrt(lora.r))}\` (√r) instead of \`--lora adapter.gguf\`.`,
      ]
    : [];

  return [
    ...front,
    '',
    `# ${title}`,
    '',
    `A LoRA adapter for [${base}](https://huggingface.co/${base}), fine-tuned with ${quant === 'none' ? 'LoRA' : 'QLoRA'} in QLoRA Studio (in a browser tab, with WebGPU). ${quantLine}`,
    '',
    '## Training',
    '',
    `- Base model: [${base}](https://huggingface.co/${base})`,
    `- Dataset: ${dsText}`,
    ...results,
    '',
    '| hyperparameter | value |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '## Use with PEFT (Python)',
    '',
    '```python',
    'from peft import PeftModel',
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    '',
    `base = AutoModelForCausalLM.from_pretrained("${base}", torch_dtype="auto")`,
    `tokenizer = AutoTokenizer.from_pretrained("${base}")`,
    'model = PeftModel.from_pretrained(base, "path/to/this/folder")  # or the Hub repo you upload it to',
    '',
    'inputs = tokenizer.apply_chat_template([{"role": "user", "content": "Hello!"}], add_generation_prompt=True, return_tensors="pt")',
    'print(tokenizer.decode(model.generate(inputs, max_new_tokens=64)[0]))',
    '```',
    '',
    ...(quant === 'none'
      ? []
      : [
          'To run on exactly the base the adapter was trained against, load the base in 4-bit:',
          '',
          '```python',
          'import torch',
          'from transformers import BitsAndBytesConfig',
          '',
          `bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="${quant}", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)`,
          `base = AutoModelForCausalLM.from_pretrained("${base}", quantization_config=bnb)`,
          '```',
          '',
        ]),
    '`model.merge_and_unload()` (on a full-precision base) folds the adapter into the weights; QLoRA Studio can also export a merged model directly.',
    '',
    '## llama.cpp',
    '',
    '`convert_lora_to_gguf.py` (in the llama.cpp repository) turns this folder into a GGUF adapter. It needs the base model\'s config.json: `--base-model-id` fetches it from the Hub (or pass a local copy with `--base`).',
    '',
    '```sh',
    `python convert_lora_to_gguf.py path/to/this/folder --base-model-id ${base} --outfile adapter.gguf`,
    `llama-cli -m base-model.gguf --lora adapter.gguf${lora.useRslora ? '   # rsLoRA: see below' : ''}`,
    '```',
    '',
    'From adapter_config.json it reads only `lora_alpha` and `base_model_name_or_path`; the rank comes from the tensors and the scale is alpha/r.',
    ...rsloraLlama,
    '',
    '## MLX (mlx-lm)',
    '',
    'mlx-lm does not read PEFT adapters: it wants `adapters.safetensors` with `lora_a` = PEFT\'s A transposed ([in, r]) and `lora_b` = B transposed ([r, out]), named without the `base_model.model.` prefix, and its own adapter_config.json whose `scale` is the final multiplier (alpha/r here, not alpha). Convert with:',
    '',
    '```python',
    'import json, os',
    'from safetensors.numpy import load_file, save_file',
    '',
    'os.makedirs("mlx_adapter", exist_ok=True)',
    'peft = load_file("adapter_model.safetensors")',
    'mlx = {}',
    'for name, t in peft.items():',
    '    name = name.removeprefix("base_model.model.").replace(".lora_A.weight", ".lora_a").replace(".lora_B.weight", ".lora_b")',
    '    mlx[name] = t.T.copy()',
    'save_file(mlx, "mlx_adapter/adapters.safetensors")',
    'config = {',
    '    "fine_tune_type": "lora",',
    `    "num_layers": ${info.numLayers},`,
    `    "lora_parameters": {"rank": ${lora.r}, "scale": ${fmtNum(scale)}, "dropout": 0.0, "keys": ${JSON.stringify(mlxKeys)}},`,
    '}',
    'with open("mlx_adapter/adapter_config.json", "w") as f:',
    '    json.dump(config, f, indent=2)',
    '```',
    '',
    '```sh',
    `mlx_lm.generate --model ${base} --adapter-path mlx_adapter --prompt "Hello!"`,
    '```',
    '',
  ].join('\n');
}

// ---- the zip ---------------------------------------------------------------------------------

export interface AdapterExportInput {
  /** The adapter folder's files: adapter_config.json (text) and adapter_model.safetensors (saveAdapter's output). */
  files: Readonly<Record<string, string | Uint8Array>>;
  /** The base model's Hub repo id; default: the config's base_model_name_or_path (refused when it is a local path). */
  baseModel?: string;
  /** The run, for the model card, training_config.json and loss_history.csv. */
  record?: TrainingRecord | null;
  /** The dataset (Hub id, file name or path: only the id or base name is written); default record.dataset. */
  dataset?: string | DatasetRef | null;
  title?: string;
}

/** The exported files in order (validated): adapter_config.json, adapter_model.safetensors, README.md, and the run files. */
export async function adapterExportFiles(input: AdapterExportInput): Promise<Array<[string, string | Uint8Array]>> {
  const cfgRaw = input.files[ADAPTER_CONFIG];
  const weights = input.files[ADAPTER_WEIGHTS];
  if (cfgRaw === undefined) throw new ExportError(`the adapter has no ${ADAPTER_CONFIG}`);
  if (weights === undefined) throw new ExportError(`the adapter has no ${ADAPTER_WEIGHTS}`);
  const cfgText = typeof cfgRaw === 'string' ? cfgRaw : new TextDecoder().decode(cfgRaw);
  const bytes = typeof weights === 'string' ? new TextEncoder().encode(weights) : weights;

  // The weights: a valid safetensors file of PEFT LoRA tensors only.
  const reader = await openSafetensors(bytesSource(bytes, ADAPTER_WEIGHTS));
  let numLayers = 0;
  for (const name of reader.names()) {
    const p = parseLoraTensorName(name);
    if (!p) throw new PeftFormatError(`unexpected tensor ${name}: only PEFT lora_A / lora_B weights belong in an adapter`, ADAPTER_WEIGHTS);
    numLayers = Math.max(numLayers, p.layer + 1);
  }
  if (!numLayers) throw new PeftFormatError('no LoRA tensors', ADAPTER_WEIGHTS);
  const parsed = parseAdapterConfig(cfgText, ADAPTER_CONFIG, { numLayers });
  const rec = input.record ?? null;
  const baseModel =
    input.baseModel !== undefined
      ? baseModelRepoId(input.baseModel, undefined, 'the base model')
      : isHubRepoId(parsed.baseModel)
        ? baseModelRepoId(parsed.baseModel)
        : isHubRepoId(rec?.baseModel)
          ? baseModelRepoId(rec.baseModel)
          : baseModelRepoId(parsed.baseModel); // throws: a local path or nothing
  const config = withBaseModel(cfgText, baseModel);
  if (containsToken(config)) throw new ExportError(`${ADAPTER_CONFIG} contains something that looks like an access token; refusing to export it`);
  const dsIn = input.dataset !== undefined ? input.dataset : (rec?.dataset ?? null);
  const dataset = typeof dsIn === 'string' ? datasetRef(dsIn) : dsIn;
  const card = modelCard({ baseModel, lora: parsed.config, numLayers, record: rec, dataset, title: input.title });
  const out: Array<[string, string | Uint8Array]> = [
    [ADAPTER_CONFIG, config],
    [ADAPTER_WEIGHTS, bytes],
    [README, card],
  ];
  if (rec) {
    out.push([TRAINING_CONFIG, trainingConfigJson({ ...rec, dataset, lora: rec.lora ?? { ...parsed.config } }, { baseModel })]);
    if (rec.result?.history?.length) out.push([LOSS_HISTORY, lossHistoryCsv(rec.result.history)]);
  }
  return out;
}

/** Writes the exported adapter files through any sink (a zip, a folder). Returns their names. */
export async function writeAdapterFiles(input: AdapterExportInput, sink: FileSink): Promise<string[]> {
  const files = await adapterExportFiles(input);
  for (const [name, content] of files) await writeWholeFile(sink, name, content);
  return files.map(([n]) => n);
}

/** Streams the adapter zip: `onData(chunk, final)` gets the archive's bytes in order. */
export async function streamAdapterZip(input: AdapterExportInput, onData: (chunk: Uint8Array, final: boolean) => Awaitable<void>): Promise<string[]> {
  const z = zipSink(onData);
  const names = await writeAdapterFiles(input, z);
  await z.finish();
  return names;
}

/** The adapter zip in memory. */
export async function adapterZip(input: AdapterExportInput): Promise<Uint8Array> {
  const z = collectZip();
  await writeAdapterFiles(input, z);
  return z.finish();
}
