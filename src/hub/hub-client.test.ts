import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModel } from '../model/weights.ts';
import { FsStore } from '../node/fs-store.ts';
import { modelFolder } from '../node/model-folder.ts';
import { sharedPath } from '../node/shared.ts';
import { fileKey, manifestKey } from '../storage/layout.ts';
import { listCachedModels, openStoredModel, readManifest } from '../storage/model-store.ts';
import type { ByteStore } from '../storage/store.ts';
import { downloadModel, HubError, type DownloadOptions, type DownloadProgress } from './hub-client.ts';
import { importLocalFiles } from './import-local.ts';
import { startTestHub, tinyModelFiles, type TestHub } from './test-server.ts';

const TOKEN = 'hf_TESTsecretTOKEN0123456789';
const A = randomBytes(2_500_000);
const B = randomBytes(700_000);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let hub: TestHub;
const stories = sharedPath('models/stories260K');

beforeAll(async () => {
  hub = await startTestHub([
    { id: 'test/tiny', files: tinyModelFiles() },
    { id: 'test/blobs', files: { 'config.json': '{"model_type":"llama"}', 'a.safetensors': A, 'b.safetensors': B, 'tokenizer.json': '{}', 'pytorch_model.bin': 'skip me' } },
    { id: 'test/gated', token: TOKEN, files: { 'config.json': '{}', 'model.safetensors': randomBytes(50_000) } },
    ...(stories ? [{ id: 'test/stories260K', dir: stories }] : []),
  ]);
});
afterAll(() => hub?.close());
beforeEach(() => {
  hub.clearFaults();
  hub.resetCounters();
});

const newStore = () => new FsStore(mkdtempSync(join(tmpdir(), 'qlora-hub-')));
const opts = (o: DownloadOptions = {}): DownloadOptions => ({ endpoint: hub.url, retryDelayMs: 5, estimate: null, persist: null, ...o });

async function storedSha(store: ByteStore, repo: string, file: string, rev = 'main'): Promise<string> {
  const b = await store.get(fileKey(repo, rev, file));
  return b ? sha(b) : 'absent';
}

describe('downloadModel', () => {
  it('downloads a model whose stored bytes equal the source, then loads it from the store; a second pull fetches nothing', async () => {
    const store = newStore();
    const events: DownloadProgress[] = [];
    const r = await downloadModel(store, 'test/tiny', opts({ onProgress: (p) => events.push(p), progressIntervalMs: 0 }));
    const src = tinyModelFiles();
    expect(r.manifest.complete).toBe(true);
    expect(r.manifest.files.map((f) => f.name).sort()).toEqual(Object.keys(src).sort());
    for (const [name, v] of Object.entries(src)) {
      expect(await storedSha(store, 'test/tiny', name)).toBe(sha(typeof v === 'string' ? Buffer.from(v) : v));
    }
    const last = events.at(-1)!;
    expect(last.total.bytes).toBe(last.total.size);
    expect(last.total.filesDone).toBe(4);
    expect(events.some((e) => e.file?.status === 'downloading')).toBe(true);
    const { config, weights } = await loadModel(await openStoredModel(store, 'test/tiny'));
    expect(config.numLayers).toBe(2);
    expect(weights.size).toBeGreaterThan(5);
    hub.resetCounters();
    const again = await downloadModel(store, 'test/tiny', opts());
    expect(again.fetched).toBe(0);
    expect(again.files.every((f) => f.status === 'cached')).toBe(true);
    expect(hub.requests.map((q) => q.url)).toEqual([expect.stringMatching(/^\/api\/models\/test\/tiny\/revision\/main\?blobs=true$/)]);
  });

  it.runIf(!!stories)('downloads stories260K byte for byte (LFS redirect, sha256 checked)', async () => {
    const store = newStore();
    const r = await downloadModel(store, 'test/stories260K', opts());
    for (const name of await modelFolder(stories!).list()) {
      expect(await storedSha(store, 'test/stories260K', name)).toBe(hub.file('test/stories260K', name).sha256);
    }
    expect(r.manifest.files.find((f) => f.name === 'model.safetensors')!.sha256).toBe(hub.file('test/stories260K', 'model.safetensors').sha256);
    expect(hub.requests.some((q) => q.status === 302)).toBe(true);
  });

  it('selects model files (no pytorch_model.bin) and fetches several files in parallel', async () => {
    let inFlight = 0;
    let most = 0;
    const slowFetch: typeof fetch = async (u, i) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 30));
        return await fetch(u, i);
      } finally {
        inFlight--;
      }
    };
    const store = newStore();
    const r = await downloadModel(store, 'test/blobs', opts({ fetch: slowFetch }));
    expect(r.manifest.files.map((f) => f.name).sort()).toEqual(['a.safetensors', 'b.safetensors', 'config.json', 'tokenizer.json']);
    expect(most).toBe(3);
  });

  it('resumes after a cut mid-shard in a later session, fetching only the missing bytes', async () => {
    const store = newStore();
    const K = 1_234_567;
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', cutAfter: K });
    const err = await downloadModel(store, 'test/blobs', opts({ retries: 0 })).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.message).toMatch(/test\/blobs@main: a\.safetensors: network error.*closed after/);
    expect(err.message).toMatch(/download again to resume/);
    expect(await store.partialSize(fileKey('test/blobs', 'main', 'a.safetensors'))).toBe(K);
    expect((await readManifest(store, 'test/blobs', 'main'))!.complete).toBe(false);
    const cached = await listCachedModels(store);
    expect(cached[0]).toMatchObject({ repo: 'test/blobs', complete: false });
    expect(cached[0]!.partialBytes).toBeGreaterThanOrEqual(K);

    const r = await downloadModel(store, 'test/blobs', opts());
    expect(hub.sent('test/blobs', 'a.safetensors')).toBe(A.byteLength); // K + (size - K): no byte twice
    expect(hub.requests.filter((q) => q.file === 'a.safetensors' && q.range && q.status !== 302).map((q) => q.range)).toEqual([`bytes=${K}-`]);
    expect(r.files.find((f) => f.name === 'a.safetensors')).toMatchObject({ resumedFrom: K, fetched: A.byteLength - K, restarts: 0 });
    expect(await storedSha(store, 'test/blobs', 'a.safetensors')).toBe(sha(A)); // verified by re-reading after commit
    expect(r.manifest.complete).toBe(true);
  });

  it('retries a cut connection in the same session with Range and no byte twice', async () => {
    const store = newStore();
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', cutAfter: 300_000, times: 3 });
    const r = await downloadModel(store, 'test/blobs', opts());
    expect(hub.sent('test/blobs', 'a.safetensors')).toBe(A.byteLength);
    expect(r.files.find((f) => f.name === 'a.safetensors')!.requests).toBe(4);
    expect(await storedSha(store, 'test/blobs', 'a.safetensors')).toBe(sha(A));
  });

  it('restarts from 0 (and counts it) when the server answers 200 to a Range request', async () => {
    const store = newStore();
    const K = 1_000_000;
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', cutAfter: K });
    await downloadModel(store, 'test/blobs', opts({ retries: 0 })).catch(() => undefined);
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', ignoreRange: true });
    const r = await downloadModel(store, 'test/blobs', opts());
    expect(r.files.find((f) => f.name === 'a.safetensors')).toMatchObject({ restarts: 1, resumedFrom: K, fetched: A.byteLength });
    expect(r.restarts).toBe(1);
    expect(hub.sent('test/blobs', 'a.safetensors')).toBe(K + A.byteLength);
    expect(await storedSha(store, 'test/blobs', 'a.safetensors')).toBe(sha(A));
  });

  it('a file changed on the server restarts through If-Range even when the API gives no sizes or hashes', async () => {
    const hub2 = await startTestHub([{ id: 'x/changing', files: { 'config.json': '{}', 'model.safetensors': A } }]);
    try {
      // A Hub without blob details: only rfilename per sibling.
      const bare: typeof fetch = (u, i) => fetch(String(u).replace('?blobs=true', ''), i);
      const store = newStore();
      hub2.fault({ file: 'model.safetensors', cutAfter: 500_000 });
      await downloadModel(store, 'x/changing', opts({ endpoint: hub2.url, fetch: bare, retries: 0 })).catch(() => undefined);
      const m = await readManifest(store, 'x/changing', 'main');
      expect(m!.files.find((f) => f.name === 'model.safetensors')!.etag).toBe(`"${sha(A)}"`);
      hub2.setFile('x/changing', 'model.safetensors', B);
      const r = await downloadModel(store, 'x/changing', opts({ endpoint: hub2.url, fetch: bare }));
      const resumeReq = hub2.requests.find((q) => q.file === 'model.safetensors' && q.range && q.status !== 302);
      expect(resumeReq).toMatchObject({ range: 'bytes=500000-', ifRange: `"${sha(A)}"`, status: 200 });
      expect(r.files.find((f) => f.name === 'model.safetensors')!.restarts).toBe(1);
      expect(await storedSha(store, 'x/changing', 'model.safetensors')).toBe(sha(B));
    } finally {
      await hub2.close();
    }
  });

  it('without If-Range (the browser default), a changed ETag on the 206 restarts the file', async () => {
    const hub2 = await startTestHub([{ id: 'x/changing', files: { 'config.json': '{}', 'model.safetensors': A } }]);
    try {
      const bare: typeof fetch = (u, i) => fetch(String(u).replace('?blobs=true', ''), i);
      const store = newStore();
      hub2.fault({ file: 'model.safetensors', cutAfter: 500_000 });
      await downloadModel(store, 'x/changing', opts({ endpoint: hub2.url, fetch: bare, retries: 0, ifRange: false })).catch(() => undefined);
      hub2.setFile('x/changing', 'model.safetensors', B);
      const r = await downloadModel(store, 'x/changing', opts({ endpoint: hub2.url, fetch: bare, ifRange: false }));
      const gets = hub2.requests.filter((q) => q.file === 'model.safetensors' && q.status !== 302);
      expect(gets.map((q) => [q.range, q.ifRange, q.status])).toEqual([[undefined, undefined, 200], ['bytes=500000-', undefined, 206], [undefined, undefined, 200]]);
      expect(r.files.find((f) => f.name === 'model.safetensors')!.restarts).toBe(1);
      expect(await storedSha(store, 'x/changing', 'model.safetensors')).toBe(sha(B));
    } finally {
      await hub2.close();
    }
  });

  it('explains 404, 401, 429 and 500 naming the repo, file and status', async () => {
    const store = newStore();
    const fail = (repo: string, o: DownloadOptions = {}) => downloadModel(store, repo, opts(o)).then(() => null, (e: HubError) => e);
    expect((await fail('test/nope'))!.message).toMatch(/test\/nope@main: repo info: HTTP 404 \(not found\): no repo test\/nope at 127\.0\.0\.1/);
    expect((await fail('test/tiny', { revision: 'v9' }))!.message).toMatch(/HTTP 404 \(not found\): test\/tiny has no revision "v9"/);
    hub.fault({ repo: 'test/blobs', file: 'b.safetensors', status: 404 });
    const e404 = (await fail('test/blobs'))!;
    expect(e404.message).toMatch(/test\/blobs@main: b\.safetensors: HTTP 404 \(not found\)/);
    expect(e404).toMatchObject({ status: 404, file: 'b.safetensors', code: 'not-found' });
    expect((await fail('test/gated'))!.message).toMatch(/repo info: HTTP 401 \(unauthorized\): test\/gated is gated or private.*needs an access token/);
    hub.fault({ repo: 'test/blobs', file: 'config.json', status: 429, retryAfter: 0, times: Infinity });
    const e429 = (await fail('test/blobs', { retries: 2 }))!;
    expect(e429.message).toMatch(/config\.json: HTTP 429 \(too many requests\): rate limited by 127\.0\.0\.1:\d+.*gave up after 3 requests/);
    hub.clearFaults();
    hub.fault({ repo: 'test/blobs', file: 'api', status: 500, times: Infinity });
    expect((await fail('test/blobs', { retries: 1 }))!.message).toMatch(/repo info: HTTP 500 \(server error\).*try again later \(after 2 attempts\)/);
    hub.clearFaults();
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', status: 503 }); // once: retried, then fine
    hub.fault({ repo: 'test/blobs', file: 'api', status: 502 });
    expect(await fail('test/blobs')).toBeNull();
  });

  it('detects a Content-Length larger than the body', async () => {
    // The server always lies and its listing agrees with the lie (a truncated file on the CDN).
    let store = newStore();
    hub.setListedSize('test/blobs', 'b.safetensors', B.byteLength + 1000);
    hub.fault({ repo: 'test/blobs', file: 'b.safetensors', extraLength: 1000, times: Infinity });
    try {
      const err = await downloadModel(store, 'test/blobs', opts()).catch((e) => e);
      expect(err.message).toMatch(/b\.safetensors: the server has 700000 bytes but the Hub lists 701000; the connection closed after 700000 of 701000 bytes/);
      expect(await store.has(fileKey('test/blobs', 'main', 'b.safetensors'))).toBe(false);
    } finally {
      hub.setListedSize('test/blobs', 'b.safetensors', B.byteLength);
      hub.clearFaults();
    }
    // Once, with a truthful listing: the short body is noticed (a retry), and the sha256 matches.
    store = newStore();
    hub.resetCounters();
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', extraLength: 5 });
    const events: string[] = [];
    const r = await downloadModel(store, 'test/blobs', opts({ onProgress: (p) => p.file?.status === 'retrying' && events.push(p.file.name) }));
    expect(events).toContain('a.safetensors');
    // Every listed byte had come: the size and sha256 confirm the file without another request.
    expect(r.files.find((f) => f.name === 'a.safetensors')!.requests).toBe(1);
    expect(hub.sent('test/blobs', 'a.safetensors')).toBe(A.byteLength);
    expect(await storedSha(store, 'test/blobs', 'a.safetensors')).toBe(sha(A));
  });

  it('drops a download whose sha256 differs from the Hub listing', async () => {
    const wrongSha: typeof fetch = async (u, i) => {
      const res = await fetch(u, i);
      if (!String(u).includes('/api/')) return res;
      const j = await res.json();
      for (const s of j.siblings) if (s.lfs) s.lfs.sha256 = '0'.repeat(64);
      return new Response(JSON.stringify(j), { status: 200, headers: { 'Content-Type': 'application/json' } });
    };
    const store = newStore();
    const err = await downloadModel(store, 'test/blobs', opts({ fetch: wrongSha, select: (fs) => fs.filter((f) => f.name === 'b.safetensors') })).catch((e) => e);
    expect(err.message).toMatch(/b\.safetensors: sha256 mismatch \(expected 0{64}, got [0-9a-f]{64}\)/);
    expect(hub.sent('test/blobs', 'b.safetensors')).toBe(2 * B.byteLength); // one restart, then it gives up
    expect(await store.has(fileKey('test/blobs', 'main', 'b.safetensors'))).toBe(false);
  });

  it('sends a token only as a Bearer header and never shows it in errors or progress', async () => {
    const store = newStore();
    const texts: string[] = [];
    const seen = (e: unknown) => texts.push(String(e), (e as Error).message, (e as Error).stack ?? '', JSON.stringify(e));
    const events: DownloadProgress[] = [];
    const o = opts({ token: TOKEN, onProgress: (p) => events.push(p), retries: 0 });
    const ok = await downloadModel(store, 'test/gated', o);
    expect(ok.manifest.complete).toBe(true);
    await downloadModel(store, 'test/gated', { ...o, token: TOKEN + 'x' }).catch(seen); // refused token
    expect(texts[1]).toMatch(/HTTP 401 \(unauthorized\): the access token was refused/);
    await downloadModel(store, 'test/nope', o).catch(seen);
    hub.fault({ file: 'model.safetensors', status: 500, times: Infinity });
    await downloadModel(newStore(), 'test/gated', o).catch(seen);
    hub.clearFaults();
    hub.fault({ file: 'model.safetensors', cutAfter: 10_000 });
    await downloadModel(newStore(), 'test/gated', o).catch(seen);
    await downloadModel(newStore(), 'test/gated', { ...o, endpoint: 'http://127.0.0.1:1' }).catch(seen); // connection refused
    expect(texts.length).toBe(20);
    for (const t of [...texts, JSON.stringify(events)]) expect(t).not.toContain(TOKEN.slice(3));
    expect(hub.requests.every((q) => !q.url.includes(TOKEN.slice(3)))).toBe(true);
    expect(hub.requests.filter((q) => !q.url.startsWith('/cdn/')).every((q) => q.auth)).toBe(true);
    expect(JSON.stringify(await readManifest(store, 'test/gated', 'main'))).not.toContain(TOKEN.slice(3));
  });

  it('fails early with the numbers when the quota is too small, leaving cached models intact', async () => {
    const store = newStore();
    await downloadModel(store, 'test/tiny', opts());
    const before = await store.list();
    const err = await downloadModel(store, 'test/blobs', opts({ estimate: async () => ({ quota: 2_000_000, usage: 1_000_000 }) })).catch((e) => e);
    expect(err).toMatchObject({ code: 'quota' });
    expect(err.message).toMatch(/not enough storage for test\/blobs@main: it needs 3\.1 MiB \(3200\d+ bytes\) more but only 976\.6 KiB \(1000000 bytes\) is free .*quota 1\.9 MiB, in use 976\.6 KiB.*cached models are untouched/);
    expect(await store.list()).toEqual(before);
    expect(await store.has(manifestKey('test/blobs', 'main'))).toBe(false);
    const { config } = await loadModel(await openStoredModel(store, 'test/tiny'));
    expect(config.hiddenSize).toBe(32);
    // Enough room: fine, and persistent storage is asked for.
    let asked = false;
    const r = await downloadModel(store, 'test/blobs', opts({ estimate: async () => ({ quota: 1e9, usage: 0 }), persist: async () => (asked = true) }));
    expect(asked && r.persisted).toBe(true);
  });

  it('cancels through an AbortSignal, keeping the bytes for a resume', async () => {
    const store = newStore();
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', stallAfter: 600_000 });
    const ac = new AbortController();
    const p = downloadModel(store, 'test/blobs', opts({ signal: ac.signal, progressIntervalMs: 0, onProgress: (e) => e.file?.name === 'a.safetensors' && e.file.bytes >= 600_000 && ac.abort() }));
    const err = await p.catch((e) => e);
    expect(err).toMatchObject({ code: 'aborted' });
    expect(await store.partialSize(fileKey('test/blobs', 'main', 'a.safetensors'))).toBe(600_000);
    await downloadModel(store, 'test/blobs', opts());
    expect(hub.sent('test/blobs', 'a.safetensors')).toBe(A.byteLength);
    expect(await storedSha(store, 'test/blobs', 'a.safetensors')).toBe(sha(A));
  });

  it('drops and retries a stalled connection', async () => {
    const store = newStore();
    hub.fault({ repo: 'test/blobs', file: 'a.safetensors', stallAfter: 400_000 });
    const r = await downloadModel(store, 'test/blobs', opts({ stallTimeoutMs: 300 }));
    expect(r.files.find((f) => f.name === 'a.safetensors')!.requests).toBe(2);
    expect(hub.sent('test/blobs', 'a.safetensors')).toBe(A.byteLength);
    expect(await storedSha(store, 'test/blobs', 'a.safetensors')).toBe(sha(A));
  });
});

describe('importLocalFiles', () => {
  it.runIf(!!stories)('stores a local folder with the same manifest (sha256 computed)', async () => {
    const store = newStore();
    const m = await importLocalFiles(store, modelFolder(stories!), { repo: 'local/stories260K' });
    expect(m).toMatchObject({ source: 'local', revision: 'local', complete: true });
    const f = m.files.find((x) => x.name === 'model.safetensors')!;
    expect(f.sha256).toBe(hub.file('test/stories260K', 'model.safetensors').sha256);
    const { config } = await loadModel(await openStoredModel(store, 'local/stories260K', 'local'));
    expect(config.hiddenSize).toBe(64);
  });

  it('stores File objects', async () => {
    const store = newStore();
    const files = Object.entries(tinyModelFiles(3)).map(([n, v]) => new File([v as BlobPart], n));
    const m = await importLocalFiles(store, files, { repo: 'local/tiny', revision: 'v1' });
    expect(m.files).toHaveLength(4);
    expect((await loadModel(await openStoredModel(store, 'local/tiny', 'v1'))).weights.size).toBeGreaterThan(5);
  });
});
