// qlora quantize / dequantize on the real stories260K model: the bnb layout, exact dequantization,
// the bnb folder loading on the GPU like quantize-on-load, and bad input rejected by name.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, sharedPath } from '../node/shared.ts';
import { openSafetensors, writeSafetensors } from '../formats/safetensors.ts';
import { bytesSource } from '../formats/byte-source.ts';
import { loadModel } from '../model/weights.ts';
import { modelFolder } from '../node/model-folder.ts';
import { dequantizeLinear, quantizeLinear } from '../quant/bnb-tensors.ts';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { loadGpuModel } from '../llm/load.ts';
import { makeBatch } from '../llm/batch.ts';

const run = promisify(execFile);
async function qlora(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(REPO_ROOT, 'bin/qlora.js'), ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

async function tensorsOf(file: string) {
  const r = await openSafetensors(bytesSource(readFileSync(file), file));
  return r;
}

describe('qlora quantize / dequantize', () => {
  it('writes the bnb-4bit layout, dequantizes exactly, and loads on the GPU like quantize-on-load', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const tmp = mkdtempSync(join(tmpdir(), 'qlora-q-'));
    const q = await qlora('quantize', dir, '--out', join(tmp, 's4'), '--json');
    expect(q.code, q.stderr).toBe(0);
    const stats = JSON.parse(q.stdout);
    expect(stats).toMatchObject({ quantized: 35, kept: 12, type: 'nf4', blocksize: 64, doubleQuant: true });
    expect(stats.bytesAfter).toBeLessThan(stats.bytesBefore / 3);
    expect(stats.meanRelativeError).toBeGreaterThan(0.01);
    expect(stats.meanRelativeError).toBeLessThan(0.15);

    const cfg = JSON.parse(readFileSync(join(tmp, 's4/config.json'), 'utf8'));
    expect(cfg.quantization_config).toMatchObject({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true });
    expect(Object.keys(cfg.quantization_config)[0]).toBe('quant_method');
    expect(readFileSync(join(tmp, 's4/tokenizer.json'), 'utf8')).toBe(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));

    const r = await tensorsOf(join(tmp, 's4/model.safetensors'));
    const p = 'model.layers.0.self_attn.k_proj.weight';
    expect(r.info(p)).toMatchObject({ dtype: 'U8', shape: [1024, 1] }); // 32·64/2
    expect(r.info(`${p}.absmax`)).toMatchObject({ dtype: 'U8', shape: [32] });
    expect(r.info(`${p}.quant_map`)).toMatchObject({ dtype: 'F32', shape: [16] });
    expect(r.info(`${p}.nested_absmax`)).toMatchObject({ dtype: 'F32', shape: [1] });
    expect(r.info(`${p}.nested_quant_map`)).toMatchObject({ dtype: 'F32', shape: [256] });
    const state = JSON.parse(Buffer.from(await r.readBytes(`${p}.quant_state.bitsandbytes__nf4`)).toString('utf8'));
    expect(Object.keys(state)).toEqual(['quant_type', 'blocksize', 'dtype', 'shape', 'nested_blocksize', 'nested_dtype', 'nested_offset']);
    expect(state.shape).toEqual([32, 64]);
    expect(r.info('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [512, 64] });
    expect(r.has('model.layers.0.input_layernorm.weight')).toBe(true);

    const d = await qlora('dequantize', join(tmp, 's4'), '--out', join(tmp, 's4d'));
    expect(d.code, d.stderr).toBe(0);
    const back = await tensorsOf(join(tmp, 's4d/model.safetensors'));
    const { config, weights } = await loadModel(modelFolder(dir));
    for (const name of ['model.layers.2.mlp.down_proj.weight', 'model.layers.4.self_attn.q_proj.weight']) {
      const info = back.info(name);
      const want = dequantizeLinear(quantizeLinear(weights.get(name)!, info.shape as [number, number], { type: 'nf4', doubleQuant: true }));
      expect(await back.readFloat32(name)).toEqual(want);
    }
    expect(JSON.parse(readFileSync(join(tmp, 's4d/config.json'), 'utf8')).quantization_config).toBeUndefined();

    // The pre-quantized folder on the GPU gives the same logits as quantizing the F32 model on load.
    const batch = makeBatch({ inputIds: [[1, 403, 261, 299, 301, 265, 80]] });
    const a = await loadGpuModel(rt, modelFolder(join(tmp, 's4')));
    const b = await loadGpuModel(rt, modelFolder(dir), { quant: 'nf4' });
    expect(a.prequantized).toBe(true);
    expect(await a.model.logits(batch)).toEqual(await b.model.logits(batch));
    a.model.destroy();
    b.model.destroy();
    expect(config.numLayers).toBe(5);
  });

  it('rejects a bad quant_state and bad options with messages naming them', async () => {
    const dir = sharedPath('models/stories260K');
    if (!dir) return;
    const tmp = mkdtempSync(join(tmpdir(), 'qlora-qbad-'));
    const bs = await qlora('quantize', dir, '--out', join(tmp, 'x'), '--blocksize', '48');
    expect(bs.code).toBe(2);
    expect(bs.stderr).toMatch(/--blocksize/);
    const same = await qlora('quantize', dir, '--out', dir);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/source folder/);
    // A bnb folder whose quant_state says "int3".
    expect((await qlora('quantize', dir, '--out', join(tmp, 'ok'))).code).toBe(0);
    cpSync(join(tmp, 'ok'), join(tmp, 'bad'), { recursive: true });
    const r = await tensorsOf(join(tmp, 'ok/model.safetensors'));
    const list = [];
    for (const name of r.names()) {
      const info = r.info(name);
      let data = await r.readBytes(name);
      if (name === 'model.layers.1.mlp.up_proj.weight.quant_state.bitsandbytes__nf4') {
        data = new TextEncoder().encode(Buffer.from(data).toString('utf8').replace('"nf4"', '"int3"'));
        list.push({ name, dtype: info.dtype, shape: [data.length], data });
        continue;
      }
      list.push({ name, dtype: info.dtype, shape: info.shape, data });
    }
    writeFileSync(join(tmp, 'bad/model.safetensors'), writeSafetensors(list));
    const bad = await qlora('dequantize', join(tmp, 'bad'), '--out', join(tmp, 'bad-out'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/model\.layers\.1\.mlp\.up_proj\.weight.*int3/);
  });
});
