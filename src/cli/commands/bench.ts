// `qlora bench [--quick] [--only quant|train]` (`npm run bench`): the benchmarks, measured side
// by side in one run on this machine's WebGPU adapter — 4-bit kernels against their baselines
// and peers, whole QLoRA training steps against the best matmul rate, and paged vs resident
// optimizer state. Prints a table and
// writes the JSON to bench-results/bench-<time>.json.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { choice, type Command } from '../args.ts';
import { createNodeRuntime } from '../../gpu/node.ts';
import { isCpuImplementation } from '../../gpu/runtime.ts';
import { benchQuant } from '../../bench/quant.bench.ts';
import { benchTrain, syntheticLlama, type TrainBenchCase } from '../../bench/train.bench.ts';
import { benchPaging } from '../../bench/paging.bench.ts';
import { renderJson, renderTable } from '../../bench/report.ts';
import type { BenchResult } from '../../bench/harness.ts';
import { modelFolder } from '../../node/model-folder.ts';
import { sharedPath } from '../../node/shared.ts';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'run the benchmarks (kernels and training) and write a JSON report',
  usage: 'qlora bench [--quick] [--only quant|train|paging] [--out <dir>]',
  options: { quick: { type: 'boolean' }, only: { type: 'string' }, out: { type: 'string' } },
  async run(values) {
    const quick = values.quick === true;
    const only = choice(values, 'only', ['quant', 'train', 'paging', 'all'] as const, 'all');
    const rt = await createNodeRuntime();
    const a = rt.adapter;
    const context = {
      adapter: `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ')} (${a.backend})`,
      date: new Date().toISOString(),
      quick,
      node: process.version,
    };
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const results: BenchResult[] = [];
    if (only === 'all' || only === 'quant') results.push(...(await benchQuant(rt, { quick, log })));
    if (only === 'all' || only === 'train') {
      const cases: TrainBenchCase[] = [];
      const stories = sharedPath('models/stories260K');
      if (stories) cases.push({ name: 'stories260K', files: modelFolder(stories), B: 4, S: quick ? 64 : 128, rank: 16 });
      // The same model at its whole context (max_position_embeddings 512): how the ratio moves with T.
      if (stories && !quick) cases.push({ name: 'stories260K, full 512-token context', files: modelFolder(stories), B: 4, S: 512, rank: 16 });
      cases.push({ name: 'synthetic Llama (hidden 512, 4 layers)', files: syntheticLlama(), B: 1, S: quick ? 64 : 128, rank: 16 });
      // On a real GPU the models above are too small to fill it (each product is a few dozen
      // workgroups): a model of TinyLlama's width shows the rate a real fine-tune gets. A CPU
      // adapter would take minutes a step.
      if (!quick && !isCpuImplementation(rt.adapter)) {
        const files = syntheticLlama({ hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 8 });
        cases.push({ name: 'synthetic Llama (hidden 1024, 8 layers; GPUs only)', files, B: 4, S: 256, rank: 16 });
      }
      const best = Math.max(0, ...results.filter((r) => /matmul/i.test(r.name) && r.gflops).map((r) => r.gflops!));
      results.push(...(await benchTrain(rt, cases, { quick, matmulGflops: best })));
    }
    if (only === 'all' || only === 'paging') results.push(...(await benchPaging(rt, { quick })));
    process.stdout.write(renderTable(results, context) + '\n');
    const dir = (values.out as string | undefined) ?? 'bench-results';
    await mkdir(dir, { recursive: true });
    const file = join(dir, `bench-${context.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, renderJson(results, context) + '\n');
    process.stderr.write(`wrote ${file}\n`);
    rt.destroy();
  },
};
