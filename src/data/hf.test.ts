// The datasets-server reader against a local HTTP server (127.0.0.1, src/data/test-datasets-server.ts,
// started here) that answers with the API's JSON shapes: /splits, paged /rows, truncated cells, a 404
// for an unknown dataset, a retried 500, and the token header. Never touches the internet.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SkipLog } from './errors.ts';
import { hfSplits, looksLikeHfDatasetId, readHfRows, resolveHfSplit } from './hf.ts';
import { startTestDatasetsServer, type TestDatasetsServer } from './test-datasets-server.ts';

const DATASET = 'timdettmers/openassistant-guanaco';
const TOTAL = 250;
let server: TestDatasetsServer;
let endpoint: string;

const guanaco = (n: number) => Array.from({ length: n }, (_, i) => ({ text: `### Human: q${i}### Assistant: a${i}` }));
const rowsRequests = () => server.requests.filter((r) => r.path === '/rows').map((r) => r.query);

beforeAll(async () => {
  server = await startTestDatasetsServer([
    { id: DATASET, configs: { default: { train: { rows: guanaco(TOTAL), truncated: [7] }, test: guanaco(3) } } },
    { id: 'someone/gated', token: 'hf_gate', configs: { default: { train: guanaco(2) } } },
  ]);
  endpoint = `${server.url}/`;
});

afterAll(() => server.close());

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
    server.requests.length = 0;
    const skips = new SkipLog();
    const rows = [];
    for await (const r of readHfRows(DATASET, { endpoint, token: 'hf_secret', skips })) rows.push(r);
    expect(rows.length).toBe(TOTAL - 1);
    expect(rows[0]!.value).toEqual({ text: '### Human: q0### Assistant: a0' });
    expect(rows[0]!.where).toBe(`${DATASET} (default/train) row 0`);
    expect(rows[rows.length - 1]!.value).toEqual({ text: '### Human: q249### Assistant: a249' });
    expect(rowsRequests().map((q) => [q.offset, q.length, q.config, q.split])).toEqual([
      ['0', '100', 'default', 'train'], ['100', '100', 'default', 'train'], ['200', '50', 'default', 'train'],
    ]);
    expect(server.requests.map((r) => r.auth)).toEqual(server.requests.map(() => 'Bearer hf_secret'));
    expect(server.requests.some((r) => r.url.includes('hf_secret'))).toBe(false);
    expect(skips.summary().byReason).toEqual({ 'truncated by the server': 1 });
    expect(skips.samples[0]!.where).toBe(`${DATASET} (default/train) row 7`);
  });

  it('honours pageSize, maxRows and an explicit split', async () => {
    server.requests.length = 0;
    const got = [];
    for await (const r of readHfRows(DATASET, { endpoint, pageSize: 30, maxRows: 70 })) got.push(r);
    expect(rowsRequests().map((q) => [q.offset, q.length])).toEqual([['0', '30'], ['30', '30'], ['60', '10']]);
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
    server.fail(1);
    expect((await hfSplits(DATASET, { endpoint, retryDelayMs: 1 })).length).toBe(2);
    server.fail(5);
    await expect(hfSplits(DATASET, { endpoint, retries: 1, retryDelayMs: 1 })).rejects.toThrow(/HTTP 500 .*temporary/);
    server.fail(0);
  });

  it('a gated dataset needs the token; the server answers CORS preflights for the Authorization header', async () => {
    await expect(hfSplits('someone/gated', { endpoint })).rejects.toThrow(/HTTP 401 .*pass a Hugging Face token/);
    const rows = [];
    for await (const r of readHfRows('someone/gated', { endpoint, token: 'hf_gate' })) rows.push(r.value);
    expect(rows).toEqual(guanaco(2));
    const pre = await fetch(`${server.url}/rows`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
  });

  it('tells dataset ids from file names', () => {
    expect(looksLikeHfDatasetId('timdettmers/openassistant-guanaco')).toBe(true);
    expect(looksLikeHfDatasetId('squad')).toBe(true);
    expect(looksLikeHfDatasetId('data/train.jsonl')).toBe(false);
    expect(looksLikeHfDatasetId('./x')).toBe(false);
  });
});
