// A local datasets-server (the Hugging Face dataset viewer API) for tests (Node, node:http, 127.0.0.1,
// random port), answering with the real API's JSON shapes:
//   GET /splits?dataset=ID                                → { splits: [{ dataset, config, split }], pending, failed }
//   GET /rows?dataset=&config=&split=&offset=&length=     → { features, rows: [{ row_idx, row, truncated_cells }],
//                                                            num_rows_total, num_rows_per_page, partial }
// An unknown dataset is a 404 and a gated one asked without its token a 401, both with the API's
// { error } body; length > 100 is a 422. CORS headers on every answer and OPTIONS preflights answered
// (Authorization allowed), so a page or a worker on another origin can read it. Every request is
// logged; `fail(n)` answers the next n requests with a 500 (to test retries).

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type TestRow = Record<string, unknown>;

export interface TestSplit {
  rows: readonly TestRow[];
  /** Row indices the server reports as truncated (truncated_cells lists every column). */
  truncated?: readonly number[];
}

export interface TestDataset {
  id: string;
  /** config → split → rows. */
  configs: Record<string, Record<string, TestSplit | readonly TestRow[]>>;
  /** Gated: every request must carry `Authorization: Bearer <token>`, else 401. */
  token?: string;
}

export interface DatasetsRequestLog {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** The Authorization header as received (tests check it never leaks into URLs). */
  auth?: string;
  url: string;
}

export interface TestDatasetsServer {
  /** e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  requests: DatasetsRequestLog[];
  /** Answers the next `n` requests with `status` (default 500) and { error: "temporary" }. */
  fail(n: number, status?: number): void;
  close(): Promise<void>;
}

export const NOT_FOUND_MESSAGE =
  'The dataset does not exist, or is not accessible without authentication (private or gated). Please check the spelling of the dataset name or retry with authentication.';

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'authorization, accept, content-type',
  'access-control-max-age': '600',
};

function splitOf(v: TestSplit | readonly TestRow[]): TestSplit {
  return Array.isArray(v) ? { rows: v as readonly TestRow[] } : (v as TestSplit);
}

/** A rough `features` list like the API's (the reader ignores it). */
function features(rows: readonly TestRow[]): unknown[] {
  const first = rows[0] ?? {};
  return Object.keys(first).map((name, feature_idx) => {
    const v = first[name];
    const type = Array.isArray(v) ? { feature: { _type: 'Value', dtype: 'string' }, _type: 'List' } : { dtype: typeof v === 'number' ? 'int64' : 'string', _type: 'Value' };
    return { feature_idx, name, type };
  });
}

export async function startTestDatasetsServer(datasets: readonly TestDataset[]): Promise<TestDatasetsServer> {
  const byId = new Map(datasets.map((d) => [d.id, d]));
  const requests: DatasetsRequestLog[] = [];
  let failing = 0;
  let failStatus = 500;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const auth = req.headers.authorization;
    const send = (status: number, body?: unknown) => {
      requests.push({ method: req.method ?? 'GET', path: url.pathname, query, status, ...(auth !== undefined ? { auth } : {}), url: req.url ?? '/' });
      if (body === undefined) {
        res.writeHead(status, CORS);
        res.end();
        return;
      }
      res.writeHead(status, { ...CORS, 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') return send(204);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'Method not allowed' });
    if (failing > 0) {
      failing--;
      return send(failStatus, { error: 'temporary' });
    }
    if (url.pathname !== '/splits' && url.pathname !== '/rows') return send(404, { error: 'Not Found' });
    const ds = byId.get(query.dataset ?? '');
    if (!ds) return send(404, { error: NOT_FOUND_MESSAGE });
    if (ds.token && auth !== `Bearer ${ds.token}`) return send(401, { error: NOT_FOUND_MESSAGE });

    if (url.pathname === '/splits') {
      const splits = Object.entries(ds.configs).flatMap(([config, s]) => Object.keys(s).map((split) => ({ dataset: ds.id, config, split })));
      return send(200, { splits, pending: [], failed: [] });
    }

    const raw = ds.configs[query.config ?? '']?.[query.split ?? ''];
    if (!raw) return send(404, { error: 'Not found.' });
    const { rows, truncated = [] } = splitOf(raw);
    const offset = Number(query.offset ?? 0);
    const length = Number(query.length ?? 100);
    if (!Number.isInteger(offset) || offset < 0) return send(422, { error: 'Parameter "offset" must be a non-negative integer' });
    if (!Number.isInteger(length) || length < 0) return send(422, { error: 'Parameter "length" must be a non-negative integer' });
    if (length > 100) return send(422, { error: 'Parameter "length" must be at most 100' });
    const page = [];
    for (let i = offset; i < Math.min(rows.length, offset + length); i++) {
      page.push({ row_idx: i, row: rows[i], truncated_cells: truncated.includes(i) ? Object.keys(rows[i]!) : [] });
    }
    return send(200, { features: features(rows), rows: page, num_rows_total: rows.length, num_rows_per_page: 100, partial: false });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail(n, status = 500) {
      failing = n;
      failStatus = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
