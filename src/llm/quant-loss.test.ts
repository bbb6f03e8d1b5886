// How much 4-bit quantization costs the real stories260K model: eval loss on TinyStories-like
// text with the f32 base, NF4 and FP4 (double-quantized absmax), all on the GPU.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { modelFolder } from '../node/model-folder.ts';
import { createTokenizer } from '../model/tokenizer.ts';
import { sharedPath } from '../node/shared.ts';
import { loadGpuModel, type QuantChoice } from './load.ts';
import { makeBatch } from './batch.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

// Short stories in the TinyStories style (simple words, one small plot each), written for this test.
export const TINY_STORIES = [
  'Once upon a time, there was a little boy named Tim. Tim had a red ball. He liked to play with his ball in the park. One day, the ball rolled into the pond. Tim was sad. A big duck swam to the ball and pushed it back to Tim. Tim was happy and said, "Thank you, duck!"',
  'One day, a girl named Sue went to the store with her mom. She saw a big, shiny toy car. "Can I have it, Mom?" she asked. Her mom said, "Not today, but you can help me carry the bags." Sue helped her mom, and her mom gave her a cookie. Sue smiled.',
  'There was a small cat who lived in a house. The cat liked to sleep in the sun. One morning, the cat saw a bird on the tree. The cat wanted to play with the bird, but the bird flew away. The cat went back to sleep in the warm sun.',
  'Lily and Ben were friends. They liked to build a tower with blocks. One day, the tower fell down. Ben was angry, but Lily said, "Let us build it again, together." They built a bigger tower and laughed. They learned that it is fun to share and help.',
];

describe('quantization cost on stories260K', () => {
  it('NF4 raises the eval loss only a little, and less than FP4', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const tok = createTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'), readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    const ids = TINY_STORIES.map((s) => tok.encode(s));
    const batch = makeBatch({ inputIds: ids }, { padId: 0 });
    const loss: Record<string, number> = {};
    for (const quant of ['none', 'nf4', 'fp4'] as QuantChoice[]) {
      const { model } = await loadGpuModel(rt, modelFolder(dir), { quant, maxPositions: 128 });
      model.evalStep(batch);
      loss[quant] = (await model.readLoss()).mean;
      model.destroy();
    }
    const rise = loss.nf4! - loss.none!;
    console.log(
      `stories260K eval loss: f32 ${loss.none!.toFixed(4)}, NF4 ${loss.nf4!.toFixed(4)} (+${rise.toFixed(4)}, ${((rise / loss.none!) * 100).toFixed(1)}%), ` +
        `FP4 ${loss.fp4!.toFixed(4)} (+${(loss.fp4! - loss.none!).toFixed(4)})`,
    );
    expect(loss.none!).toBeLessThan(2.5); // the model knows this kind of text
    expect(rise).toBeGreaterThan(0);
    expect(rise / loss.none!).toBeLessThan(0.1);
    expect(loss.nf4!).toBeLessThan(loss.fp4!);
  });
});
