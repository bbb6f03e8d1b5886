// Hugging Face datasets through the datasets-server (dataset viewer) HTTP API, no download of files:
//   GET {endpoint}/splits?dataset=ID            → { splits: [{ dataset, config, split }], pending, failed }
//   GET {endpoint}/rows?dataset=&config=&split=&offset=&length=  (length ≤ 100)
//                                               → { features, rows: [{ row_idx, row, truncated_cells }], num_rows_total, … }
// Errors come back as { error: "…" } with an HTTP status; they are reported with the dataset and URL.

import { badRow, DataError, SkipLog, type BadRowPolicy } from './errors.ts';
import type { SourceRow } from './readers.ts';

export const DEFAULT_HF_ENDPOINT = 'https://datasets-server.huggingface.co';
const MAX_PAGE = 100;

export interface HfOptions {
  /** Default https://datasets-server.huggingface.co. */
  endpoint?: string;
  /** A Hugging Face token for gated or private datasets (sent as `Authorization: Bearer …`). */
  token?: string;
  /** Subset; default: "default" when present, else the first config that has the split. */
  config?: string;
  /** Default: "train" when present, else the first split. */
  split?: string;
  /** Rows per request, at most 100 (the API's limit). */
  pageSize?: number;
  /** Stop after this many rows. */
  maxRows?: number;
  /** Retries for 429 and 5xx answers (with a growing delay). Default 3. */
  retries?: number;
  /** Delay before the first retry in ms. Default 500. */
  retryDelayMs?: number;
  fetch?: typeof fetch;
  onBadRow?: BadRowPolicy;
  skips?: SkipLog;
}

export interface HfSplit {
  dataset: string;
  config: string;
  split: string;
}

/** True for strings that look like a Hub dataset id: "name" or "owner/name". */
export function looksLikeHfDatasetId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(s) && !/\.(jsonl?|csv|tsv|txt|md|ndjson)$/i.test(s);
}

function endpointOf(opts: HfOptions): string {
  return (opts.endpoint ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, '');
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

async function getJson(url: string, dataset: string, opts: HfOptions): Promise<Record<string, unknown>> {
  const doFetch = opts.fetch ?? fetch;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await doFetch(url, { headers });
    } catch (e) {
      if (attempt < retries) {
        await sleep((opts.retryDelayMs ?? 500) * 2 ** attempt);
        continue;
      }
      throw new DataError(`cannot reach the datasets server at ${url}: ${(e as Error).message}`, `dataset ${dataset}`);
    }
    const body = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(body);
    } catch {
      /* reported below */
    }
    if (res.ok) {
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw new DataError(`the datasets server answered ${url} with something other than a JSON object`, `dataset ${dataset}`);
      }
      return json as Record<string, unknown>;
    }
    if ((res.status === 429 || res.status >= 500) && attempt < retries) {
      await sleep((opts.retryDelayMs ?? 500) * 2 ** attempt);
      continue;
    }
    const msg = (json as { error?: unknown } | null)?.error;
    const detail = typeof msg === 'string' ? msg : body.slice(0, 200) || res.statusText;
    const hint =
      res.status === 404 ? ' (check the dataset id; a gated or private dataset needs a token)' :
      res.status === 401 || res.status === 403 ? ' (the dataset is gated or private: pass a Hugging Face token)' : '';
    throw new DataError(`HTTP ${res.status} from ${url}: ${detail}${hint}`, `dataset ${dataset}`);
  }
}

/** The dataset's configs and splits. */
export async function hfSplits(dataset: string, opts: HfOptions = {}): Promise<HfSplit[]> {
  const url = `${endpointOf(opts)}/splits?dataset=${encodeURIComponent(dataset)}`;
  const json = await getJson(url, dataset, opts);
  if (!Array.isArray(json.splits)) throw new DataError(`unexpected answer from ${url}: expected a "splits" array`, `dataset ${dataset}`);
  const splits: HfSplit[] = [];
  for (const s of json.splits as unknown[]) {
    const o = s as Partial<HfSplit>;
    if (typeof o?.config === 'string' && typeof o.split === 'string') splits.push({ dataset, config: o.config, split: o.split });
  }
  return splits;
}

/** Picks the config and split to read: explicit choices are checked against what the server lists. */
export async function resolveHfSplit(dataset: string, opts: HfOptions = {}): Promise<HfSplit> {
  if (opts.config && opts.split) return { dataset, config: opts.config, split: opts.split };
  const all = await hfSplits(dataset, opts);
  if (all.length === 0) throw new DataError('the datasets server lists no splits (the viewer may still be processing it)', `dataset ${dataset}`);
  const configs = [...new Set(all.map((s) => s.config))];
  const config = opts.config ?? (configs.includes('default') ? 'default' : all.find((s) => s.split === (opts.split ?? 'train'))?.config ?? configs[0]!);
  const inConfig = all.filter((s) => s.config === config);
  if (inConfig.length === 0) throw new DataError(`no config "${config}" (expected one of ${configs.join(', ')})`, `dataset ${dataset}`);
  const names = inConfig.map((s) => s.split);
  const split = opts.split ?? (names.includes('train') ? 'train' : names[0]!);
  if (!names.includes(split)) throw new DataError(`config "${config}" has no split "${split}" (expected one of ${names.join(', ')})`, `dataset ${dataset}`);
  return { dataset, config, split };
}

/** Streams a dataset split's rows page by page. */
export async function* readHfRows(dataset: string, opts: HfOptions = {}): AsyncGenerator<SourceRow> {
  const { config, split } = await resolveHfSplit(dataset, opts);
  const page = Math.max(1, Math.min(MAX_PAGE, opts.pageSize ?? MAX_PAGE));
  const policy = opts.onBadRow ?? 'skip';
  const skips = opts.skips ?? new SkipLog();
  const limit = opts.maxRows ?? Infinity;
  let total = Infinity;
  let index = 0;
  for (let offset = 0; offset < Math.min(total, limit); ) {
    const length = Math.min(page, limit - offset, total - offset);
    const url = `${endpointOf(opts)}/rows?dataset=${encodeURIComponent(dataset)}&config=${encodeURIComponent(config)}` +
      `&split=${encodeURIComponent(split)}&offset=${offset}&length=${length}`;
    const json = await getJson(url, dataset, opts);
    if (!Array.isArray(json.rows)) throw new DataError(`unexpected answer from ${url}: expected a "rows" array`, `dataset ${dataset}`);
    if (typeof json.num_rows_total === 'number') total = json.num_rows_total;
    const rows = json.rows as unknown[];
    if (rows.length === 0) break;
    for (const [k, item] of rows.entries()) {
      const it = item as { row_idx?: unknown; row?: unknown; truncated_cells?: unknown };
      const rowIdx = typeof it?.row_idx === 'number' ? it.row_idx : offset + k;
      const where = `${dataset} (${config}/${split}) row ${rowIdx}`;
      if (typeof it?.row !== 'object' || it.row === null || Array.isArray(it.row)) {
        badRow(policy, skips, 'not an object', 'expected "row" to be an object', where);
        continue;
      }
      if (Array.isArray(it.truncated_cells) && it.truncated_cells.length > 0) {
        badRow(policy, skips, 'truncated by the server', `the datasets server truncated cells ${it.truncated_cells.join(', ')} (row too large to fetch whole)`, where);
        continue;
      }
      yield { value: it.row as Record<string, unknown>, where, index: index++ };
    }
    offset += rows.length;
  }
}
