// Playground, exports and demo links, as a user drives them (headless Chromium, SwiftShader):
// the model from the local test Hub, a short run with a small adapter (rank 2, q/v only, so it fits
// in a link), the playground streaming base and fine-tuned text, the downloads (the merged model
// streamed by the worker into the private file system, OPFS, and checked: F16 safetensors with
// every tensor, config and tokenizer), a demo link opened in a fresh browser context (empty
// storage; the base model comes from the test Hub again) that gives the same greedy output, and a
// tampered link refused with nothing loaded. More link cases are in links.spec.ts.

import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import { startTestHub, type TestHub } from '../src/hub/test-server.ts';
import { parseHeader, readHeaderLength } from '../src/formats/safetensors.ts';
import { parseModelConfig } from '../src/model/config.ts';
import { modelTensorShapes } from '../src/model/names.ts';
import { sharedPath } from '../src/node/shared.ts';
import { panel, pointAtHub } from './studio-helpers.ts';

const stories = sharedPath('models/stories260K');
const SHOTS = 'test-results';

type W = { __studio: { getState(): Record<string, unknown> & { setLora(p: object): void } } };

/** The merged zip: F16 safetensors with every tensor of the model, its config and tokenizer. */
function expectMergedZip(zip: Uint8Array): void {
  const entries = unzipSync(zip);
  expect(Object.keys(entries).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const config = parseModelConfig(JSON.parse(strFromU8(entries['config.json']!)));
  expect(config.raw.torch_dtype).toBe('float16');
  const m = entries['model.safetensors']!;
  const header = parseHeader(m.subarray(0, 8 + readHeaderLength(m, 'model.safetensors')), { fileLength: m.byteLength, source: 'model.safetensors' });
  const shapes = modelTensorShapes(config);
  expect(header.tensors.map((t) => t.name).sort()).toEqual(shapes.map((t) => t.name).sort());
  expect(new Set(header.tensors.map((t) => t.dtype))).toEqual(new Set(['F16']));
  const values = shapes.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  expect(m.byteLength).toBe(header.dataStart + 2 * values);
}

async function generate(page: Page, both: boolean): Promise<{ base: string; tuned: string }> {
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('output-base-text')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  if (both) await expect(page.getByTestId('output-tuned-text')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  return {
    base: (await page.getByTestId('output-base-text').textContent()) ?? '',
    tuned: both ? ((await page.getByTestId('output-tuned-text').textContent()) ?? '') : '',
  };
}

test.describe('playground, exports and demo links', () => {
  let hub: TestHub;
  test.beforeAll(async () => {
    if (stories) hub = await startTestHub([{ id: 'test/stories260K', dir: stories }]);
  });
  test.afterAll(() => hub?.close());

  test('train → playground streams base and fine-tuned → downloads → a demo link reproduces the output; a tampered link loads nothing', async ({ page, browser }) => {
    test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent');
    test.setTimeout(480_000);
    await pointAtHub(page, hub.url);
    await page.goto('/');
    await expect(page.getByTestId('adapter-badge')).toContainText('swiftshader', { timeout: 90_000 });
    await page.getByLabel('Or any Hub repo id').fill('test/stories260K');
    await page.getByRole('button', { name: 'Use', exact: true }).click();
    await page.getByTestId('load-model').click();
    await expect(page.getByTestId('loaded-name')).toHaveText('test/stories260K', { timeout: 120_000 });
    await panel(page, 'data');
    await expect(page.getByTestId('data-rows')).toHaveText('40', { timeout: 60_000 });

    // Quick try, a few steps, with a small adapter (rank 2 on q and v) so it fits in a link.
    await panel(page, 'train');
    await page.getByTestId('preset-quick-try').click();
    const settings = page.getByTestId('train-settings');
    for (const [label, v] of [['Steps', '3'], ['Gradient accumulation', '1'], ['Sequence length', '128'], ['Learning rate', '0.01'], ['Warmup ratio', '0'], ['Eval every', '0']]) {
      await settings.getByLabel(label!, { exact: true }).fill(v!);
    }
    await page.evaluate(() => (window as unknown as W).__studio.getState().setLora({ r: 2, alpha: 4, targetModules: ['q_proj', 'v_proj'] }));
    await page.getByTestId('start-training').click();
    await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'done', { timeout: 240_000 });

    // The playground: base and fine-tuned, greedy, the same prompt; tokens stream in.
    await panel(page, 'playground');
    await page.getByTestId('playground-input').fill('Tell me about plants.');
    await page.getByTestId('generate').click();
    // Streaming: text shows while the request is still running.
    await expect(page.locator('[data-testid="output-base-text"][data-status="running"]')).not.toHaveText(/^…?$/, { timeout: 60_000 }).catch(() => undefined);
    await expect(page.getByTestId('output-base-text')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    await expect(page.getByTestId('output-tuned-text')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
    const first = {
      base: (await page.getByTestId('output-base-text').textContent()) ?? '',
      tuned: (await page.getByTestId('output-tuned-text').textContent()) ?? '',
    };
    expect(first.base.length).toBeGreaterThan(0);
    expect(first.tuned.length).toBeGreaterThan(0);
    await expect(page.getByTestId('output-base-rate')).toContainText('tokens/s');
    const again = await generate(page, true); // greedy: the same again
    expect(again).toEqual(first);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${SHOTS}/playground.png`, fullPage: true });

    // Downloads through the worker, as Blob links; the merged model streamed to disk (OPFS).
    await panel(page, 'export');
    const downloaded: Record<string, string> = {};
    for (const kind of ['adapter-zip', 'training-config', 'loss-csv', 'merged-zip']) {
      await page.getByTestId(`make-${kind}`).click();
      const link = page.getByTestId(`download-${kind}`);
      await expect(link).toBeVisible({ timeout: 120_000 });
      await expect(link).toHaveAttribute('href', /^blob:/);
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
      const path = await download.path();
      expect(path).toBeTruthy();
      downloaded[kind] = path;
    }
    await expect(page.getByTestId('export-merged-zip')).toHaveAttribute('data-storage', 'opfs');
    await expect(page.getByTestId('export-warning-merged-zip')).toHaveCount(0);
    await expect(page.getByTestId('export-adapter-zip')).toHaveAttribute('data-storage', 'memory');
    expectMergedZip(readFileSync(downloaded['merged-zip']!));
    // The worker's temp file is in the private file system, and stays while the page may download it.
    const temp = await page.evaluate(async () => {
      const names: string[] = [];
      for await (const [name] of (await navigator.storage.getDirectory()) as unknown as AsyncIterable<[string, unknown]>) names.push(name);
      return names.filter((n) => n.startsWith('qlora-export-'));
    });
    expect(temp).toHaveLength(1);
    expect(temp[0]).toMatch(/-stories260K-merged-f16\.zip$/);
    const csv = await page.evaluate(async () => {
      const a = document.querySelector('[data-testid="download-loss-csv"]') as HTMLAnchorElement;
      return (await fetch(a.href)).text();
    });
    expect(csv.split('\n')[0]).toContain('step');
    expect(csv.trim().split('\n').length).toBe(4); // header + 3 steps

    // The demo link with the adapter embedded.
    await page.getByTestId('make-link').click();
    const shareLink = page.getByTestId('share-link');
    await expect(shareLink).toBeVisible({ timeout: 60_000 });
    const url = await shareLink.inputValue();
    expect(url).toContain('#demo=');
    expect(url).not.toContain('hf_');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: `${SHOTS}/export.png`, fullPage: true });

    // A fresh context: empty storage; the base model comes from the test Hub.
    const fresh = await browser.newContext();
    const p2 = await fresh.newPage();
    const errors: string[] = [];
    p2.on('pageerror', (e) => errors.push(e.message));
    await pointAtHub(p2, hub.url);
    await p2.goto(url);
    await expect(p2.getByTestId('demo-banner')).toBeVisible({ timeout: 30_000 });
    await expect(p2.getByTestId('demo-banner')).toContainText('test/stories260K');
    await expect(p2.locator('[data-panel="playground"]')).toBeVisible();
    await expect(p2.getByTestId('demo-banner')).toHaveAttribute('data-status', 'ready', { timeout: 180_000 });
    await expect(p2.getByTestId('playground-input')).toHaveValue('Tell me about plants.');
    const replay = await generate(p2, true);
    expect(replay).toEqual(first);
    await p2.evaluate(() => window.scrollTo(0, 0));
    await p2.screenshot({ path: `${SHOTS}/playground-demo-link.png`, fullPage: true });
    expect(errors).toEqual([]);
    await fresh.close();

    // A tampered link: a clear error, nothing loaded.
    const i = url.indexOf('#demo=') + 6 + 40;
    const tampered = url.slice(0, i) + (url[i] === 'A' ? 'B' : 'A') + url.slice(i + 1);
    const bad = await browser.newContext();
    const p3 = await bad.newPage();
    await pointAtHub(p3, hub.url);
    const sentBefore = hub.sent('test/stories260K', 'model.safetensors');
    await p3.goto(tampered);
    await expect(p3.getByTestId('demo-banner')).toHaveAttribute('data-status', 'error', { timeout: 30_000 });
    await expect(p3.getByTestId('demo-banner')).toContainText('cannot be opened');
    await p3.waitForTimeout(1000);
    expect(await p3.evaluate(() => (window as unknown as { __studio: { getState(): { load: { status: string } } } }).__studio.getState().load.status)).toBe('idle');
    expect(hub.sent('test/stories260K', 'model.safetensors')).toBe(sentBefore);
    await p3.screenshot({ path: `${SHOTS}/demo-link-tampered.png` });
    await bad.close();
  });
});
