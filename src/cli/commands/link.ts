// `qlora link <adapter-dir> --model <repo-id>`: prints a demo link that reopens the studio with the
// model, the run's hyperparameters and dataset reference, a preset prompt and sampling settings,
// and the adapter — embedded in the link when it compresses to ~100 KB or less, else by reference
// (--adapter-url: an https URL of the adapter folder, or the Hub repo it was published to).

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError, num, type Command } from '../args.ts';
import { requireDir } from '../model-args.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../../llm/adapter-io.ts';
import { parseAdapterConfig, parseLoraTensorName } from '../../train/peft.ts';
import { openSafetensors } from '../../formats/safetensors.ts';
import { bytesSource } from '../../formats/byte-source.ts';
import { parseTrainingRecord, withBaseModel } from '../../export/adapter-zip.ts';
import { datasetRef, isHubRepoId, looksLikeLocalPath } from '../../share/refs.ts';
import { DemoLinkError, encodeDemoLink, encodeDemoPayload, type DemoAdapter, type DemoLink, type DemoSampling, type DemoTrain } from '../../share/link.ts';

export const LINK_USAGE =
  'qlora link <adapter-dir> --model <repo-id> [--revision REV] [--prompt TEXT] [--system TEXT] [--title TEXT] [--dataset REF] ' +
  '[--origin URL] [--adapter-url https-URL|repo-id] [--temperature T] [--top-p P] [--top-k K] [--max-new-tokens N] [--repetition-penalty R] [--seed S]';

/** Where the studio is served when --origin is not given (the Vite dev server). */
export const DEFAULT_ORIGIN = 'http://localhost:5173/';

const TRAIN_FIELDS: readonly (keyof DemoTrain)[] = [
  'lr', 'maxSteps', 'epochs', 'batchSize', 'gradAccum', 'seqLen', 'schedule', 'warmupSteps', 'warmupRatio',
  'weightDecay', 'maxGradNorm', 'evalSplit', 'seed', 'beta1', 'beta2', 'eps',
];

export const linkCommand: Command = {
  name: 'link',
  summary: 'print a demo link that reopens the studio with a model, prompt and adapter',
  usage: LINK_USAGE,
  options: {
    model: { type: 'string' },
    revision: { type: 'string' },
    prompt: { type: 'string' },
    system: { type: 'string' },
    title: { type: 'string' },
    dataset: { type: 'string' },
    origin: { type: 'string' },
    'adapter-url': { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'top-k': { type: 'string' },
    'max-new-tokens': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(values, positionals) {
    const dir = requireDir(positionals[0], 'adapter', LINK_USAGE);
    const model = values.model;
    if (typeof model !== 'string') throw new CliError(`--model <repo-id> is required (the base model's Hugging Face repo id)\nusage: ${LINK_USAGE}`);
    if (!isHubRepoId(model)) {
      const why = existsSync(model) || looksLikeLocalPath(model) ? 'a local folder cannot go in a link' : 'expected "owner/name"';
      throw new CliError(`--model "${model}" is not a Hugging Face repo id (${why}); pass the id the studio downloads the base model by`);
    }
    for (const f of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) if (!existsSync(join(dir, f))) throw new CliError(`${dir}: no ${f} (not a PEFT adapter folder)`);
    const config = await readFile(join(dir, ADAPTER_CONFIG), 'utf8');
    const weights = new Uint8Array(await readFile(join(dir, ADAPTER_WEIGHTS)));
    const reader = await openSafetensors(bytesSource(weights, ADAPTER_WEIGHTS));
    const numLayers = Math.max(1, ...reader.names().map((n) => (parseLoraTensorName(n)?.layer ?? -1) + 1));
    const parsed = parseAdapterConfig(config, join(dir, ADAPTER_CONFIG), { numLayers });
    const logPath = join(dir, 'training_log.json');
    const record = existsSync(logPath) ? parseTrainingRecord(await readFile(logPath, 'utf8'), logPath) : null;

    const c = parsed.config;
    const demo: DemoLink = {
      model: { repo: model },
      lora: { r: c.r, alpha: c.alpha, dropout: c.dropout, targetModules: c.targetModules, useRslora: c.useRslora },
    };
    if (record?.lora?.seed !== undefined) demo.lora!.seed = record.lora.seed;
    if (typeof values.revision === 'string') demo.model.revision = values.revision;
    if (typeof values.title === 'string') demo.title = values.title;
    const ds = datasetRef((values.dataset as string | undefined) ?? (typeof record?.dataset === 'string' ? record.dataset : undefined));
    if (ds) demo.dataset = ds;
    if (record?.train) {
      const train: Record<string, unknown> = {};
      for (const k of TRAIN_FIELDS) if (record.train[k as keyof typeof record.train] !== undefined) train[k] = record.train[k as keyof typeof record.train];
      if (Object.keys(train).length) demo.train = train as DemoTrain;
    }
    if (typeof values.prompt === 'string' || typeof values.system === 'string') {
      if (typeof values.prompt !== 'string') throw new CliError('--system goes with --prompt');
      demo.prompt = { user: values.prompt };
      if (typeof values.system === 'string') demo.prompt.system = values.system;
    }
    const sampling: DemoSampling = {};
    if (values.temperature !== undefined) sampling.temperature = num(values, 'temperature', 0, { min: 0 });
    if (values['top-p'] !== undefined) sampling.topP = num(values, 'top-p', 1, { min: 0, max: 1 });
    if (values['top-k'] !== undefined) sampling.topK = num(values, 'top-k', 0, { int: true, min: 0 });
    if (values['max-new-tokens'] !== undefined) sampling.maxNewTokens = num(values, 'max-new-tokens', 128, { int: true, min: 1 });
    if (values['repetition-penalty'] !== undefined) sampling.repetitionPenalty = num(values, 'repetition-penalty', 1, { min: 0 });
    if (values.seed !== undefined) sampling.seed = num(values, 'seed', 0, { int: true, min: 0 });
    if (Object.keys(sampling).length) demo.sampling = sampling;

    const origin = (values.origin as string | undefined) ?? process.env.QLORA_STUDIO_ORIGIN ?? DEFAULT_ORIGIN;
    let local = false;
    try {
      local = ['localhost', '127.0.0.1', '[::1]'].includes(new URL(origin).hostname);
    } catch {
      // encodeDemoLink names the bad origin
    }
    const ref = values['adapter-url'];
    let adapter: DemoAdapter;
    if (typeof ref === 'string') adapter = isHubRepoId(ref) ? { kind: 'hub', repo: ref } : { kind: 'url', url: ref };
    else {
      // --model is the base the user vouches for: the embedded config names it (as export --base-model does).
      if (parsed.baseModel !== model) process.stderr.write(`note: adapter_config.json names ${JSON.stringify(parsed.baseModel)} as its base; the link uses --model ${model}\n`);
      adapter = { kind: 'embedded', config: parsed.baseModel === model ? config : withBaseModel(config, model), weights };
    }
    demo.adapter = adapter;

    let link: string;
    let bytes = 0;
    try {
      link = encodeDemoLink(demo, { origin, allowHttpLocalhost: local });
      bytes = encodeDemoPayload(demo, { allowHttpLocalhost: local }).bytes;
    } catch (e) {
      if (e instanceof DemoLinkError && e.code === 'too-large' && adapter.kind === 'embedded') {
        throw new CliError(`${e.message}\n(pass --adapter-url with the https URL of the published adapter folder, or its Hub repo id)`);
      }
      if (e instanceof DemoLinkError) throw new CliError(e.message);
      throw e;
    }
    process.stdout.write(link + '\n');
    const how = adapter.kind === 'embedded' ? `adapter embedded (${(bytes / 1024).toFixed(1)} KB compressed)` : adapter.kind === 'hub' ? `adapter from the Hub repo ${adapter.repo}` : `adapter from ${adapter.url}`;
    process.stderr.write(`demo link for ${model}: ${how}; ${link.length} characters\n`);
  },
};
