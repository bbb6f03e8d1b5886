// `qlora export` and `qlora link` through child processes, on a tiny model folder and adapter
// written to a temp dir: the zip, the merged folder (GPU and CPU, sharded), the demo link, and the
// errors (local paths, oversized adapters) as one clear line.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { unzipSync } from 'fflate';
import { REPO_ROOT } from '../node/shared.ts';
import { writeSafetensors } from '../formats/safetensors.ts';
import { parseIndex } from '../formats/safetensors-index.ts';
import { parseModelConfig } from '../model/config.ts';
import { tinyConfigJson, randomWeights, randomLoraTensors } from '../model/tiny-model.ts';
import { LORA_TARGETS, modelTensorShapes, peftLoraShape } from '../model/names.ts';
import { openCheckpoint } from '../model/weights.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import { modelFolder } from '../node/model-folder.ts';
import { adapterConfigJson, writeAdapter } from '../train/peft.ts';
import { makeLoraConfig } from '../train/lora-config.ts';
import { decodeDemoLink } from '../share/link.ts';
import { memorySink } from './sink.ts';
import { mergeOnCpu } from './merge.ts';

const run = promisify(execFile);
async function qlora(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(REPO_ROOT, 'bin/qlora.js'), ...args], { cwd: REPO_ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const BASE = 'Qwen/Qwen2.5-0.5B-Instruct';
const json = tinyConfigJson('qwen2', { _name_or_path: BASE });
const config = parseModelConfig(json);
let tmp: string;
let modelDir: string;
let adapterDir: string;
let bigDir: string;
let localDir: string;

function writeAdapterDir(dir: string, r: number, base: string, log?: object) {
  mkdirSync(dir, { recursive: true });
  const tensors = randomLoraTensors(config, r, LORA_TARGETS, { seed: 2, std: 0.2 });
  const shaped = new Map(
    [...tensors].map(([n, d]) => {
      const m = /\.(\w+_proj)\.lora_([AB])\./.exec(n)!;
      return [n, { shape: peftLoraShape(config, m[1] as (typeof LORA_TARGETS)[number], m[2] as 'A' | 'B', r), data: d }];
    }),
  );
  writeFileSync(join(dir, 'adapter_model.safetensors'), writeAdapter(shaped));
  writeFileSync(join(dir, 'adapter_config.json'), adapterConfigJson(makeLoraConfig({ r, alpha: 2 * r, dropout: 0.05, targetModules: [...LORA_TARGETS] }), base));
  if (log) writeFileSync(join(dir, 'training_log.json'), JSON.stringify(log));
  return tensors;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'qlora-export-'));
  modelDir = join(tmp, 'model');
  mkdirSync(modelDir);
  const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
  const st = writeSafetensors([...randomWeights(config, 4)].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })));
  writeFileSync(join(modelDir, 'model.safetensors'), st);
  writeFileSync(join(modelDir, 'config.json'), JSON.stringify(json));
  writeFileSync(join(modelDir, 'tokenizer.json'), '{"model": {}}');
  writeFileSync(join(modelDir, 'tokenizer_config.json'), '{}');
  adapterDir = join(tmp, 'adapter');
  writeAdapterDir(adapterDir, 4, BASE, {
    baseModel: BASE,
    dataset: join(tmp, 'secret/train.jsonl'),
    lora: { r: 4, alpha: 8, dropout: 0.05, targetModules: [...LORA_TARGETS], useRslora: false, seed: 3 },
    train: { lr: 0.0002, maxSteps: 2, batchSize: 1, gradAccum: 2, seqLen: 64, schedule: 'constant', seed: 0, evalSplit: 0.05 },
    result: { steps: 2, evalLoss: 3.25, initialEvalLoss: 3.5, history: [{ step: 1, loss: 3.6, lr: 1e-4, gradNorm: 2, tokensPerSecond: 10 }, { step: 2, loss: 3.3, lr: 2e-4, gradNorm: 1.5, tokensPerSecond: 11, evalLoss: 3.25 }] },
  });
  bigDir = join(tmp, 'big');
  writeAdapterDir(bigDir, 256, BASE);
  localDir = join(tmp, 'local');
  writeAdapterDir(localDir, 4, '/home/me/models/qwen');
});

describe('qlora export / link', () => {
  it('export --zip writes the PEFT zip with the model card and the run files', async () => {
    const zip = join(tmp, 'out/adapter.zip');
    const [ok, local, localFixed] = await Promise.all([
      qlora('export', adapterDir, '--zip', zip),
      qlora('export', localDir, '--zip', join(tmp, 'local.zip')),
      qlora('export', localDir, '--zip', join(tmp, 'local2.zip'), '--base-model', BASE, '--dataset', 'tatsu-lab/alpaca'),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/wrote .*adapter\.zip .*adapter_config\.json, adapter_model\.safetensors, README\.md, training_config\.json, loss_history\.csv/);
    const files = unzipSync(readFileSync(zip));
    expect(Object.keys(files)).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'README.md', 'training_config.json', 'loss_history.csv']);
    expect(files['adapter_model.safetensors']).toEqual(new Uint8Array(readFileSync(join(adapterDir, 'adapter_model.safetensors'))));
    expect(new TextDecoder().decode(files['adapter_config.json'])).toBe(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
    const card = new TextDecoder().decode(files['README.md']);
    expect(card).toContain(`base_model: ${BASE}`);
    expect(card).toContain('- Final train loss: 3.3000 (step 2)');
    expect(card).toContain('`train.jsonl` (a local file, not published)');
    expect(Object.values(files).map((b) => new TextDecoder().decode(b)).join()).not.toContain(tmp);
    expect(readdirSync(join(tmp, 'out'))).toEqual(['adapter.zip']); // no .partial left

    expect(local.code).toBe(2);
    expect(local.stderr.trim().split('\n')).toHaveLength(1);
    expect(local.stderr).toMatch(/^qlora: base_model_name_or_path is a local path \("\/home\/me\/models\/qwen"\).*--base-model/);
    expect(localFixed.code, localFixed.stderr).toBe(0);
    const fixed = unzipSync(readFileSync(join(tmp, 'local2.zip')));
    expect(JSON.parse(new TextDecoder().decode(fixed['adapter_config.json'])).base_model_name_or_path).toBe(BASE);
    expect(new TextDecoder().decode(fixed['README.md'])).toContain('datasets:\n- tatsu-lab/alpaca');
  });

  it('export --merged writes a merged folder on the GPU and on the CPU (sharded, F16)', async () => {
    const [gpu, cpu, bad] = await Promise.all([
      qlora('export', adapterDir, '--model', modelDir, '--merged', '--out', join(tmp, 'merged'), '--dtype', 'f32', '--quant', 'none'),
      qlora('export', adapterDir, '--model', modelDir, '--merged', '--out', join(tmp, 'merged16'), '--dtype', 'f16', '--cpu', '--shard-size', '10KB'),
      qlora('export', adapterDir, '--merged', '--out', join(tmp, 'x')),
    ]);
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(gpu.stdout).toMatch(/merged the adapter into 14 linear weights \(base in full precision\) on the GPU; wrote \d+ F32 tensors/);
    expect(readdirSync(join(tmp, 'merged')).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const cfg = JSON.parse(readFileSync(join(tmp, 'merged/config.json'), 'utf8'));
    expect(cfg).toMatchObject({ torch_dtype: 'float32', _name_or_path: BASE, hidden_size: 32 });
    // the same weights as the in-process CPU merge
    const { readAdapter, parseAdapterConfig } = await import('../train/peft.ts');
    const { openSafetensors } = await import('../formats/safetensors.ts');
    const parsed = parseAdapterConfig(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'), 'adapter_config.json', { numLayers: 2 });
    const tensors = await readAdapter(await openSafetensors(await modelFolder(adapterDir).open('adapter_model.safetensors')), parsed.config, config);
    const ref = memorySink();
    await mergeOnCpu(config, await openCheckpoint(modelFolder(modelDir)), { config: parsed.config, tensors }, ref, { dtype: 'f32', quant: 'none' });
    const [a, b] = [await openCheckpoint(modelFolder(join(tmp, 'merged'))), await openCheckpoint(memoryModelFiles(ref.files))];
    for (const name of b.names()) {
      const [x, y] = [await a.readFloat32(name), await b.readFloat32(name)];
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-5);
    }

    expect(cpu.code, cpu.stderr).toBe(0);
    expect(cpu.stdout).toMatch(/dequantized from NF4\) on the CPU; wrote \d+ F16 tensors .* in \d+ files/);
    const index = parseIndex(readFileSync(join(tmp, 'merged16/model.safetensors.index.json'), 'utf8'));
    expect(index.shards.length).toBeGreaterThan(1);
    for (const s of index.shards) expect(readdirSync(join(tmp, 'merged16'))).toContain(s);
    const c16 = await openCheckpoint(modelFolder(join(tmp, 'merged16')));
    expect(c16.info('model.layers.1.mlp.down_proj.weight')).toMatchObject({ dtype: 'F16', shape: [32, 48] });
    expect(readdirSync(join(tmp, 'merged16')).some((f) => f.endsWith('.partial'))).toBe(false);

    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^qlora: --merged needs --model <model-dir>/);
  });

  it('link prints a demo link embedding the adapter, or asks for --adapter-url when it is too big', async () => {
    const [ok, big, bigUrl, local, localBase] = await Promise.all([
      qlora('link', adapterDir, '--model', BASE, '--prompt', 'Ahoy?', '--origin', 'https://studio.example.org', '--temperature', '0.7', '--max-new-tokens', '32', '--seed', '5'),
      qlora('link', bigDir, '--model', BASE),
      qlora('link', bigDir, '--model', BASE, '--adapter-url', 'https://cdn.example.com/adapters/big', '--origin', 'https://studio.example.org/app/'),
      qlora('link', adapterDir, '--model', modelDir),
      qlora('link', localDir, '--model', BASE),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const url = ok.stdout.trim();
    expect(url).toMatch(/^https:\/\/studio\.example\.org\/#demo=[A-Za-z0-9_-]+$/);
    expect(ok.stderr).toMatch(/adapter embedded \([\d.]+ KB compressed\)/);
    const demo = decodeDemoLink(url);
    expect(demo).toMatchObject({
      model: { repo: BASE },
      dataset: { name: 'train.jsonl' },
      lora: { r: 4, alpha: 8, dropout: 0.05, useRslora: false, seed: 3 },
      train: { lr: 0.0002, maxSteps: 2, gradAccum: 2, schedule: 'constant' },
      prompt: { user: 'Ahoy?' },
      sampling: { temperature: 0.7, maxNewTokens: 32, seed: 5 },
    });
    expect(demo.adapter?.kind).toBe('embedded');
    if (demo.adapter?.kind === 'embedded') {
      expect(demo.adapter.weights).toEqual(new Uint8Array(readFileSync(join(adapterDir, 'adapter_model.safetensors'))));
      expect(demo.adapter.config).toBe(readFileSync(join(adapterDir, 'adapter_config.json'), 'utf8'));
    }
    expect(url).not.toContain(encodeURIComponent(tmp));

    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/^qlora: the adapter compresses to [\d.]+ KB, more than the 100 KB a link can embed/);
    expect(big.stderr).toMatch(/--adapter-url/);
    expect(bigUrl.code, bigUrl.stderr).toBe(0);
    expect(decodeDemoLink(bigUrl.stdout.trim()).adapter).toEqual({ kind: 'url', url: 'https://cdn.example.com/adapters/big' });
    expect(bigUrl.stdout.startsWith('https://studio.example.org/app/#demo=')).toBe(true);

    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/^qlora: --model ".*" is not a Hugging Face repo id \(a local folder cannot go in a link\)/);
    // an adapter whose config names a local path: the link carries --model instead
    expect(localBase.code, localBase.stderr).toBe(0);
    expect(localBase.stderr).toMatch(/note: adapter_config.json names "\/home\/me\/models\/qwen" as its base; the link uses --model/);
    const fixed = decodeDemoLink(localBase.stdout.trim(), { allowHttpLocalhost: true });
    expect(fixed.adapter?.kind === 'embedded' && JSON.parse(fixed.adapter.config).base_model_name_or_path).toBe(BASE);
    expect(localBase.stdout).toMatch(/^http:\/\/localhost:5173\/#demo=/);
  });
});
