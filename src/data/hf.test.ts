// The datasets-server reader against a local HTTP server (127.0.0.1, started here) that answers with
// the API's JSON shapes: /splits, paged /rows, truncated cells, a 404 for an unknown dataset, a retried
// 500, and the token header. Never touches the internet.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkipLog } from './errors.ts';
import { hfSplits, looksLikeHfDatasetId, readHfRows, resolveHfSplit } from './hf.ts';

const DATASET = 'timdettmers/openassistant-guanaco';
const TOTAL = 250;
const rowsRequests: Array<Record<string, string>> = [];
let auth: string | undefined;
let failNext = 0;
let server: Server;
let endpoint: string;

function send(res: import('node:http').ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const q = Object.fromEntries(url.searchParams);
    auth = req.headers.authorization;
    if (failNext > 0) {
      failNext--;
      return send(res, 500, { error: 'temporary' });
    }
    if (q.dataset !== DATASET) {
      return send(res, 404, { error: 'The dataset does not exist, or is not accessible without authentication (private or gated). Please check the spelling of the dataset name or retry with authentication.' });
    }
    if (url.pathname === '/splits') {
      return send(res, 200, {
        splits: [{ dataset: DATASET, config: 'default', split: 'train' }, { dataset: DATASET, config: 'default', split: 'test' }],
        pending: [], failed: [],
      });
    }
    if (url.pathname === '/rows') {
      rowsRequests.push(q);
      const offset = Number(q.offset);
      const length = Number(q.length);
      if (length > 100) return send(res, 422, { error: 'length must be at most 100' });
      const n = q.split === 'test' ? 3 : TOTAL;
      const rows = [];
      for (let i = offset; i < Math.min(n, offset + length); i++) {
        rows.push({ row_idx: i, row: { text: `### Human: q${i}### Assistant: a${i}` }, truncated_cells: i === 7 ? ['text'] : [] });
      }
      return send(res, 200, {
        features: [{ feature_idx: 0, name: 'text', type: { dtype: 'string', _type: 'Value' } }],
        rows, num_rows_total: n, num_rows_per_page: 100, partial: false,
      });
    }
    send(res, 404, { error: 'Not Found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('datasets-server reader', () => {
  it('lists splits and picks default/train unless told otherwise', async () => {
    expect(await hfSplits(DATASET, { endpoint })).toEqual([
      { dataset: DATASET, config: 'default', split: 'train' }, { dataset: DATASET, config: 'default', split: 'test' },
    ]);
    expect(await resolveHfSplit(DATASET, { endpoint })).toEqual({ dataset: DATASET, config: 'default', split: 'train' });
    await expect(resolveHfSplit(DATASET, { endpoint, split: 'validation' })).rejects.toThrow(
      `dataset ${DATASET}: config "default" has no split "validation" (expected one of train, test)`,
    );
  });

  it('pages through all rows (≤ 100 per request), skipping rows with truncated cells', async () => {
    rowsRequests.length = 0;
    const skips = new SkipLog();
    const rows = [];
    for await (const r of readHfRows(DATASET, { endpoint, token: 'hf_secret', skips })) rows.push(r);
    expect(rows.length).toBe(TOTAL - 1);
    expect(rows[0]!.value).toEqual({ text: '### Human: q0### Assistant: a0' });
    expect(rows[0]!.where).toBe(`${DATASET} (default/train) row 0`);
    expect(rows[rows.length - 1]!.value).toEqual({ text: '### Human: q249### Assistant: a249' });
    expect(rowsRequests.map((q) => [q.offset, q.length, q.config, q.split])).toEqual([
      ['0', '100', 'default', 'train'], ['100', '100', 'default', 'train'], ['200', '50', 'default', 'train'],
    ]);
    expect(auth).toBe('Bearer hf_secret');
    expect(skips.summary().byReason).toEqual({ 'truncated by the server': 1 });
    expect(skips.samples[0]!.where).toBe(`${DATASET} (default/train) row 7`);
  });

  it('honours pageSize, maxRows and an explicit split', async () => {
    rowsRequests.length = 0;
    const got = [];
    for await (const r of readHfRows(DATASET, { endpoint, pageSize: 30, maxRows: 70 })) got.push(r);
    expect(rowsRequests.map((q) => [q.offset, q.length])).toEqual([['0', '30'], ['30', '30'], ['60', '10']]);
    expect(got.length).toBe(69); // row 7 truncated
    const test = [];
    for await (const r of readHfRows(DATASET, { endpoint, config: 'default', split: 'test' })) test.push(r);
    expect(test.length).toBe(3);
  });

  it('a missing dataset is an error with the status, URL and the server message', async () => {
    const run = async () => {
      for await (const _ of readHfRows('nobody/nothing', { endpoint })) void _;
    };
    await expect(run()).rejects.toThrow(
      /^dataset nobody\/nothing: HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/splits\?dataset=nobody%2Fnothing: The dataset does not exist, or is not accessible without authentication.*\(check the dataset id; a gated or private dataset needs a token\)$/,
    );
  });

  it('retries a 5xx answer', async () => {
    failNext = 1;
    expect((await hfSplits(DATASET, { endpoint, retryDelayMs: 1 })).length).toBe(2);
    failNext = 5;
    await expect(hfSplits(DATASET, { endpoint, retries: 1, retryDelayMs: 1 })).rejects.toThrow(/HTTP 500 .*temporary/);
    failNext = 0;
  });

  it('tells dataset ids from file names', () => {
    expect(looksLikeHfDatasetId('timdettmers/openassistant-guanaco')).toBe(true);
    expect(looksLikeHfDatasetId('squad')).toBe(true);
    expect(looksLikeHfDatasetId('data/train.jsonl')).toBe(false);
    expect(looksLikeHfDatasetId('./x')).toBe(false);
  });
});
