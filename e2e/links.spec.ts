// Demo links in the browser, beyond the round trip in playground.spec.ts (headless Chromium,
// SwiftShader, each link opened in a fresh context with empty storage):
// (a) oversized links — a payload past the size cap, an embedded adapter that declares more than
//     the inflated-size cap, and one that inflates past what it declares (a deflate bomb) — show a
//     clear error and load nothing: no request for the model, no adapter;
// (b) a link naming a published adapter by URL (a folder on a local server; http://localhost is
//     accepted because the studio itself runs on localhost) opens straight into the playground
//     with a banner saying what is loaded and from where, fetches exactly adapter_config.json and
//     adapter_model.safetensors from that folder, and the fine-tuned output equals that of the
//     same adapter embedded in a link (same prompt, seed, greedy).
// The adapter is made here in Node (random rank-2 LoRA on q/v of stories260K), so no training runs.

import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { deflateSync } from 'fflate';
import { startTestHub, type TestHub } from '../src/hub/test-server.ts';
import { sharedPath } from '../src/node/shared.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { parsePeftLoraName, peftLoraShape } from '../src/model/names.ts';
import { randomLoraTensors } from '../src/model/tiny-model.ts';
import { makeLoraConfig } from '../src/train/lora-config.ts';
import { adapterConfigJson, writeAdapter } from '../src/train/peft.ts';
import { base64UrlEncode, crc32, encodeDemoLink, MAX_INFLATED_BYTES, MAX_PAYLOAD_CHARS, type DemoLink } from '../src/share/link.ts';
import { pointAtHub } from './studio-helpers.ts';

const stories = sharedPath('models/stories260K');
const SHOTS = 'test-results';
const REPO = 'test/stories260K';
const ORIGIN = 'http://localhost:5173/';

type Studio = { __studio: { getState(): { load: { status: string }; linkedAdapter: boolean } } };

/** A rank-2 LoRA on q_proj and v_proj of stories260K with random A and B, as PEFT writes it. */
function makeAdapter(dir: string): { config: string; weights: Uint8Array } {
  const model = parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const targets = ['q_proj', 'v_proj'] as const;
  const tensors = randomLoraTensors(model, 2, targets, { seed: 11, std: 0.3 });
  const weights = writeAdapter(
    new Map(
      [...tensors].map(([name, data]) => {
        const p = parsePeftLoraName(name)!;
        return [name, { shape: peftLoraShape(model, p.target, p.which, 2), data }];
      }),
    ),
  );
  const config = adapterConfigJson(makeLoraConfig({ r: 2, alpha: 4, dropout: 0, targetModules: [...targets] }), REPO);
  return { config, weights };
}

/** A static folder server (CORS, no redirects) that logs every request path. */
async function serveFolder(files: Record<string, string | Uint8Array>): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    const body = files[path];
    const headers = { 'Access-Control-Allow-Origin': '*' };
    if (body === undefined) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A link container built by hand (what a hostile or broken encoder could produce). */
function rawLink(json: unknown, attachment: Uint8Array, declared?: number): string {
  const j = new TextEncoder().encode(JSON.stringify(json));
  const body = new Uint8Array(4 + j.byteLength + attachment.byteLength);
  new DataView(body.buffer).setUint32(0, j.byteLength);
  body.set(j, 4);
  body.set(attachment, 4 + j.byteLength);
  const deflated = deflateSync(body, { level: 9 });
  const bin = new Uint8Array(9 + deflated.byteLength);
  const dv = new DataView(bin.buffer);
  bin[0] = 1;
  dv.setUint32(5, declared ?? body.byteLength);
  bin.set(deflated, 9);
  dv.setUint32(1, crc32(bin.subarray(5)));
  return `${ORIGIN}#demo=${base64UrlEncode(bin)}`;
}

/** Opens `url` in a fresh context (empty storage) pointed at the test Hub. */
async function openFresh(browser: Browser, url: string, hub: TestHub) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await pointAtHub(page, hub.url);
  await page.goto(url);
  return { context, page, errors };
}

async function generate(page: Page): Promise<{ base: string; tuned: string }> {
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('output-base-text')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  await expect(page.getByTestId('output-tuned-text')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  return {
    base: (await page.getByTestId('output-base-text').textContent()) ?? '',
    tuned: (await page.getByTestId('output-tuned-text').textContent()) ?? '',
  };
}

test.describe('demo links in the browser', () => {
  let hub: TestHub;
  let folder: Awaited<ReturnType<typeof serveFolder>>;
  let adapter: { config: string; weights: Uint8Array };
  const modelRequests = () => hub.requests.filter((r) => r.url.includes('stories260K')).length;

  test.beforeAll(async () => {
    if (!stories) return;
    hub = await startTestHub([{ id: REPO, dir: stories }]);
    adapter = makeAdapter(stories);
    folder = await serveFolder({ '/adapters/plants/adapter_config.json': adapter.config, '/adapters/plants/adapter_model.safetensors': adapter.weights });
  });
  test.afterAll(async () => {
    await hub?.close();
    await folder?.close();
  });

  test('an oversized link (too long, or an adapter inflating past the cap) shows a clear error and loads nothing', async ({ browser }) => {
    test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent');
    const json = (size: number) => ({ v: 1, model: { repo: REPO }, adapter: { kind: 'embedded', config: adapter.config, size, shuffle: 1 } });
    const big = MAX_INFLATED_BYTES + 1024 * 1024; // 5 MiB of zeros: deflates to a few KB
    const cases: Array<{ name: string; url: string; says: RegExp }> = [
      {
        name: 'too-long',
        url: `${ORIGIN}#demo=${'A'.repeat(MAX_PAYLOAD_CHARS + 8)}`,
        says: new RegExp(`payload is ${MAX_PAYLOAD_CHARS + 8} characters, more than ${MAX_PAYLOAD_CHARS}`),
      },
      { name: 'declares-too-much', url: rawLink(json(big), new Uint8Array(big)), says: new RegExp(`declares \\d+ bytes of content, more than the ${MAX_INFLATED_BYTES} allowed`) },
      { name: 'deflate-bomb', url: rawLink(json(big), new Uint8Array(big), 64 * 1024), says: /damaged or was altered \(it inflates past the 65536 bytes it declares\)/ },
    ];
    for (const c of cases) {
      const before = modelRequests();
      const { context, page, errors } = await openFresh(browser, c.url, hub);
      const banner = page.getByTestId('demo-banner');
      await expect(banner).toHaveAttribute('data-status', 'error', { timeout: 30_000 });
      await expect(banner).toContainText('This demo link cannot be opened.');
      await expect(banner).toContainText(c.says);
      await expect(banner).toContainText('Nothing from it was loaded.');
      await expect(page.getByTestId('adapter-badge')).toContainText('swiftshader', { timeout: 90_000 }); // the studio itself works
      await page.waitForTimeout(1000);
      const st = await page.evaluate(() => {
        const s = (window as unknown as Studio).__studio.getState();
        return { load: s.load.status, linked: s.linkedAdapter };
      });
      expect(st, c.name).toEqual({ load: 'idle', linked: false });
      expect(modelRequests(), `${c.name}: no request for the model`).toBe(before);
      expect(folder.requests, `${c.name}: no adapter fetched`).toEqual([]);
      expect(errors).toEqual([]);
      await page.screenshot({ path: `${SHOTS}/demo-link-${c.name}.png` });
      await context.close();
    }
  });

  test('a link to a published adapter URL opens the playground and gives the same output as the adapter embedded', async ({ browser }) => {
    test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent');
    test.setTimeout(360_000);
    const base: DemoLink = {
      model: { repo: REPO },
      title: 'Plant care (published adapter)',
      prompt: { user: 'Tell me about plants.' },
      sampling: { temperature: 0, seed: 1, maxNewTokens: 24 },
    };
    const adapterUrl = `${folder.url}/adapters/plants`;
    const byUrl = encodeDemoLink({ ...base, adapter: { kind: 'url', url: adapterUrl } }, { origin: ORIGIN, allowHttpLocalhost: true });
    const embedded = encodeDemoLink({ ...base, adapter: { kind: 'embedded', ...adapter } }, { origin: ORIGIN });

    // By URL: the banner says what and from where; exactly the two files are fetched from the folder.
    const a = await openFresh(browser, byUrl, hub);
    const banner = a.page.getByTestId('demo-banner');
    await expect(banner).toBeVisible({ timeout: 30_000 });
    await expect(a.page.locator('[data-panel="playground"]')).toBeVisible();
    await expect(banner).toHaveAttribute('data-status', 'ready', { timeout: 180_000 });
    await expect(banner).toContainText(`Loaded ${REPO} with the adapter from ${adapterUrl}`);
    await expect(banner).toContainText('Plant care (published adapter)');
    expect([...folder.requests].sort()).toEqual(['GET /adapters/plants/adapter_config.json', 'GET /adapters/plants/adapter_model.safetensors']);
    await expect(a.page.getByTestId('playground-input')).toHaveValue('Tell me about plants.');
    const fromUrl = await generate(a.page);
    expect(fromUrl.tuned.length).toBeGreaterThan(0);
    expect(fromUrl.tuned).not.toBe(fromUrl.base); // the adapter changes the output
    await a.page.evaluate(() => window.scrollTo(0, 0));
    await a.page.screenshot({ path: `${SHOTS}/playground-adapter-url.png`, fullPage: true });
    expect(a.errors).toEqual([]);
    await a.context.close();

    // The same adapter embedded in the link: the same greedy output, nothing fetched from the folder.
    const b = await openFresh(browser, embedded, hub);
    await expect(b.page.getByTestId('demo-banner')).toHaveAttribute('data-status', 'ready', { timeout: 180_000 });
    await expect(b.page.getByTestId('demo-banner')).toContainText('the adapter embedded in the link');
    expect(await generate(b.page)).toEqual(fromUrl);
    expect(folder.requests).toHaveLength(2);
    expect(b.errors).toEqual([]);
    await b.context.close();
  });

  test('a link to an adapter URL that serves the wrong thing says which URL and loads no model', async ({ browser }) => {
    test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent');
    const missing = `${folder.url}/adapters/none`;
    const link = encodeDemoLink({ model: { repo: REPO }, adapter: { kind: 'url', url: missing } }, { origin: ORIGIN, allowHttpLocalhost: true });
    const before = modelRequests();
    const { context, page } = await openFresh(browser, link, hub);
    const banner = page.getByTestId('demo-banner');
    await expect(banner).toHaveAttribute('data-status', 'error', { timeout: 120_000 });
    await expect(banner).toContainText(`${missing}/adapter_`);
    await expect(banner).toContainText('answered HTTP 404');
    await expect(banner).toContainText('a published adapter is a folder holding adapter_config.json and adapter_model.safetensors');
    expect(modelRequests()).toBe(before);
    expect(await page.evaluate(() => (window as unknown as Studio).__studio.getState().load.status)).toBe('idle');
    await context.close();
  });
});
