// Downloads into real IndexedDB in headless Chromium, from the local test Hub (src/hub/test-server.ts,
// cross-origin with CORS): a connection cut mid-shard, a page reload, a resume with Range; and a
// reload in the middle of a stream, resumed inside a Web Worker. The stored bytes' sha256 must equal
// the source's, and the server's byte counters show what was sent again.

import { createHash } from 'node:crypto';
import { expect, test, type Page } from '@playwright/test';
import { startTestHub, type TestHub } from '../src/hub/test-server.ts';
import { sharedPath } from '../src/node/shared.ts';

const CHUNK = 64 * 1024; // the page's IdbStore chunk size (e2e/pages/download-shared.ts)
const BIG = new Uint8Array(1_500_000).map((_, i) => (i * 13 + (i >> 10)) & 255);
const stories = sharedPath('models/stories260K');
const TOKEN = 'hf_e2eSecretToken_0123456789';
let hub: TestHub;

test.beforeAll(async () => {
  hub = await startTestHub([
    { id: 'test/e2e-big', files: { 'config.json': '{"model_type":"llama"}', 'model.safetensors': BIG } },
    { id: 'test/e2e-gated', token: TOKEN, files: { 'config.json': '{}', 'model.safetensors': BIG.subarray(0, 300_000) } },
    ...(stories ? [{ id: 'test/stories260K', dir: stories }] : []),
  ]);
});
test.afterAll(() => hub?.close());
test.beforeEach(() => {
  hub.clearFaults();
  hub.resetCounters();
});

/** Opens the test page on database `db`; the first visit lets Vite finish optimizing dependencies. */
async function openPage(page: Page, db: string): Promise<void> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/e2e/pages/download.html?db=${db}`);
  await expect(page.locator('body')).toHaveAttribute('data-ready', '1', { timeout: 60_000 });
  expect(await page.evaluate(() => window.e2e.pingWorker())).toEqual({ ok: true });
  await page.waitForLoadState('networkidle');
  await expect(page.locator('body')).toHaveAttribute('data-ready', '1');
  expect(errors).toEqual([]);
}

const dataRequests = (file: string) => hub.requests.filter((q) => q.file === file && q.method === 'GET' && q.status !== 302);

test('a cut mid-shard, a page reload, then a resume with Range stores the exact bytes', async ({ page }) => {
  test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent');
  const db = `e2e-cut-${Date.now()}`;
  const file = 'model.safetensors';
  const size = hub.file('test/stories260K', file).bytes.byteLength;
  const K = 400_000;
  await openPage(page, db);
  hub.fault({ repo: 'test/stories260K', file, cutAfter: K });
  const first = await page.evaluate((url) => window.e2e.download(url, 'test/stories260K', { retries: 0 }), hub.url);
  expect(first).toMatchObject({ ok: false, code: 'network' });
  expect(first.ok || first.message).toMatch(/test\/stories260K@main: model\.safetensors: network error .*download again to resume/);
  const partial = await page.evaluate((f) => window.e2e.partialSize('test/stories260K', f), file);
  expect(partial).toBeGreaterThan(0);
  expect(partial).toBeLessThanOrEqual(K);

  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-ready', '1');
  expect(await page.evaluate((f) => window.e2e.partialSize('test/stories260K', f), file)).toBe(partial);
  const second = await page.evaluate((url) => window.e2e.download(url, 'test/stories260K'), hub.url);
  expect(second).toMatchObject({ ok: true, restarts: 0 });
  expect(dataRequests(file).map((q) => q.range).filter(Boolean)).toEqual([`bytes=${partial}-`]);
  const resent = hub.sent('test/stories260K', file) - size;
  console.log(`cut at ${K} bytes: ${partial} stored before the reload, ${resent} bytes sent twice`);
  expect(resent).toBe(K - partial);
  expect(resent).toBe(0); // every byte received before the cut was kept
  expect(hub.requests.filter((q) => q.method === 'OPTIONS')).toEqual([]); // Range alone needs no CORS preflight
  for (const name of ['config.json', 'tokenizer.json', file]) {
    const got = await page.evaluate((n) => window.e2e.storedSha('test/stories260K', n), name);
    expect(got, name).toEqual({ sha256: hub.file('test/stories260K', name).sha256, size: hub.file('test/stories260K', name).bytes.byteLength });
  }
  const models = await page.evaluate(() => window.e2e.list());
  expect(models).toMatchObject([{ repo: 'test/stories260K', complete: true, partialBytes: 0 }]);
});

test('a reload in the middle of a stream resumes inside a Web Worker; re-sent bytes are under one chunk', async ({ page }) => {
  const db = `e2e-reload-${Date.now()}`;
  const file = 'model.safetensors';
  const K = 700_000;
  await openPage(page, db);
  hub.fault({ repo: 'test/e2e-big', file, stallAfter: K });
  await page.evaluate((url) => window.e2e.start(url, 'test/e2e-big'), hub.url);
  await expect.poll(() => hub.sent('test/e2e-big', file), { timeout: 30_000 }).toBe(K);
  await page.waitForTimeout(500); // the page stores whole chunks as they fill
  await page.reload(); // the download dies mid-stream: nothing is flushed

  await expect(page.locator('body')).toHaveAttribute('data-ready', '1');
  const partial = await page.evaluate((f) => window.e2e.partialSize('test/e2e-big', f), file);
  expect(partial % CHUNK).toBe(0);
  expect(partial).toBe(Math.floor(K / CHUNK) * CHUNK);
  const r = await page.evaluate((url) => window.e2e.downloadInWorker(url, 'test/e2e-big'), hub.url);
  expect(r).toMatchObject({ ok: true, restarts: 0 });
  expect(dataRequests(file).map((q) => q.range).filter(Boolean)).toEqual([`bytes=${partial}-`]);
  const resent = hub.sent('test/e2e-big', file) - BIG.byteLength;
  console.log(`stalled at ${K} bytes, reloaded: ${partial} kept, ${resent} bytes sent twice`);
  expect(resent).toBe(K - partial);
  expect(resent).toBeLessThan(CHUNK);
  const sha = createHash('sha256').update(BIG).digest('hex');
  expect(await page.evaluate((f) => window.e2e.shaInWorker('test/e2e-big', f), file)).toEqual({ sha256: sha, size: BIG.byteLength });
});

test('a gated repo downloads with a token through a CORS preflight; errors never show the token', async ({ page }) => {
  await openPage(page, `e2e-gated-${Date.now()}`);
  const denied = await page.evaluate((url) => window.e2e.download(url, 'test/e2e-gated'), hub.url);
  expect(denied).toMatchObject({ ok: false, code: 'auth' });
  const refused = await page.evaluate(([url, t]) => window.e2e.download(url, 'test/e2e-gated', { token: t + 'x' }), [hub.url, TOKEN]);
  expect(refused.ok || refused.message).toMatch(/HTTP 401 \(unauthorized\): the access token was refused/);
  expect(JSON.stringify(refused)).not.toContain(TOKEN);
  const ok = await page.evaluate(([url, t]) => window.e2e.download(url, 'test/e2e-gated', { token: t }), [hub.url, TOKEN]);
  expect(ok).toMatchObject({ ok: true });
  expect(hub.requests.some((q) => q.method === 'OPTIONS')).toBe(true);
  expect(hub.requests.every((q) => !q.url.includes(TOKEN))).toBe(true);
  const sha = createHash('sha256').update(BIG.subarray(0, 300_000)).digest('hex');
  expect(await page.evaluate(() => window.e2e.storedSha('test/e2e-gated', 'model.safetensors'))).toEqual({ sha256: sha, size: 300_000 });
});

test('IdbStore: chunked reads, atomic commit, abort, resume in a new store object, delete drops every record', async ({ page }) => {
  const db = `e2e-store-${Date.now()}`;
  await openPage(page, db);
  const r = await page.evaluate(async (dbName) => {
    const S = window.e2e.IdbStore;
    const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255);
    const eq = (a: Uint8Array | undefined, b: Uint8Array) => !!a && a.length === b.length && a.every((x, i) => x === b[i]);
    /** Raw records of the database whose key starts with `prefix`. */
    const raw = (prefix: string) =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open(dbName);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const c = open.result.transaction('bytes').objectStore('bytes').count(IDBKeyRange.bound(prefix, prefix + '\uffff'));
          c.onsuccess = () => {
            open.result.close();
            resolve(c.result);
          };
        };
      });
    const s = new S({ dbName, chunkSize: 1000 });
    const out: Record<string, unknown> = {};
    const v1 = bytes(3500, 1);
    await s.put('a/v', v1);
    out.get = eq(await s.get('a/v'), v1);
    out.read = eq(await s.read('a/v', 900, 1200), v1.subarray(900, 2100));
    out.readOutside = await s.read('a/v', 3000, 600).then(() => 'no error', (e: Error) => e.message);
    out.chunks1 = await raw('c:a/v#');
    const w = await s.writer('a/v');
    await w.append(bytes(2500, 2));
    await w.flush!();
    out.oldVisible = eq(await s.get('a/v'), v1);
    out.listed = (await s.list('a/')).map((e) => `${e.key}:${e.size}`);
    await w.commit();
    out.newValue = eq(await s.get('a/v'), bytes(2500, 2));
    out.chunks2 = await raw('c:a/v#'); // the old generation's 4 chunks are gone
    const w2 = await s.writer('a/v');
    await w2.append(bytes(1700, 3));
    await w2.flush!();
    await w2.abort();
    out.afterAbort = [eq(await s.get('a/v'), bytes(2500, 2)), await s.partialSize('a/v'), await raw('c:a/v#'), await raw('p:')];
    const full = bytes(4321, 4);
    const w3 = await s.writer('b');
    await w3.append(full.subarray(0, 1500));
    await w3.flush!();
    const again = new S({ dbName, chunkSize: 999 }); // a reload: a new object (its chunk size is not used for the resume)
    out.partial = await again.partialSize('b');
    const w4 = await again.writer('b', { resume: true });
    out.resumedAt = w4.written;
    await w4.append(full.subarray(1500, 3100));
    await w4.append(full.subarray(3100));
    await w4.commit();
    out.resumed = eq(await again.get('b'), full);
    out.readResumed = eq(await again.read('b', 1990, 30), full.subarray(1990, 2020));
    await again.delete('b');
    await again.delete('a/v');
    out.afterDelete = [await again.has('b'), await raw('c:'), await raw('p:'), await raw('m:')];
    out.badKey = await again.put('../x', bytes(1, 1)).then(() => 'no error', (e: Error) => e.message);
    return out;
  }, db);
  expect(r).toEqual({
    get: true,
    read: true,
    readOutside: expect.stringMatching(/read of 600 bytes at 3000 is outside "a\/v" \(3500 bytes\)/),
    chunks1: 4,
    oldVisible: true,
    listed: ['a/v:3500'],
    newValue: true,
    chunks2: 3,
    afterAbort: [true, 0, 3, 0],
    partial: 1500,
    resumedAt: 1500,
    resumed: true,
    readResumed: true,
    afterDelete: [false, 0, 0, 0],
    badKey: expect.stringMatching(/invalid store key "..\/x"/),
  });
});
