import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { f32ToBf16Bytes, f32ToF16Bytes, f16BytesToF32, bf16BytesToF32 } from '../formats/dtypes.ts';
import { writeSafetensors, type TensorData } from '../formats/safetensors.ts';
import { INDEX_FILE, buildIndex, shardName } from '../formats/safetensors-index.ts';
import { parseHeader } from '../formats/safetensors.ts';
import { modelFolder, fileSource } from '../node/model-folder.ts';
import { blobModelFiles, memoryModelFiles } from './model-files.ts';
import { modelTensorShapes } from './names.ts';
import { randomWeights, tinyConfig, tinyConfigJson } from './tiny-model.ts';
import { loadModel, loadWeights, openCheckpoint } from './weights.ts';

const cfg = tinyConfig('qwen2'); // untied, q/k/v biases
const weights = randomWeights(cfg, 3);

function tensors(dtype: 'F32' | 'F16' | 'BF16', skip: (n: string) => boolean = () => false): TensorData[] {
  return modelTensorShapes(cfg).filter((t) => !skip(t.name)).map(({ name, shape }) => {
    const w = weights.get(name)!;
    return { name, shape, dtype, data: dtype === 'F32' ? w : dtype === 'F16' ? f32ToF16Bytes(w) : f32ToBf16Bytes(w) };
  });
}

describe('loadWeights', () => {
  it('loads F32 exactly and F16/BF16 converted, by HF name', async () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const files = memoryModelFiles({ 'config.json': JSON.stringify(tinyConfigJson('qwen2')), 'model.safetensors': writeSafetensors(tensors(dtype)) });
      const { config, weights: got } = await loadModel(files);
      expect(config.modelType).toBe('qwen2');
      expect(got.size).toBe(modelTensorShapes(cfg).length);
      for (const [name, w] of weights) {
        const want = dtype === 'F32' ? w : dtype === 'F16' ? f16BytesToF32(f32ToF16Bytes(w)) : bf16BytesToF32(f32ToBf16Bytes(w));
        expect(got.get(name), name).toEqual(want);
      }
    }
  });

  it('loads from browser Files (blobModelFiles)', async () => {
    const files = blobModelFiles([
      new File([JSON.stringify(tinyConfigJson('qwen2'))], 'config.json'),
      new File([writeSafetensors(tensors('F16'))], 'model.safetensors'),
    ]);
    const { weights: got } = await loadModel(files);
    expect(got.get('lm_head.weight')).toEqual(f16BytesToF32(f32ToF16Bytes(weights.get('lm_head.weight')!)));
    await expect(files.text('tokenizer.json')).rejects.toThrow(/selected files: no file "tokenizer\.json"/);
  });

  it('loads a sharded checkpoint through model.safetensors.index.json', async () => {
    const all = tensors('F32');
    const parts = [all.slice(0, 7), all.slice(7, 15), all.slice(15)];
    const files: Record<string, Uint8Array | string> = {};
    const shards = parts.map((p, i) => {
      const bytes = writeSafetensors(p);
      const file = shardName(i + 1, parts.length);
      files[file] = bytes;
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      return { file, tensors: parseHeader(bytes.subarray(0, 8 + n)).tensors };
    });
    files[INDEX_FILE] = buildIndex(shards);
    const mf = memoryModelFiles(files);
    const ckpt = await openCheckpoint(mf);
    expect(ckpt.files).toEqual([shardName(1, 3), shardName(2, 3), shardName(3, 3)]);
    expect(ckpt.info('lm_head.weight').file).toBe(shardName(3, 3));
    const got = await loadWeights(mf, cfg);
    for (const [name, w] of weights) expect(got.get(name), name).toEqual(w);
  });

  it('does not need lm_head.weight when embeddings are tied (and ignores extra tensors)', async () => {
    const tied = { ...cfg, tieWordEmbeddings: true };
    const extra = { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', shape: [4], dtype: 'F32' as const, data: new Float32Array(4) };
    const files = memoryModelFiles({ 'model.safetensors': writeSafetensors([...tensors('F32', (n) => n === 'lm_head.weight'), extra]) });
    const got = await loadWeights(files, tied);
    expect(got.has('lm_head.weight')).toBe(false);
    expect(got.has(extra.name)).toBe(false);
    await expect(loadWeights(files, cfg)).rejects.toThrow(/missing 1 tensor\(s\): lm_head\.weight \(config\.json says tie_word_embeddings is false/);
  });

  it('names the tensor and both shapes on a mismatch', async () => {
    const ts = tensors('F32').map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [32, 16] } : t));
    const files = memoryModelFiles({ 'model.safetensors': writeSafetensors(ts) });
    await expect(loadWeights(files, cfg)).rejects.toThrow(
      'model.layers.1.self_attn.k_proj.weight (model.safetensors): expected shape [16, 32], got [32, 16]',
    );
  });

  it('rejects non-float tensors and folders without weights', async () => {
    const ts = tensors('F32').map((t) => (t.name === 'model.layers.0.mlp.up_proj.weight' ? { ...t, dtype: 'U8' as const, shape: [768], data: new Uint8Array(768) } : t));
    await expect(loadWeights(memoryModelFiles({ 'model.safetensors': writeSafetensors(ts) }), cfg)).rejects.toThrow(/up_proj\.weight \(model\.safetensors\): dtype U8 is not a float type/);
    await expect(loadWeights(memoryModelFiles({ 'config.json': '{}' }), cfg)).rejects.toThrow(/no model\.safetensors or model\.safetensors\.index\.json among the model files \(config\.json\)/);
  });
});

describe('node model folder', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('loads from a directory and bounds-checks reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qlora-model-'));
    dirs.push(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify(tinyConfigJson('qwen2')));
    await writeFile(join(dir, 'model.safetensors'), writeSafetensors(tensors('BF16')));
    const files = modelFolder(dir);
    expect(await files.list()).toEqual(['config.json', 'model.safetensors']);
    const { weights: got } = await loadModel(files);
    expect(got.get('model.norm.weight')).toEqual(bf16BytesToF32(f32ToBf16Bytes(weights.get('model.norm.weight')!)));

    const src = await fileSource(join(dir, 'config.json'), 'config.json');
    expect(new TextDecoder().decode(await src.read(0, 14))).toBe('{"model_type":');
    await expect(src.read(src.size - 2, 3)).rejects.toThrow(RangeError);
    await expect(src.read(-1, 1)).rejects.toThrow(/outside/);
    await expect(files.open('tokenizer.json')).rejects.toThrow(/no file "tokenizer\.json" \(has config\.json, model\.safetensors\)/);
    await expect(files.text('../etc/passwd')).rejects.toThrow(/leaves the folder/);
  });
});
