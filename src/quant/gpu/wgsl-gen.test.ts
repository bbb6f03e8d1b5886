// The checked-in generated shaders match their generator (run `npx tsx scripts/gen-wgsl.ts`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHADER_DIR } from '../../gpu/node.ts';
import { generateMatmul4Wgsl, generateMatmulWgsl } from './wgsl-gen.ts';

describe('generated WGSL', () => {
  it('shaders/matmul4.wgsl and shaders/matmul.wgsl are up to date', () => {
    expect(readFileSync(join(SHADER_DIR, 'matmul4.wgsl'), 'utf8')).toBe(generateMatmul4Wgsl());
    expect(readFileSync(join(SHADER_DIR, 'matmul.wgsl'), 'utf8')).toBe(generateMatmulWgsl());
  });
});
