// The Hugging Face Hub API as the downloader needs it (engine code: `fetch` only): resolve a repo
// id + revision to its files (GET {endpoint}/api/models/{id}/revision/{rev}?blobs=true: `sha`, and
// `siblings` of {rfilename, size, blobId, lfs: {sha256, size}}), file URLs
// ({endpoint}/{id}/resolve/{rev}/{file}), errors that name the file and the HTTP status with a plain
// explanation, bounded retries with backoff, and token hygiene: a token only ever travels as an
// `Authorization: Bearer` header and is scrubbed from every error text.

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubAccess {
  /** Hub endpoint (default https://huggingface.co; Node reads HF_ENDPOINT in the CLI). */
  endpoint?: string;
  /** Access token for gated or private repos: sent as a Bearer header only. */
  token?: string;
  signal?: AbortSignal;
  /** fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Failed attempts in a row before giving up on network errors, 429 and 5xx (default 5). */
  retries?: number;
  /** First backoff delay in ms, doubled per attempt (default 1000). */
  retryDelayMs?: number;
  /** Longest backoff delay in ms, Retry-After included (default 30 s). */
  maxRetryDelayMs?: number;
}

export type HubErrorCode =
  | 'auth' | 'forbidden' | 'not-found' | 'rate-limited' | 'server' | 'http' | 'network'
  | 'size' | 'checksum' | 'quota' | 'aborted' | 'invalid';

export class HubError extends Error {
  constructor(
    message: string,
    readonly code: HubErrorCode,
    readonly opts: { status?: number; file?: string; retryable?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'HubError';
  }
  get status(): number | undefined {
    return this.opts.status;
  }
  get file(): string | undefined {
    return this.opts.file;
  }
  get retryable(): boolean {
    return !!this.opts.retryable;
  }
}

/** One file of a repo as the Hub lists it. */
export interface HubFile {
  name: string;
  size: number | null;
  /** LFS sha256 (hex), for LFS files. */
  sha256?: string;
  blobId?: string;
  lfs: boolean;
}

export interface RepoInfo {
  repo: string;
  revision: string;
  /** The commit the revision resolved to. */
  commit?: string;
  files: HubFile[];
}

export function normalizeEndpoint(endpoint: string | undefined): string {
  const e = (endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new HubError(`invalid Hub endpoint ${JSON.stringify(e)}: expected an http(s) URL`, 'invalid');
  }
  if (!/^https?:$/.test(u.protocol) || u.username || u.password || u.search) {
    throw new HubError(`invalid Hub endpoint ${JSON.stringify(u.origin + u.pathname)}: expected an http(s) URL without credentials or query`, 'invalid');
  }
  return e;
}

const segs = (s: string) => s.split('/').map(encodeURIComponent).join('/');

export function apiUrl(endpoint: string, repo: string, revision: string): string {
  return `${normalizeEndpoint(endpoint)}/api/models/${segs(repo)}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${normalizeEndpoint(endpoint)}/${segs(repo)}/resolve/${encodeURIComponent(revision)}/${segs(file)}`;
}

export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** `text` with every occurrence of `token` replaced. */
export function redact(text: string, token: string | undefined): string {
  return token && token.length >= 4 ? text.split(token).join('<token>') : text;
}

/** `e` as an Error whose message and stack never contain `token`. */
export function scrubError(e: unknown, token: string | undefined): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  if (!token || token.length < 4) return err;
  const leaks = (s: unknown) => typeof s === 'string' && s.includes(token);
  if (leaks(err.message)) {
    try {
      err.message = redact(err.message, token);
    } catch {
      return new Error(redact(err.message, token));
    }
  }
  if (leaks(err.stack)) err.stack = redact(err.stack!, token);
  if (leaks(String((err as { cause?: unknown }).cause))) (err as { cause?: unknown }).cause = undefined;
  return err;
}

export interface ErrorContext {
  repo: string;
  revision: string;
  /** The file being fetched, or undefined for the repo info. */
  file?: string;
  tokenSent: boolean;
  endpoint: string;
}

const what = (c: ErrorContext) => `${c.repo}@${c.revision}: ${c.file ?? 'repo info'}`;

/** A HubError for an HTTP error answer, with a plain explanation. */
export function httpError(res: Pick<Response, 'status' | 'statusText' | 'headers'>, c: ErrorContext): HubError {
  const s = res.status;
  const host = (() => {
    try {
      return new URL(c.endpoint).host;
    } catch {
      return c.endpoint;
    }
  })();
  const code = res.headers.get('x-error-code') ?? '';
  const file = c.file;
  const head = `${what(c)}: HTTP ${s}`;
  if (s === 401) {
    const why = c.tokenSent
      ? `the access token was refused: it is invalid, expired, or has no access to ${c.repo}`
      : `${c.repo} is gated or private (or does not exist) and needs an access token (set HF_TOKEN, or the token setting in the studio)`;
    return new HubError(`${head} (unauthorized): ${why}`, 'auth', { status: s, file });
  }
  if (s === 403) {
    return new HubError(`${head} (forbidden): no access to ${c.repo}; for a gated model, accept its conditions on the Hub with the account of your token`, 'forbidden', { status: s, file });
  }
  if (s === 404) {
    const which = code === 'RepoNotFound' ? `no repo ${c.repo} at ${host}`
      : code === 'RevisionNotFound' ? `${c.repo} has no revision "${c.revision}"`
      : code === 'EntryNotFound' ? `${c.repo}@${c.revision} has no file ${file}`
      : file ? `no such file ${file} in ${c.repo}@${c.revision}` : `no such repo or revision: ${c.repo}@${c.revision} at ${host}`;
    return new HubError(`${head} (not found): ${which}`, 'not-found', { status: s, file });
  }
  if (s === 429) {
    return new HubError(`${head} (too many requests): rate limited by ${host}; wait a few minutes and try again${c.tokenSent ? '' : ' (a token raises the limit)'}`, 'rate-limited', {
      status: s, file, retryable: true, retryAfterMs: retryAfter(res.headers.get('retry-after')),
    });
  }
  if (s >= 500) {
    return new HubError(`${head} (server error): ${host} failed to answer; try again later`, 'server', { status: s, file, retryable: true, retryAfterMs: retryAfter(res.headers.get('retry-after')) });
  }
  return new HubError(`${head} ${res.statusText || ''}`.trimEnd() + ': unexpected answer', 'http', { status: s, file });
}

/** Retry-After (seconds or an HTTP date) in ms, or undefined. */
function retryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

export function abortError(): HubError {
  return new HubError('download cancelled (what was fetched is kept; download again to resume)', 'aborted');
}

/** Sleeps `ms`, rejecting with abortError() when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Backoff before retry `attempt` (1-based): doubling with jitter, or Retry-After, capped. */
export function backoffMs(attempt: number, opts: HubAccess, retryAfterMs?: number): number {
  const base = opts.retryDelayMs ?? 1000;
  const cap = opts.maxRetryDelayMs ?? 30_000;
  const exp = base * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
  return Math.min(cap, retryAfterMs ?? exp);
}

/** A network failure (fetch rejected, or the body stream broke) as a retryable HubError. */
export function networkError(e: unknown, c: ErrorContext, detail = ''): HubError {
  const err = e as { message?: string; cause?: { message?: string; code?: string } };
  const why = [err?.message, err?.cause?.code ?? err?.cause?.message].filter(Boolean).join(': ');
  return new HubError(`${what(c)}: network error${detail ? ` (${detail})` : ''}: ${why || String(e)}`, 'network', { file: c.file, retryable: true });
}

/** Resolves a repo id + revision to its commit and files through the Hub API. */
export async function resolveRepo(repo: string, opts: HubAccess & { revision?: string } = {}): Promise<RepoInfo> {
  const revision = opts.revision || 'main';
  const endpoint = normalizeEndpoint(opts.endpoint);
  const f = opts.fetch ?? globalThis.fetch;
  const ctx: ErrorContext = { repo, revision, tokenSent: !!opts.token, endpoint };
  const retries = opts.retries ?? 5;
  try {
    for (let attempt = 1; ; attempt++) {
      if (opts.signal?.aborted) throw abortError();
      let err: HubError;
      try {
        const res = await f(apiUrl(endpoint, repo, revision), { headers: { Accept: 'application/json', ...authHeaders(opts.token) }, signal: opts.signal });
        if (res.ok) return parseRepoInfo(await res.json(), repo, revision, endpoint);
        await res.body?.cancel().catch(() => undefined);
        err = httpError(res, ctx);
      } catch (e) {
        if (opts.signal?.aborted) throw abortError();
        if (e instanceof HubError) throw e;
        if (e instanceof SyntaxError) throw new HubError(`${what(ctx)}: the answer of ${endpoint} is not JSON; is it a Hugging Face Hub endpoint?`, 'invalid');
        err = networkError(e, ctx);
      }
      if (!err.retryable || attempt > retries) throw attempt > 1 ? new HubError(`${err.message} (after ${attempt} attempts)`, err.code, err.opts) : err;
      await sleep(backoffMs(attempt, opts, err.opts.retryAfterMs), opts.signal);
    }
  } catch (e) {
    throw scrubError(e, opts.token);
  }
}

interface Sibling {
  rfilename?: unknown;
  size?: unknown;
  blobId?: unknown;
  lfs?: { sha256?: unknown; oid?: unknown; size?: unknown } | null;
}

function parseRepoInfo(json: unknown, repo: string, revision: string, endpoint: string): RepoInfo {
  const j = json as { sha?: unknown; siblings?: unknown };
  if (!j || !Array.isArray(j.siblings)) {
    throw new HubError(`${repo}@${revision}: the answer of ${endpoint} has no "siblings" file list; is it a Hugging Face Hub endpoint?`, 'invalid');
  }
  const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
  const files: HubFile[] = [];
  for (const s of j.siblings as Sibling[]) {
    if (typeof s?.rfilename !== 'string') continue;
    const lfs = s.lfs && typeof s.lfs === 'object' ? s.lfs : null;
    const rawSha = typeof lfs?.sha256 === 'string' ? lfs.sha256 : typeof lfs?.oid === 'string' ? lfs.oid : undefined;
    const sha256 = rawSha?.replace(/^sha256:/, '').toLowerCase();
    files.push({
      name: s.rfilename,
      size: num(s.size) ?? num(lfs?.size),
      sha256: sha256 && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : undefined,
      blobId: typeof s.blobId === 'string' ? s.blobId : undefined,
      lfs: !!lfs,
    });
  }
  return { repo, revision, commit: typeof j.sha === 'string' ? j.sha : undefined, files };
}
