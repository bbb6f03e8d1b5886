// Fetching a demo link's published adapter in the worker (a fake fetch): exactly the two files from
// the folder or Hub repo the link names; the Hub token only to the Hub; redirects to another host
// refused without following them; and every bad answer (HTTP errors, an HTML page, oversized or
// invalid files, an adapter for another base model) a clear error naming the URL and what was expected.

import { describe, expect, it } from 'vitest';
import { tinyConfig, randomLoraTensors } from '../model/tiny-model.ts';
import { peftLoraShape, parsePeftLoraName } from '../model/names.ts';
import { makeLoraConfig } from '../train/lora-config.ts';
import { adapterConfigJson, writeAdapter } from '../train/peft.ts';
import { AdapterFetchError, fetchAdapter, MAX_CONFIG_BYTES } from './adapter-fetch.ts';
import type { FetchAdapterArgs } from './protocol.ts';

const config = tinyConfig('llama');
const lora = makeLoraConfig({ r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] });

function adapterFiles(base = 'test/tiny') {
  const tensors = randomLoraTensors(config, 2, ['q_proj', 'v_proj'], { seed: 3 });
  const weights = writeAdapter(
    new Map([...tensors].map(([name, data]) => {
      const p = parsePeftLoraName(name)!;
      return [name, { shape: peftLoraShape(config, p.target, p.which, 2), data }];
    })),
  );
  return { config: adapterConfigJson(lora, base), weights };
}

type Route = Response | (() => Response);

/** A fetch answering from `routes` (by URL), recording every request. */
function fakeFetch(routes: Record<string, Route>) {
  const seen: Array<{ url: string; init?: RequestInit }> = [];
  const f = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    seen.push({ url, init });
    const r = routes[url];
    if (!r) throw new TypeError('Failed to fetch');
    return typeof r === 'function' ? r() : r;
  }) as typeof fetch;
  return { f, seen };
}

const FOLDER = 'https://cdn.example.com/adapters/tiny';

function folderRoutes(files = adapterFiles()): Record<string, Route> {
  return {
    [`${FOLDER}/adapter_config.json`]: () => new Response(files.config, { headers: { 'content-type': 'application/json' } }),
    [`${FOLDER}/adapter_model.safetensors`]: () => new Response(files.weights as Uint8Array<ArrayBuffer>),
  };
}

async function fails(args: FetchAdapterArgs, f: typeof fetch): Promise<string> {
  const err = await fetchAdapter(args, f).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AdapterFetchError);
  return (err as Error).message;
}

describe('fetching a published adapter', () => {
  it('fetches exactly the two files of the folder, without credentials, and checks them', async () => {
    const files = adapterFiles();
    const { f, seen } = fakeFetch(folderRoutes(files));
    const r = await fetchAdapter({ adapter: { kind: 'url', url: `${FOLDER}/` }, baseModel: 'test/tiny' }, f);
    expect(r.config).toBe(files.config);
    expect(r.weights).toEqual(files.weights);
    expect(r.urls).toEqual([`${FOLDER}/adapter_config.json`, `${FOLDER}/adapter_model.safetensors`]);
    expect(seen.map((s) => s.url).sort()).toEqual([...r.urls].sort());
    for (const s of seen) expect(s.init).toMatchObject({ redirect: 'manual', credentials: 'omit' });
  });

  it('takes a Hub repo from the studio endpoint, sending the token there only', async () => {
    const files = adapterFiles();
    const hub = 'http://127.0.0.1:9999';
    const { f, seen } = fakeFetch({
      [`${hub}/me/tiny-lora/resolve/v1/adapter_config.json`]: () => new Response(files.config),
      [`${hub}/me/tiny-lora/resolve/v1/adapter_model.safetensors`]: () => new Response(files.weights as Uint8Array<ArrayBuffer>),
    });
    const r = await fetchAdapter({ adapter: { kind: 'hub', repo: 'me/tiny-lora', revision: 'v1' }, endpoint: `${hub}/`, token: 'hf_secret', baseModel: 'test/tiny' }, f);
    expect(r.urls).toEqual([`${hub}/me/tiny-lora/resolve/v1/adapter_config.json`, `${hub}/me/tiny-lora/resolve/v1/adapter_model.safetensors`]);
    for (const s of seen) expect(s.init?.headers).toEqual({ Authorization: 'Bearer hf_secret' });
    const msg = await fails({ adapter: { kind: 'hub', repo: 'me/private' }, endpoint: hub }, fakeFetch({
      [`${hub}/me/private/resolve/main/adapter_config.json`]: new Response('no', { status: 401 }),
      [`${hub}/me/private/resolve/main/adapter_model.safetensors`]: new Response('no', { status: 401 }),
    }).f);
    expect(msg).toMatch(/\/me\/private\/resolve\/main\/adapter_(config\.json|model\.safetensors) answered HTTP 401 .*private or gated/);
  });

  it('refuses an http URL unless localhost is allowed, and never fetches it', async () => {
    const { f, seen } = fakeFetch({});
    expect(await fails({ adapter: { kind: 'url', url: 'http://127.0.0.1:8000/a' } }, f)).toMatch(/must use https/);
    expect(await fails({ adapter: { kind: 'url', url: 'https://x.example/a?token=1' } }, f)).toMatch(/query string/);
    expect(seen).toEqual([]);
  });

  it('names the URL and the missing file on a 404, and an HTML page where JSON was expected', async () => {
    const routes = folderRoutes();
    routes[`${FOLDER}/adapter_model.safetensors`] = new Response('not here', { status: 404, statusText: 'Not Found' });
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, fakeFetch(routes).f)).toBe(
      `the adapter file at ${FOLDER}/adapter_model.safetensors answered HTTP 404 Not Found instead of adapter_model.safetensors: there is no adapter_model.safetensors there (a published adapter is a folder holding adapter_config.json and adapter_model.safetensors)`,
    );
    const html = folderRoutes();
    html[`${FOLDER}/adapter_config.json`] = () => new Response('<!DOCTYPE html><html><body>Sign in</body></html>');
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, fakeFetch(html).f)).toBe(`the adapter file at ${FOLDER}/adapter_config.json is an HTML page, not the adapter's adapter_config.json`);
    expect(await fails({ adapter: { kind: 'url', url: 'https://down.example/a' } }, fakeFetch({}).f)).toMatch(/^could not fetch https:\/\/down\.example\/a\/adapter_(config\.json|model\.safetensors) \(Failed to fetch\).*CORS/);
  });

  it('follows a redirect within the origin, refuses one to another host without contacting it', async () => {
    const files = adapterFiles();
    const same = {
      ...folderRoutes(files),
      [`${FOLDER}/adapter_model.safetensors`]: () => new Response(null, { status: 302, headers: { location: '/blobs/abc' } }),
      'https://cdn.example.com/blobs/abc': () => new Response(files.weights as Uint8Array<ArrayBuffer>),
    };
    const ok = fakeFetch(same);
    expect((await fetchAdapter({ adapter: { kind: 'url', url: FOLDER } }, ok.f)).weights).toEqual(files.weights);
    expect(ok.seen.map((s) => s.url)).toContain('https://cdn.example.com/blobs/abc');

    const away = fakeFetch({ ...folderRoutes(files), [`${FOLDER}/adapter_model.safetensors`]: () => new Response(null, { status: 302, headers: { location: 'https://evil.example/x' } }) });
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, away.f)).toMatch(
      /adapter_model\.safetensors answered with a redirect to https:\/\/evil\.example instead of adapter_model\.safetensors of the adapter in https:\/\/cdn\.example\.com\/adapters\/tiny: a demo link fetches its adapter only from the host it names \(https:\/\/cdn\.example\.com\)/,
    );
    expect(away.seen.some((s) => s.url.includes('evil'))).toBe(false);
    // Browsers hide redirects from `redirect: 'manual'` (an opaque response): refused too.
    const opaque = fakeFetch({ ...folderRoutes(files), [`${FOLDER}/adapter_config.json`]: () => ({ type: 'opaqueredirect', status: 0, ok: false, headers: new Headers() }) as Response });
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, opaque.f)).toMatch(/adapter_config\.json answered with a redirect instead of/);
  });

  it('caps sizes and checks the pair as a LoRA adapter for the link’s base model', async () => {
    const big = folderRoutes();
    big[`${FOLDER}/adapter_config.json`] = () => new Response('{"x": "' + 'a'.repeat(MAX_CONFIG_BYTES) + '"}');
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, fakeFetch(big).f)).toMatch(/adapter_config\.json is 1\.0 MB, more than the 1\.0 MB adapter_config\.json may be/);
    const declared = folderRoutes();
    declared[`${FOLDER}/adapter_model.safetensors`] = () => new Response('x', { headers: { 'content-length': String(5 * 1024 ** 3) } });
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, fakeFetch(declared).f)).toMatch(/adapter_model\.safetensors is over 5120\.0 MB, more than the 1024\.0 MB/);
    const junk = folderRoutes();
    junk[`${FOLDER}/adapter_model.safetensors`] = () => new Response('<html>oops</html>');
    expect(await fails({ adapter: { kind: 'url', url: FOLDER } }, fakeFetch(junk).f)).toMatch(/^the adapter at https:\/\/cdn\.example\.com\/adapters\/tiny is not a LoRA adapter the studio can load: adapter_model\.safetensors/);
    const other = fakeFetch(folderRoutes(adapterFiles('someone/else')));
    expect(await fails({ adapter: { kind: 'url', url: FOLDER }, baseModel: 'test/tiny' }, other.f)).toMatch(/the adapter was trained on someone\/else, but the link loads test\/tiny/);
  });
});
