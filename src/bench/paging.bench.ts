// Paged optimizer state: the step time of QLoRA training with Adam m/v paged under a GPU budget of
// half the optimizer state, against the same training with everything resident, measured in one run
// (two adapters over one model, steps interleaved so both see the same machine state). Goal ≤ 1.3×.
// The pages go to an in-memory store (CPU memory), as `qlora train --gpu-budget` does in Node.

import type { GpuRuntime } from '../gpu/runtime.ts';
import type { ModelFiles } from '../model/model-files.ts';
import { LORA_TARGETS } from '../model/names.ts';
import { loadGpuModel } from '../llm/load.ts';
import { LoraAdapter } from '../llm/lora.ts';
import { makeBatch } from '../llm/batch.ts';
import { Trainer, type OptimConfig } from '../llm/trainer.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import { PagedOptimizerStore } from '../train/paged-store.ts';
import { median, type BenchResult } from './harness.ts';
import { syntheticLlama } from './train.bench.ts';

export interface PagingBenchCase {
  name: string;
  files: ModelFiles;
  B: number;
  S: number;
  rank: number;
}

export interface PagingBenchOptions {
  quick: boolean;
  cases?: PagingBenchCase[];
  /** Budget as a fraction of the optimizer state (default 0.5). */
  fraction?: number;
  /** Timed steps per configuration (default 3 quick, 8 full). */
  steps?: number;
}

export function defaultPagingCases(quick: boolean): PagingBenchCase[] {
  return quick
    ? [{ name: 'synthetic Llama 256×2', files: syntheticLlama({ hidden_size: 256, intermediate_size: 688, num_hidden_layers: 2, vocab_size: 1024 }), B: 2, S: 64, rank: 16 }]
    : [{ name: 'synthetic Llama 512×4', files: syntheticLlama(), B: 4, S: 256, rank: 64 }];
}

const OPTIM: OptimConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 0.3, schedule: 'constant', warmupSteps: 0, totalSteps: 1000 };

export async function benchPaging(rt: GpuRuntime, opts: PagingBenchOptions): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const fraction = opts.fraction ?? 0.5;
  const steps = opts.steps ?? (opts.quick ? 3 : 8);
  for (const cs of opts.cases ?? defaultPagingCases(opts.quick)) {
    const { model, config } = await loadGpuModel(rt, cs.files, { quant: 'nf4', maxPositions: cs.S });
    const settings = { r: cs.rank, alpha: 2 * cs.rank, dropout: 0.05, useRslora: false, targetModules: LORA_TARGETS, seed: 1 };
    const plainLora = LoraAdapter.init(rt, config, settings);
    const pagedLora = LoraAdapter.init(rt, config, settings);
    const stateBytes = plainLora.parameterCount * 8;
    const largest = Math.max(...[...pagedLora.modules.values()].map((m) => m.size * 8));
    const budget = Math.max(largest, Math.floor(stateBytes * fraction));
    const store = new PagedOptimizerStore(rt, { store: new MemoryStore('CPU memory', { share: true }), prefix: 'v1/bench/pages', budget });
    for (const m of pagedLora.modules.values()) store.add(`${m.layer}.${m.target}`, m.params, m.grads, m.size);
    const plain = new Trainer(rt, model, plainLora, OPTIM);
    const paged = new Trainer(rt, model, pagedLora, OPTIM, store);
    const ids = Array.from({ length: cs.B }, (_, b) => Array.from({ length: cs.S }, (_, s) => (b * 977 + s * 131 + 7) % config.vocabSize));
    const batch = makeBatch({ inputIds: ids });
    try {
      for (let i = 0; i < 2; i++) {
        await plain.trainStep([batch]); // warm-up: pipelines, buffers, the first sweeps of paging
        await paged.trainStep([batch]);
      }
      const before = store.stats;
      const t: { plain: number[]; paged: number[] } = { plain: [], paged: [] };
      for (let i = 0; i < steps; i++) {
        t.plain.push((await plain.trainStep([batch])).ms);
        t.paged.push((await paged.trainStep([batch])).ms);
      }
      const after = store.stats;
      const msPlain = median(t.plain);
      const msPaged = median(t.paged);
      const ratio = msPaged / msPlain;
      const per = (k: 'pagesIn' | 'pagesOut' | 'bytesIn' | 'bytesOut' | 'waitMs' | 'buffersMade') => Math.round(((after[k] - before[k]) / steps) * 100) / 100;
      const shape = `B=${cs.B} S=${cs.S} r=${cs.rank}`;
      out.push({ name: `training step, optimizer state resident, ${cs.name}`, shape, ms: msPlain, timing: 'wall', minMs: Math.min(...t.plain), maxMs: Math.max(...t.plain) });
      out.push({
        name: `training step, optimizer state paged (budget ${Math.round((budget / stateBytes) * 100)}%), ${cs.name}`,
        shape,
        ms: msPaged,
        ratio,
        ratioOf: 'paged step time / resident step time (lower is better)',
        goal: '≤ 1.3×',
        met: ratio <= 1.3,
        timing: 'wall',
        minMs: Math.min(...t.paged),
        maxMs: Math.max(...t.paged),
        extra: {
          stateBytes,
          budgetBytes: budget,
          pages: store.keys().length,
          pagesInPerStep: per('pagesIn'),
          pagesOutPerStep: per('pagesOut'),
          bytesInPerStep: per('bytesIn'),
          bytesOutPerStep: per('bytesOut'),
          waitMsPerStep: per('waitMs'),
          buffersMadePerStep: per('buffersMade'),
        },
      });
    } finally {
      plain.destroy();
      paged.destroy();
      store.destroy();
      plainLora.destroy();
      pagedLora.destroy();
      model.destroy();
    }
  }
  return out;
}
