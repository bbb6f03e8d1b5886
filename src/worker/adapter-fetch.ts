// Fetching a published adapter for a demo link, in the worker: exactly two files,
// adapter_config.json and adapter_model.safetensors, from the place the link names — a Hub repo on
// the studio's own Hub endpoint, or an https folder (http://localhost when allowed, for tests).
// A folder URL is fetched without credentials and without following a redirect to another origin
// (a same-origin redirect is followed; in browsers, where redirects are opaque, any redirect is
// refused): the link's host is the only one contacted. Each file is size-capped while it
// streams in, then the pair is checked as a link's embedded adapter is (safetensors header, PEFT
// config, tensor names, ranks, layer coverage, finite values, the base model it was trained on)
// before the page loads anything. Every failure names the URL and what was expected there.

import { authHeaders, normalizeEndpoint, resolveUrl } from '../hub/hub-api.ts';
import { checkEmbeddedAdapter } from '../share/link.ts';
import { adapterFileUrl, checkAdapterUrl, RefError } from '../share/refs.ts';
import type { FetchAdapterArgs, FetchedAdapter } from './protocol.ts';
import { concatBytes } from '../util/bytes.ts';

export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;
/** Largest adapter_config.json accepted (PEFT writes ~1 KB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Largest adapter_model.safetensors accepted (r=64 on all linears of an 8B model is ~670 MB in F32). */
export const MAX_WEIGHTS_BYTES = 1024 * 1024 * 1024;
const MAX_REDIRECTS = 5;

export class AdapterFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterFetchError';
  }
}

type Fetch = typeof fetch;

const mb = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MB`;

/** A folder URL: fetched without credentials; redirects followed only within its origin. */
async function fetchPinned(url: string, fetchFn: Fetch, expected: string): Promise<Response> {
  const origin = new URL(url).origin;
  let at = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let res: Response;
    try {
      res = await fetchFn(at, { redirect: 'manual', credentials: 'omit' });
    } catch (e) {
      throw unreachable(url, e);
    }
    if (res.type !== 'opaqueredirect' && !(res.status >= 300 && res.status < 400)) return res;
    const loc = res.headers.get('location');
    let next: URL | null = null;
    try {
      next = loc ? new URL(loc, at) : null;
    } catch {
      next = null;
    }
    if (!next || next.origin !== origin) {
      throw new AdapterFetchError(
        `the adapter file at ${url} answered with a redirect${next ? ` to ${next.origin}` : ''} instead of ${expected}: a demo link fetches its adapter only from the host it names (${origin}); link to the folder where the files are`,
      );
    }
    at = next.href;
  }
  throw new AdapterFetchError(`the adapter file at ${url} redirected more than ${MAX_REDIRECTS} times instead of serving ${expected}`);
}

function unreachable(url: string, e: unknown): AdapterFetchError {
  return new AdapterFetchError(
    `could not fetch ${url} (${(e as Error)?.message ?? String(e)}): the host may be down, or it does not allow cross-origin requests (CORS) from this site`,
  );
}

/** The body, refusing more than `cap` bytes (checked on Content-Length, then while it streams). */
async function readCapped(res: Response, url: string, cap: number, expected: string): Promise<Uint8Array> {
  const tooBig = (n: number) => new AdapterFetchError(`the adapter file at ${url} is ${n > cap * 4 ? 'over ' : ''}${mb(n)}, more than the ${mb(cap)} ${expected} may be`);
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > cap) throw tooBig(declared);
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    if (b.byteLength > cap) throw tooBig(b.byteLength);
    return b;
  }
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > cap) {
      await reader.cancel().catch(() => undefined);
      throw tooBig(n);
    }
    parts.push(value);
  }
  return concatBytes(parts);
}

/** Fetches and checks a published adapter's two files (see the top of this file). */
export async function fetchAdapter(args: FetchAdapterArgs, fetchFn: Fetch = (input, init) => fetch(input, init)): Promise<FetchedAdapter> {
  const a = args.adapter;
  let urls: string[];
  let get: (url: string, expected: string) => Promise<Response>;
  let where: string;
  if (a?.kind === 'url') {
    let folder: string;
    try {
      folder = checkAdapterUrl(a.url, { allowHttpLocalhost: args.allowHttpLocalhost });
    } catch (e) {
      throw new AdapterFetchError(e instanceof RefError ? e.message : String(e));
    }
    urls = ADAPTER_FILES.map((f) => adapterFileUrl(folder, f));
    get = (url, expected) => fetchPinned(url, fetchFn, expected);
    where = folder;
  } else if (a?.kind === 'hub') {
    const endpoint = normalizeEndpoint(args.endpoint || undefined);
    const rev = a.revision ?? 'main';
    urls = ADAPTER_FILES.map((f) => resolveUrl(endpoint, a.repo, rev, f));
    const headers = authHeaders(args.token || undefined);
    get = async (url) => {
      try {
        return await fetchFn(url, { headers });
      } catch (e) {
        throw unreachable(url, e);
      }
    };
    where = `Hub repo ${a.repo} (${rev})`;
  } else {
    throw new AdapterFetchError('fetchAdapter needs an adapter given by Hub repo or by URL');
  }
  const one = async (url: string, file: string, cap: number): Promise<Uint8Array> => {
    const expected = `${file} of the adapter in ${where}`;
    const res = await get(url, expected);
    if (!res.ok) {
      const hint =
        res.status === 404
          ? `: there is no ${file} there (a published adapter is a folder holding ${ADAPTER_FILES.join(' and ')})`
          : (res.status === 401 || res.status === 403) && a.kind === 'hub'
            ? ': the repo may be private or gated (set a Hub token in the Model panel)'
            : '';
      throw new AdapterFetchError(`the adapter file at ${url} answered HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} instead of ${file}${hint}`);
    }
    return readCapped(res, url, cap, file);
  };
  const [cfgBytes, weights] = await Promise.all([one(urls[0]!, ADAPTER_FILES[0], MAX_CONFIG_BYTES), one(urls[1]!, ADAPTER_FILES[1], MAX_WEIGHTS_BYTES)]);
  let config: string;
  try {
    config = new TextDecoder('utf-8', { fatal: true }).decode(cfgBytes);
    JSON.parse(config);
  } catch (e) {
    const head = new TextDecoder().decode(cfgBytes.subarray(0, 64)).trimStart();
    const what = /^<(?:!doctype|html|\?xml)/i.test(head) ? 'an HTML page' : `not JSON (${(e as Error).message})`;
    throw new AdapterFetchError(`the adapter file at ${urls[0]} is ${what}, not the adapter's adapter_config.json`);
  }
  try {
    checkEmbeddedAdapter(config, weights, args.baseModel);
  } catch (e) {
    const why = ((e as Error).message ?? String(e)).replace(/^(?:invalid|unsafe) demo link: /, '').replace(/^embedded adapter: /, '').replace(/^embedded /, '');
    throw new AdapterFetchError(`the adapter at ${where} is not a LoRA adapter the studio can load: ${why}`);
  }
  return { config, weights, urls };
}
