// Demo links: encode → decode round trips (with and without an embedded adapter), and every kind of
// bad link — tampered, truncated, oversized, wrong version, unknown fields, out-of-range values,
// tokens, local paths, non-https URLs — is refused with a message, before anything is returned.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { deflateSync } from 'fflate';
import { tinyConfig, randomLoraTensors } from '../model/tiny-model.ts';
import { adapterConfigJson, writeAdapter } from '../train/peft.ts';
import { makeLoraConfig } from '../train/lora-config.ts';
import { memoryModelFiles } from '../model/model-files.ts';
import {
  base64UrlDecode,
  base64UrlEncode,
  crc32,
  decodeDemoLink,
  DemoLinkError,
  demoLinkFetches,
  demoLinkOrigins,
  encodeDemoLink,
  encodeDemoPayload,
  hasDemoLink,
  MAX_INFLATED_BYTES,
  MAX_PAYLOAD_CHARS,
  type DemoLink,
} from './link.ts';
import { baseModelRepoId, checkAdapterUrl, containsToken, datasetRef, isHubRepoId, looksLikeLocalPath } from './refs.ts';

const ORIGIN = 'https://studio.example.org/';
const TOKEN = 'hf_' + 'aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567';

function embeddedAdapter(opts: { r?: number; seed?: number; base?: string; config?: ReturnType<typeof tinyConfig> } = {}) {
  const config = opts.config ?? tinyConfig('qwen2');
  const r = opts.r ?? 4;
  const targets = ['q_proj', 'v_proj'] as const;
  const tensors = randomLoraTensors(config, r, targets, { seed: opts.seed ?? 3 });
  const weights = writeAdapter(new Map([...tensors].map(([n, d]) => [n, { shape: n.includes('lora_A') ? [r, d.length / r] : [d.length / r, r], data: d }])));
  const cfg = adapterConfigJson(makeLoraConfig({ r, alpha: 8, dropout: 0, targetModules: [...targets] }), opts.base ?? 'Qwen/Qwen2.5-0.5B-Instruct');
  return { config: cfg, weights };
}

function fullDemo(): DemoLink {
  return {
    model: { repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'main' },
    title: 'Pirate assistant',
    dataset: { hub: 'tatsu-lab/alpaca', split: 'train' },
    lora: { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false, seed: 0 },
    train: { lr: 2e-4, maxSteps: 50, batchSize: 1, gradAccum: 4, seqLen: 256, schedule: 'cosine', warmupRatio: 0.03, seed: 0 },
    prompt: { system: 'You are a pirate.', user: 'Tell me about the sea.\nBriefly, please.' },
    sampling: { temperature: 0.7, topP: 0.9, topK: 40, repetitionPenalty: 1.1, maxNewTokens: 64, seed: 42 },
    adapter: { kind: 'embedded', ...embeddedAdapter() },
  };
}

function expectError(f: () => unknown, code: string, message: RegExp) {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(DemoLinkError);
  expect((err as DemoLinkError).code).toBe(code);
  expect((err as Error).message).toMatch(message);
}

/** A payload whose JSON is `json` (valid container: right CRC and size), to test the schema checks. */
function rawLink(json: unknown, attachment: Uint8Array = new Uint8Array(0)): string {
  const j = new TextEncoder().encode(typeof json === 'string' ? json : JSON.stringify(json));
  const body = new Uint8Array(4 + j.length + attachment.length);
  new DataView(body.buffer).setUint32(0, j.length);
  body.set(j, 4);
  body.set(attachment, 4 + j.length);
  const d = deflateSync(body);
  const out = new Uint8Array(9 + d.length);
  out[0] = 1;
  new DataView(out.buffer).setUint32(5, body.length);
  out.set(d, 9);
  new DataView(out.buffer).setUint32(1, crc32(out.subarray(5)));
  return `${ORIGIN}#demo=${base64UrlEncode(out)}`;
}

afterEach(() => vi.unstubAllGlobals());

describe('demo link round trip', () => {
  it('encodes and decodes every field, with the adapter embedded byte for byte', () => {
    const demo = fullDemo();
    const url = encodeDemoLink(demo, { origin: ORIGIN });
    expect(url.startsWith(`${ORIGIN}#demo=`)).toBe(true);
    expect(url).toMatch(/^[A-Za-z0-9:/._#=-]+$/); // nothing to escape
    expect(hasDemoLink(url)).toBe(true);
    const back = decodeDemoLink(url);
    expect(back).toEqual(demo);
    expect(back.adapter?.kind === 'embedded' && back.adapter.weights).toEqual((demo.adapter as { weights: Uint8Array }).weights);
    // the fragment alone works too
    expect(decodeDemoLink(url.slice(url.indexOf('#')))).toEqual(demo);
  });

  it('round trips minimal links and adapters by reference', () => {
    const min: DemoLink = { model: { repo: 'gpt2' } };
    expect(decodeDemoLink(encodeDemoLink(min, { origin: 'http://localhost:5173' }))).toEqual(min);
    const hub: DemoLink = { model: { repo: 'HuggingFaceTB/SmolLM2-135M' }, adapter: { kind: 'hub', repo: 'someone/smollm2-pirate-lora', revision: 'v1.0' }, dataset: { name: 'pirate.jsonl' } };
    expect(decodeDemoLink(encodeDemoLink(hub, { origin: ORIGIN }))).toEqual(hub);
    const url: DemoLink = { model: { repo: 'HuggingFaceTB/SmolLM2-135M' }, adapter: { kind: 'url', url: 'https://cdn.example.com/adapters/pirate' } };
    expect(decodeDemoLink(encodeDemoLink(url, { origin: ORIGIN }))).toEqual(url);
  });

  it('an embedded adapter passes the same checks the engine applies when loading it', async () => {
    const demo = decodeDemoLink(encodeDemoLink(fullDemo(), { origin: ORIGIN }));
    const a = demo.adapter!;
    expect(a.kind).toBe('embedded');
    if (a.kind !== 'embedded') return;
    const { parseAdapterConfig, readAdapter } = await import('../train/peft.ts');
    const { openSafetensors } = await import('../formats/safetensors.ts');
    const files = memoryModelFiles({ 'adapter_config.json': a.config, 'adapter_model.safetensors': a.weights });
    const config = tinyConfig('qwen2');
    const parsed = parseAdapterConfig(await files.text('adapter_config.json'), 'adapter_config.json', { numLayers: config.numLayers });
    const tensors = await readAdapter(await openSafetensors(await files.open('adapter_model.safetensors')), parsed.config, config);
    expect(tensors.size).toBe(config.numLayers * 2 * 2);
  });

  it('refuses to embed an adapter over the size limit and says what to do', () => {
    const big = embeddedAdapter({ r: 64, config: tinyConfig('qwen2', { hidden_size: 256, num_attention_heads: 8, num_key_value_heads: 4 }) });
    const demo: DemoLink = { model: { repo: 'Qwen/Qwen2.5-0.5B-Instruct' }, adapter: { kind: 'embedded', ...big } };
    expectError(() => encodeDemoLink(demo, { origin: ORIGIN }), 'too-large', /more than the 100 KB a link can embed; publish it/);
    // the limit is an option; the small adapter fits the default one
    const small: DemoLink = { model: { repo: 'Qwen/Qwen2.5-0.5B-Instruct' }, adapter: { kind: 'embedded', ...embeddedAdapter() } };
    expect(encodeDemoPayload(small).bytes).toBeLessThan(100 * 1024);
    expectError(() => encodeDemoPayload(small, { maxEmbeddedBytes: 1024 }), 'too-large', /more than the 1 KB a link can embed/);
  });

  it('lists exactly the URLs and origins opening a link reaches: the Hub endpoint and the adapter URL', () => {
    const hubEndpoint = 'https://huggingface.co';
    const byUrl = decodeDemoLink(encodeDemoLink({ model: { repo: 'a/b' }, adapter: { kind: 'url', url: 'https://cdn.example.com/x/' } }, { origin: ORIGIN }));
    expect(demoLinkFetches(byUrl, hubEndpoint)).toEqual({
      modelBase: 'https://huggingface.co/a/b/resolve/main/',
      adapter: ['https://cdn.example.com/x/adapter_config.json', 'https://cdn.example.com/x/adapter_model.safetensors'],
    });
    expect(demoLinkOrigins(byUrl, hubEndpoint)).toEqual(['https://huggingface.co', 'https://cdn.example.com']);
    const byHub = decodeDemoLink(encodeDemoLink({ model: { repo: 'a/b', revision: 'refs/pr/1' }, adapter: { kind: 'hub', repo: 'c/d' } }, { origin: ORIGIN }));
    expect(demoLinkFetches(byHub, 'http://localhost:8080/')).toEqual({
      modelBase: 'http://localhost:8080/a/b/resolve/refs%2Fpr%2F1/',
      adapter: ['http://localhost:8080/c/d/resolve/main/adapter_config.json', 'http://localhost:8080/c/d/resolve/main/adapter_model.safetensors'],
    });
    expect(demoLinkOrigins(byHub, 'http://localhost:8080/')).toEqual(['http://localhost:8080']);
    const embedded = decodeDemoLink(encodeDemoLink(fullDemo(), { origin: ORIGIN }));
    expect(demoLinkOrigins(embedded, hubEndpoint)).toEqual(['https://huggingface.co']);
  });

  it('decoding does no I/O and runs nothing from the link', () => {
    const fetchSpy = vi.fn(() => {
      throw new Error('no fetch allowed');
    });
    vi.stubGlobal('fetch', fetchSpy);
    const evil: DemoLink = {
      model: { repo: 'a/b' },
      title: '<img src=x onerror=alert(1)>',
      prompt: { user: '<script>fetch("https://evil.example")</script> {{ config.__class__ }} ${process.exit()}' },
    };
    const back = decodeDemoLink(encodeDemoLink(evil, { origin: ORIGIN }));
    expect(back).toEqual(evil); // plain text, returned as text
    expect(fetchSpy).not.toHaveBeenCalled();
    expect(demoLinkOrigins(back, 'https://huggingface.co')).toEqual(['https://huggingface.co']);
    // a __proto__ key is an unknown field, not a prototype change
    expectError(() => decodeDemoLink(rawLink('{"v":1,"model":{"repo":"a/b"},"__proto__":{"polluted":true}}')), 'invalid', /unknown field "__proto__"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('bad demo links are refused with a message', () => {
  const good = encodeDemoLink(fullDemo(), { origin: ORIGIN });
  const payload = good.slice(good.indexOf('#demo=') + 6);

  it('tampered: every flipped bit is caught', () => {
    const bin = base64UrlDecode(payload);
    for (const pos of [0, 3, 7, 12, 40, Math.floor(bin.length / 2), bin.length - 1]) {
      for (const bit of [0, 5]) {
        const t = bin.slice();
        t[pos]! ^= 1 << bit;
        const err = (() => {
          try {
            decodeDemoLink(`${ORIGIN}#demo=${base64UrlEncode(t)}`);
          } catch (e) {
            return e;
          }
          return null;
        })();
        expect(err, `flip byte ${pos} bit ${bit}`).toBeInstanceOf(DemoLinkError);
        expect((err as Error).message).toMatch(/damaged|altered|version|not supported/);
      }
    }
    // a changed character of the text form
    const i = Math.floor(payload.length / 3);
    const changed = payload.slice(0, i) + (payload[i] === 'A' ? 'B' : 'A') + payload.slice(i + 1);
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=${changed}`), 'damaged', /damaged|altered/);
  });

  it('truncated anywhere', () => {
    for (const keep of [0.99, 0.5, 0.1]) {
      const cut = payload.slice(0, Math.floor(payload.length * keep));
      expect(() => decodeDemoLink(`${ORIGIN}#demo=${cut}`)).toThrow(/damaged|truncated|base64/);
    }
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=`), 'malformed', /empty/);
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=AQID`), 'damaged', /truncated/);
  });

  it('malformed: not a link, not base64, wrong version', () => {
    expectError(() => decodeDemoLink(ORIGIN), 'malformed', /no #demo=/);
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=ab+c/d==`), 'malformed', /base64/);
    const bin = base64UrlDecode(payload);
    bin[0] = 2;
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=${base64UrlEncode(bin)}`), 'version', /format 2 is not supported/);
    expectError(() => decodeDemoLink(rawLink({ v: 2, model: { repo: 'a/b' } })), 'version', /version 2 is not supported/);
    expectError(() => decodeDemoLink(rawLink('{"v":1,"model":')), 'malformed', /not valid JSON/);
  });

  it('oversized: long links, big declared sizes and deflate bombs are refused before inflating', () => {
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=${'A'.repeat(MAX_PAYLOAD_CHARS + 4)}`), 'too-large', /more than/);
    // declared size over the cap (valid CRC)
    const bin = base64UrlDecode(payload);
    const dv = new DataView(bin.buffer);
    dv.setUint32(5, MAX_INFLATED_BYTES + 1);
    dv.setUint32(1, crc32(bin.subarray(5)));
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=${base64UrlEncode(bin)}`), 'too-large', /declares .* more than/);
    // a bomb: 16 MB of zeros declared as 100 bytes
    const zeros = deflateSync(new Uint8Array(16 << 20), { level: 9 });
    const bomb = new Uint8Array(9 + zeros.length);
    bomb[0] = 1;
    new DataView(bomb.buffer).setUint32(5, 100);
    bomb.set(zeros, 9);
    new DataView(bomb.buffer).setUint32(1, crc32(bomb.subarray(5)));
    const t0 = performance.now();
    expectError(() => decodeDemoLink(`${ORIGIN}#demo=${base64UrlEncode(bomb)}`), 'damaged', /inflates past the 100 bytes/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('unknown fields anywhere', () => {
    const base = { v: 1, model: { repo: 'a/b' } };
    expectError(() => decodeDemoLink(rawLink({ ...base, extra: 1 })), 'invalid', /the link has unknown field "extra"/);
    expectError(() => decodeDemoLink(rawLink({ v: 1, model: { repo: 'a/b', endpoint: 'https://evil.example' } })), 'invalid', /model has unknown field "endpoint"/);
    expectError(() => decodeDemoLink(rawLink({ ...base, sampling: { temperature: 1, script: 'x' } })), 'invalid', /sampling has unknown field "script"/);
    expectError(() => decodeDemoLink(rawLink({ ...base, adapter: { kind: 'url', url: 'https://a.example/x', headers: {} } })), 'invalid', /adapter has unknown field "headers"/);
    expectError(() => decodeDemoLink(rawLink({ ...base, adapter: { kind: 'script' } })), 'invalid', /adapter.kind must be/);
    expectError(() => decodeDemoLink(rawLink({ v: 1 })), 'invalid', /model is missing/);
  });

  it('wrong types and out-of-range values', () => {
    const base = { v: 1, model: { repo: 'a/b' } };
    const cases: Array<[object, RegExp]> = [
      [{ sampling: { temperature: -1 } }, /sampling.temperature must be a number in \[0, 10\], got -1/],
      [{ sampling: { topP: 0 } }, /sampling.topP must be a number in \(0, 1\]/],
      [{ sampling: { maxNewTokens: 1.5 } }, /sampling.maxNewTokens must be an integer/],
      [{ sampling: { topK: '40' } }, /sampling.topK must be an integer .* got "40"/],
      [{ lora: { r: 0, alpha: 8, dropout: 0, targetModules: ['q_proj'], useRslora: false } }, /lora.r must be an integer in \[1, 4096\]/],
      [{ lora: { r: 4, alpha: 8, dropout: 1, targetModules: ['q_proj'], useRslora: false } }, /lora.dropout must be a number in \[0, 1\)/],
      [{ lora: { r: 4, alpha: 8, dropout: 0, targetModules: ['lm_head'], useRslora: false } }, /unknown module "lm_head"/],
      [{ lora: { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj'], useRslora: 'no' } }, /useRslora must be true or false/],
      [{ train: { lr: 0 } }, /train.lr must be a number in \(0, 1\]/],
      [{ train: { schedule: 'exponential' } }, /train.schedule must be one of/],
      [{ train: { evalSplit: 0.7 } }, /train.evalSplit must be a fraction/],
      [{ prompt: { user: '' } }, /prompt.user is empty/],
      [{ prompt: { user: 'x'.repeat(8001) } }, /more than 8000/],
      [{ prompt: { user: 'a\u0000b' } }, /control characters/],
      [{ title: 'a\nb' }, /control characters/],
      [{ model: { repo: 'a/b', revision: '../../etc' } }, /revision must be a branch, tag or commit/],
      [{ model: { repo: 'https://evil.example/x' } }, /model.repo must be a Hub repo id/],
      [{ model: { repo: 'a:b' } }, /model.repo must be a Hub repo id/],
      [{ model: { repo: 'evil.example:443/x' } }, /must be a Hub repo id/],
      [{ dataset: { hub: 'x/y', split: 'train; drop' } }, /dataset.split must be a name/],
    ];
    for (const [over, msg] of cases) expectError(() => decodeDemoLink(rawLink({ ...base, ...over })), 'invalid', msg);
  });

  it('tokens and local paths are refused, in links and when encoding', () => {
    const base = { v: 1, model: { repo: 'a/b' } };
    expectError(() => decodeDemoLink(rawLink({ ...base, prompt: { user: `my token is ${TOKEN}` } })), 'unsafe', /access token/);
    expectError(() => decodeDemoLink(rawLink({ ...base, adapter: { kind: 'url', url: `https://x.example/${TOKEN}` } })), 'unsafe', /access token/);
    expectError(() => decodeDemoLink(rawLink({ ...base, dataset: { name: '/home/me/data/train.jsonl' } })), 'unsafe', /is a path/);
    expectError(() => decodeDemoLink(rawLink({ ...base, dataset: { name: 'C:\\Users\\me\\train.jsonl' } })), 'unsafe', /is a path/);
    expectError(() => decodeDemoLink(rawLink({ v: 1, model: { repo: '/models/llama' } })), 'unsafe', /local path/);
    expectError(() => decodeDemoLink(rawLink({ v: 1, model: { repo: '../llama' } })), 'unsafe', /local path/);
    expectError(() => decodeDemoLink(rawLink({ v: 1, model: { repo: 'models/org/llama' } })), 'unsafe', /local path/);
    expectError(() => decodeDemoLink(rawLink({ v: 1, model: { repo: 'file:///models/llama' } })), 'unsafe', /local path/);
    expectError(() => encodeDemoLink({ model: { repo: 'a/b' }, prompt: { user: TOKEN } }, { origin: ORIGIN }), 'unsafe', /access token/);
    expectError(() => encodeDemoLink({ model: { repo: './models/x' } }, { origin: ORIGIN }), 'unsafe', /local path/);
    // an embedded adapter whose config names a local path or carries a token
    const local = embeddedAdapter({ base: '/home/me/models/qwen' });
    expectError(() => encodeDemoLink({ model: { repo: 'Qwen/Qwen2.5-0.5B-Instruct' }, adapter: { kind: 'embedded', ...local } }, { origin: ORIGIN }), 'unsafe', /local path/);
    const tok = embeddedAdapter({ base: TOKEN });
    expectError(() => encodeDemoLink({ model: { repo: 'Qwen/Qwen2.5-0.5B-Instruct' }, adapter: { kind: 'embedded', ...tok } }, { origin: ORIGIN }), 'unsafe', /access token/);
  });

  it('adapter URLs: https only (http://localhost when allowed), no credentials, query or fragment', () => {
    const link = (url: string) => rawLink({ v: 1, model: { repo: 'a/b' }, adapter: { kind: 'url', url } });
    expectError(() => decodeDemoLink(link('http://cdn.example.com/x')), 'unsafe', /must use https/);
    expectError(() => decodeDemoLink(link('javascript:alert(1)')), 'unsafe', /must be an https URL/);
    expectError(() => decodeDemoLink(link('data:text/html,hi')), 'unsafe', /must be an https URL/);
    expectError(() => decodeDemoLink(link('file:///etc/passwd')), 'unsafe', /must be an https URL/);
    expectError(() => decodeDemoLink(link('https://user:pw@cdn.example.com/x')), 'unsafe', /user name or password/);
    expectError(() => decodeDemoLink(link('https://cdn.example.com/x?token=abc')), 'unsafe', /query string/);
    expectError(() => decodeDemoLink(link('https://cdn.example.com/x#y')), 'unsafe', /fragment/);
    expectError(() => decodeDemoLink(link('/adapters/x')), 'unsafe', /not a valid absolute URL/);
    expectError(() => decodeDemoLink(link('http://localhost:8000/adapter')), 'unsafe', /must use https/);
    expect(decodeDemoLink(link('http://localhost:8000/adapter'), { allowHttpLocalhost: true }).adapter).toEqual({ kind: 'url', url: 'http://localhost:8000/adapter' });
    expect(() => encodeDemoLink({ model: { repo: 'a/b' } }, { origin: 'http://evil.example' })).toThrow(/origin .* must be https/);
  });

  it('embedded adapters: damaged files, mismatched configs and non-finite values', () => {
    const a = embeddedAdapter();
    const demo = (over: Partial<{ config: string; weights: Uint8Array }>, repo = 'Qwen/Qwen2.5-0.5B-Instruct'): DemoLink => ({
      model: { repo },
      adapter: { kind: 'embedded', config: over.config ?? a.config, weights: over.weights ?? a.weights },
    });
    expectError(() => encodeDemoLink(demo({ weights: a.weights.slice(0, a.weights.length - 4) }), { origin: ORIGIN }), 'invalid', /embedded adapter: .*truncated/);
    expectError(() => encodeDemoLink(demo({}, 'meta-llama/Llama-3.2-1B'), { origin: ORIGIN }), 'invalid', /trained on Qwen\/Qwen2.5-0.5B-Instruct, but the link loads meta-llama/);
    const r8 = a.config.replace('"r": 4', '"r": 8');
    expectError(() => encodeDemoLink(demo({ config: r8 }), { origin: ORIGIN }), 'invalid', /says r=8, the tensors have rank 4/);
    const targets = a.config.replace('"v_proj"', '"k_proj"');
    expectError(() => encodeDemoLink(demo({ config: targets }), { origin: ORIGIN }), 'invalid', /targets q_proj, k_proj, the tensors cover q_proj, v_proj/);
    const nan = a.weights.slice();
    new DataView(nan.buffer).setFloat32(nan.length - 4, NaN, true);
    expectError(() => encodeDemoLink(demo({ weights: nan }), { origin: ORIGIN }), 'invalid', /NaN or infinite/);
    expectError(
      () => encodeDemoLink({ ...demo({}), lora: { r: 4, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false } }, { origin: ORIGIN }),
      'invalid',
      /lora settings differ from the embedded adapter_config.json/,
    );
    // an attachment whose size disagrees with the JSON, in an otherwise valid container
    const wire = { v: 1, model: { repo: 'Qwen/Qwen2.5-0.5B-Instruct' }, adapter: { kind: 'embedded', config: a.config, size: a.weights.length + 1, shuffle: 1 } };
    expectError(() => decodeDemoLink(rawLink(wire, a.weights)), 'invalid', /declares/);
    expectError(() => decodeDemoLink(rawLink({ v: 1, model: { repo: 'a/b' } }, new Uint8Array(5))), 'invalid', /unexpected bytes/);
  });
});

describe('references', () => {
  it('Hub ids, local paths, tokens, datasets', () => {
    for (const ok of ['gpt2', 'Qwen/Qwen2.5-0.5B-Instruct', 'HuggingFaceTB/SmolLM2-135M', 'a_b/c.d-e']) expect(isHubRepoId(ok), ok).toBe(true);
    for (const bad of ['', '/abs', './x', 'a/b/c', 'a//b', 'a/../b', 'a--b/c', 'x.git', '-a', 'a/b.', 'https://x/y', 'a b', 'é/x', 'x'.repeat(97)]) expect(isHubRepoId(bad), bad).toBe(false);
    for (const p of ['/x', '~/x', './x', '../x', 'C:\\x', 'C:/x', '\\\\server\\x', 'file:///x', 'a/b/c']) expect(looksLikeLocalPath(p), p).toBe(true);
    expect(looksLikeLocalPath('owner/name')).toBe(false);
    expect(containsToken(`Bearer ${TOKEN}`)).toBe(true);
    expect(containsToken('hf_transfer is a package')).toBe(false);
    expect(datasetRef('tatsu-lab/alpaca')).toEqual({ hub: 'tatsu-lab/alpaca' });
    expect(datasetRef('/home/me/data/train.jsonl')).toEqual({ name: 'train.jsonl' });
    expect(datasetRef('data/train.jsonl')).toEqual({ name: 'train.jsonl' });
    expect(datasetRef('C:\\data\\chat.csv')).toEqual({ name: 'chat.csv' });
    expect(() => baseModelRepoId('/home/me/models/qwen')).toThrow(/is a local path .* Hub repo id/);
    expect(baseModelRepoId('/home/me/models/qwen', 'Qwen/Qwen2.5-0.5B')).toBe('Qwen/Qwen2.5-0.5B');
    expect(checkAdapterUrl('https://cdn.example.com/a/b/')).toBe('https://cdn.example.com/a/b');
  });
});
