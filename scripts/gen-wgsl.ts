// Regenerates the generated WGSL in shaders/ from its TypeScript generators (the generators stay
// free of Node APIs so the browser build can import the tables they export):
//   npx tsx scripts/gen-wgsl.ts
// Tests fail when a checked-in shader differs from its generator's output.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SHADER_DIR } from '../src/gpu/node.ts';
import { generateMatmul4Wgsl, generateMatmulWgsl } from '../src/quant/gpu/wgsl-gen.ts';
import { generateAttentionRegisterWgsl, generateAttentionWgsl } from '../src/nn/attention-gen.ts';

const outputs: Record<string, string> = {
  'matmul4.wgsl': generateMatmul4Wgsl(),
  'matmul.wgsl': generateMatmulWgsl(),
  'attention.wgsl': generateAttentionWgsl(),
  'attention_register.wgsl': generateAttentionRegisterWgsl(),
};
for (const [file, text] of Object.entries(outputs)) writeFileSync(join(SHADER_DIR, file), text);
console.log(`wrote ${Object.keys(outputs).join(', ')} in ${SHADER_DIR}`);
