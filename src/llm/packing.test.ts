// Engine + data together: the loss of a packed batch equals the loss of the same examples run one
// by one (token-weighted: Σ losses / Σ counted tokens), so packing never lets an example attend
// to or predict across its neighbour.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { modelFolder } from '../node/model-folder.ts';
import { sharedPath } from '../node/shared.ts';
import { prepareData } from '../data/pipeline.ts';
import { createDataTokenizer } from '../data/tokenize.ts';
import { chatTemplateFromConfig } from '../data/template.ts';
import { loadGpuModel } from './load.ts';
import { fromDataBatch } from './batch.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const ROWS = [
  { messages: [{ role: 'user', content: 'Tell me about a cat.' }, { role: 'assistant', content: 'The cat sat on the mat.' }] },
  { messages: [{ role: 'user', content: 'Who is Lily?' }, { role: 'assistant', content: 'Lily is a little girl who loves to play.' }] },
  { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] },
  { messages: [{ role: 'user', content: 'Count.' }, { role: 'assistant', content: 'One, two, three.' }, { role: 'user', content: 'More.' }, { role: 'assistant', content: 'Four.' }] },
];

describe('packing', () => {
  it('the loss of a packed batch equals the examples run one by one', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    const tok = createDataTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), cfg);
    const tpl = chatTemplateFromConfig(cfg, {});
    const prep = (packing: boolean) =>
      prepareData({ kind: 'rows', name: 'chat', rows: ROWS }, { format: 'messages', maxLength: 256, packing, batchSize: packing ? 1 : 1, padding: 'longest' }, tok, tpl);
    const packed = await prep(true);
    const single = await prep(false);
    const packedBatches = [...packed.train.batches({ batchSize: 1 })];
    expect(packedBatches).toHaveLength(1); // all four examples fit one row of 256
    expect(Math.max(...packedBatches[0]!.segmentIds)).toBe(4);
    const { model } = await loadGpuModel(rt, modelFolder(dir), { quant: 'none', maxPositions: 256 });

    model.evalStep(fromDataBatch(packedBatches[0]!));
    const p = await model.readLoss();
    let sum = 0;
    let count = 0;
    for (const b of single.train.batches({ batchSize: 1 })) {
      model.evalStep(fromDataBatch(b));
      const l = await model.readLoss();
      sum += l.sum;
      count += l.count;
    }
    console.log(`packed: ${p.mean.toFixed(5)} over ${p.count} tokens; one by one: ${(sum / count).toFixed(5)} over ${count}`);
    expect(p.count).toBe(count);
    expect(Math.abs(p.mean - sum / count)).toBeLessThan(1e-5 * (sum / count));
    model.destroy();
  });
});
