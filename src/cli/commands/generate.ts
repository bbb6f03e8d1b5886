// `qlora generate <model-dir> --prompt TEXT`: prints only the generated text to stdout, streamed
// token by token (the prompt gets BOS as tokenizer_config.json says; --chat applies the model's
// chat template to the prompt as one user message).

import { CliError, num, type Command } from '../args.ts';
import { generate } from '../../llm/generate.ts';
import { modelOptions, openAdapter, openModel, requireModel } from '../model-args.ts';

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate text with a model (and optionally a LoRA adapter)',
  usage:
    'qlora generate <model-dir> --prompt TEXT [--adapter <dir>] [--quant nf4|fp4|none] [--max-new-tokens N] ' +
    '[--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]',
  options: {
    ...modelOptions,
    prompt: { type: 'string' },
    adapter: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(values, positionals) {
    const dir = requireModel(positionals[0], this.usage);
    if (typeof values.prompt !== 'string') throw new CliError(`--prompt is required (use --prompt "" for BOS only)\nusage: ${this.usage}`);
    const maxNew = num(values, 'max-new-tokens', 128, { int: true, min: 1 });
    const m = await openModel(dir, values);
    const lora = typeof values.adapter === 'string' ? await openAdapter(m, values.adapter) : null;
    const prompt = m.tokenizer.encode(values.prompt);
    const decoder = m.tokenizer.createDecoder();
    await generate(m.model, prompt, {
      maxNewTokens: maxNew,
      temperature: num(values, 'temperature', 0, { min: 0 }),
      topK: num(values, 'top-k', 0, { int: true, min: 0 }),
      topP: num(values, 'top-p', 1, { min: 0, max: 1 }),
      repetitionPenalty: num(values, 'repetition-penalty', 1, { min: 0 }),
      seed: num(values, 'seed', 0, { int: true, min: 0 }),
      stopIds: m.tokenizer.eosIds,
      lora,
      onToken: (id) => void process.stdout.write(decoder.push(id)),
    });
    process.stdout.write(decoder.flush() + '\n');
    lora?.destroy();
    m.model.destroy();
  },
};
