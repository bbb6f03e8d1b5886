// References that leave the machine in exported files and demo links: Hub repo ids, dataset
// references, adapter URLs, and the checks that keep local paths and access tokens out of them.
// Pure string checks: no DOM, no Node APIs, no network.

/** One part of a Hub id: huggingface_hub's validate_repo_id (\b[\w\-.]{1,96}\b), ASCII only. */
const PART = '[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?';
const REPO_ID_RE = new RegExp(`^(?:${PART}/)?${PART}$`);

/**
 * Whether `s` is a Hub repo id: "name" or "owner/name", each part 1–96 of [A-Za-z0-9_.-] starting and
 * ending with a letter, digit or "_", no "--" or "..", not ending in ".git" (huggingface_hub's rules).
 */
export function isHubRepoId(s: unknown): s is string {
  return typeof s === 'string' && REPO_ID_RE.test(s) && !s.includes('--') && !s.includes('..') && !s.endsWith('.git');
}

/** Whether `s` looks like a file-system path (absolute, home-relative, ./ or ../, Windows, file: URL). */
export function looksLikeLocalPath(s: string): boolean {
  return (
    /^(?:\/|~|\.\.?(?:[/\\]|$)|[A-Za-z]:[\\/]|\\\\|file:)/i.test(s) ||
    s.includes('\\') ||
    s.split('/').length > 2 ||
    s.split('/').some((p) => p === '.' || p === '..')
  );
}

/** Hugging Face access tokens (hf_…, api_org_…, api_…) anywhere in a string. */
const TOKEN_RE = /(?:^|[^A-Za-z0-9])(?:hf_[A-Za-z0-9]{20,}|api_org_[A-Za-z0-9]{20,}|api_[A-Za-z0-9]{30,})/;

/** Whether `s` contains something that looks like a Hugging Face access token. */
export function containsToken(s: string): boolean {
  return TOKEN_RE.test(s);
}

/** Git revisions as the Hub accepts them in URLs: a branch, tag, commit or refs/pr/N. */
export function isRevision(s: unknown): s is string {
  return (
    typeof s === 'string' &&
    /^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,199}$/.test(s) &&
    !s.includes('..') &&
    !s.includes('//') &&
    !s.endsWith('/') &&
    !s.endsWith('.lock')
  );
}

export class RefError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefError';
  }
}

/**
 * A base model id for adapter_config.json's base_model_name_or_path: `value` when it is a Hub repo id,
 * else `fallback` when that one is; a local path or anything else is refused with a message that
 * says how to give the id.
 */
export function baseModelRepoId(value: string | null | undefined, fallback?: string | null, what = 'base_model_name_or_path'): string {
  if (isHubRepoId(value) && !containsToken(value)) return value;
  if (fallback !== undefined && fallback !== null) {
    if (isHubRepoId(fallback) && !containsToken(fallback)) return fallback;
    throw new RefError(`base model ${JSON.stringify(fallback)} is not a Hugging Face repo id (like "Qwen/Qwen2.5-0.5B-Instruct")`);
  }
  const why = value === null || value === undefined || value === '' ? 'is not set' : looksLikeLocalPath(value) ? `is a local path (${JSON.stringify(value)})` : `(${JSON.stringify(value)}) is not a Hugging Face repo id`;
  throw new RefError(`${what} ${why}: exported adapters name their base by its Hub repo id (like "Qwen/Qwen2.5-0.5B-Instruct"); give it explicitly (--base-model in the CLI)`);
}

/** A dataset as exports and links name it: a Hub dataset id, or just a name (a file's base name). */
export type DatasetRef = { hub: string; config?: string; split?: string } | { name: string };

const FILE_EXT = /\.(?:jsonl?|ndjson|csv|tsv|txt|md|parquet|arrow|zip|gz)$/i;

/**
 * The shareable form of a dataset given as a Hub id, a file name or a local path: Hub ids stay,
 * anything else becomes its base name (never a path). Null for an empty reference.
 */
export function datasetRef(spec: string | null | undefined): DatasetRef | null {
  if (!spec || typeof spec !== 'string') return null;
  const s = spec.trim();
  if (!s) return null;
  if (isHubRepoId(s) && !FILE_EXT.test(s) && !looksLikeLocalPath(s) && !containsToken(s)) return { hub: s };
  const base = s.split(/[\\/]/).filter(Boolean).pop() ?? '';
  const name = base.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 200);
  if (!name || name === '.' || name === '..' || containsToken(name)) return null;
  return { name };
}

/** A dataset reference as one line of text (README, logs). */
export function datasetLabel(d: DatasetRef | null): string | null {
  if (!d) return null;
  if ('hub' in d) return d.hub + (d.config ? ` (${d.config}${d.split ? `/${d.split}` : ''})` : d.split ? ` (${d.split})` : '');
  return d.name;
}

/** Hosts allowed over plain http (local test servers). */
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Checks the URL of an adapter folder: https (or http://localhost when `allowHttpLocalhost`), a host,
 * no user name or password, no query or fragment, no access token, at most 2048 characters. Returns
 * the canonical URL without a trailing slash.
 */
export function checkAdapterUrl(url: string, opts: { allowHttpLocalhost?: boolean } = {}): string {
  const bad = (why: string): never => {
    throw new RefError(`adapter URL ${JSON.stringify(url.length > 120 ? url.slice(0, 120) + '…' : url)} ${why}`);
  };
  if (typeof url !== 'string' || !url) bad('is empty');
  if (url.length > 2048) bad('is longer than 2048 characters');
  if (containsToken(url)) bad('contains an access token; links never carry tokens');
  if (/[\u0000-\u0020\u007f]/.test(url)) bad('contains spaces or control characters');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad('is not a valid absolute URL');
  }
  const local = LOCAL_HOSTS.has(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && local && opts.allowHttpLocalhost)) {
    bad(u.protocol === 'http:' ? 'must use https' : `must be an https URL (not ${u.protocol})`);
  }
  if (!u.hostname) bad('has no host');
  if (u.username || u.password) bad('must not contain a user name or password');
  if (u.search || url.includes('?')) bad('must not have a query string (?…)');
  if (u.hash || url.includes('#')) bad('must not have a fragment (#…)');
  return u.href.replace(/\/+$/, '');
}

/** The URL of one file in an adapter folder given by its (checked) URL. */
export function adapterFileUrl(folderUrl: string, file: string): string {
  return `${folderUrl.replace(/\/+$/, '')}/${encodeURIComponent(file)}`;
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`: a file of a Hub repo. */
export function hubFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  if (!isHubRepoId(repo)) throw new RefError(`invalid repo id ${JSON.stringify(repo)}`);
  if (!isRevision(revision)) throw new RefError(`invalid revision ${JSON.stringify(revision)}`);
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${encodeURIComponent(file)}`;
}
