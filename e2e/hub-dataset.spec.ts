// The "Hub dataset" data source end to end in headless Chromium, against a local datasets-server
// (src/data/test-datasets-server.ts: the dataset viewer API's /splits and paged /rows, cross-origin
// with CORS) instead of https://datasets-server.huggingface.co:
// 1. the dataset viewer endpoint set in the Hub access settings (a bad address is explained first),
//    a token for a gated dataset, the local stories260K model, the rows loaded in two pages, their
//    statistics and trained-token preview, then a few tiny training steps with finite losses, paused;
//    the run's record keeps the endpoint (never the token), and after a reload with the setting back
//    at the default the run resumes from the record's endpoint to the end;
// 2. an unknown dataset id: the server's 404 is shown naming the dataset, and nothing is loaded.

import { expect, test, type Page } from '@playwright/test';
import { startTestDatasetsServer, type TestDatasetsServer, type TestRow } from '../src/data/test-datasets-server.ts';
import { sharedPath } from '../src/node/shared.ts';
import { collectErrors, openStudio, panel, setNumber, SHOTS } from './studio-helpers.ts';

const stories = sharedPath('models/stories260K');
const DATASET = 'test/kite-chat';
const TOKEN = 'hf_e2eDatasetsToken_0123456789';
const ROWS = 130; // two pages of the API's at most 100 rows
const STEPS = 10;
const COLOURS = ['red', 'teal', 'gold', 'violet', 'green'];

const chat = (i: number): TestRow => ({
  messages: [
    { role: 'user', content: `Which colour is kite ${i}?` },
    { role: 'assistant', content: `Kite ${i} is ${COLOURS[i % COLOURS.length]}. Fly high!` },
  ],
});

let server: TestDatasetsServer;

test.beforeAll(async () => {
  server = await startTestDatasetsServer([
    {
      id: DATASET,
      token: TOKEN,
      configs: { default: { train: Array.from({ length: ROWS }, (_, i) => chat(i)), test: [chat(1000), chat(1001)] } },
    },
  ]);
});
test.afterAll(() => server?.close());
test.beforeEach(() => {
  server.requests.length = 0;
});

/** Points the studio's dataset viewer endpoint at the local server (Model panel → Hub access). */
async function useLocalDatasetsServer(page: Page): Promise<void> {
  const access = page.getByTestId('hub-access');
  if (!(await access.locator('details').evaluate((d) => (d as HTMLDetailsElement).open))) await access.locator('summary').click();
  const field = page.getByTestId('datasets-endpoint');
  await expect(field).toHaveValue('https://datasets-server.huggingface.co');
  await field.fill(server.url);
  await field.blur();
  await expect(access.locator('summary')).toContainText(`datasets from ${new URL(server.url).host}`);
}

/** The local stories260K folder, through the folder input, loaded onto the GPU. */
async function loadStories(page: Page): Promise<void> {
  await page.getByRole('radio', { name: 'Local folder' }).click();
  await page.getByTestId('folder-input').setInputFiles(stories!);
  await expect(page.getByTestId('local-inspection')).toContainText('llama · 5 layers · hidden 64');
  await page.getByTestId('load-model').click();
  await expect(page.getByTestId('loaded-name')).toHaveText('stories260K', { timeout: 120_000 });
}

async function chooseHubDataset(page: Page, id: string): Promise<void> {
  await panel(page, 'data');
  await page.getByRole('radio', { name: 'Hub dataset' }).click();
  await expect(page.getByTestId('data-source')).toContainText(`rows come from the dataset viewer at ${new URL(server.url).host}`);
  await page.getByTestId('hf-dataset-id').fill(id);
  await page.getByTestId('hf-load-rows').click();
}

test('a Hub dataset from a local dataset viewer: rows in pages, stats, preview, training, a reload and a resume', async ({ page }) => {
  test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent, so there is no local model to pick');
  test.setTimeout(300_000);
  const errors = collectErrors(page);
  await openStudio(page);

  // A bad address is explained, naming the field, and not saved.
  await page.getByTestId('hub-access').locator('summary').click();
  const field = page.getByTestId('datasets-endpoint');
  await field.fill('datasets-server.local');
  await expect(page.getByTestId('hub-access')).toContainText('The dataset viewer endpoint is not a URL');
  await field.blur();
  expect(await page.evaluate(() => localStorage.getItem('qlora-studio.hub.datasets-endpoint'))).toBeNull();
  await field.fill('https://datasets-server.huggingface.co');
  await useLocalDatasetsServer(page);
  expect(await page.evaluate(() => localStorage.getItem('qlora-studio.hub.datasets-endpoint'))).toBe(server.url);

  // The dataset is gated: the token goes along as a header (set for this tab only).
  await page.getByLabel('Access token').fill(TOKEN);
  await page.getByTestId('hub-access').getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByTestId('hub-access').locator('summary')).toContainText('token set');
  await page.getByTestId('hub-access').screenshot({ path: `${SHOTS}/studio-hub-access-datasets.png` });

  await loadStories(page);
  await chooseHubDataset(page, DATASET);

  // Every served row is read (100 + 30), shaped by the model's tokenizer, and previewed.
  await expect(page.getByTestId('data-rows')).toHaveText(String(ROWS), { timeout: 60_000 });
  await expect(page.getByTestId('data-skipped')).toHaveText('0');
  await expect(page.getByTestId('data-format')).toContainText('Auto (messages)');
  await expect(page.getByTestId('data-error')).toHaveCount(0);
  const preview = page.getByTestId('preview-text').first();
  await expect(preview).toContainText(/Which colour is kite \d+\?/);
  await expect(preview.locator('mark.trained')).not.toHaveCount(0);
  const trained = (await preview.locator('mark.trained').allTextContents()).join('');
  expect(trained).toMatch(/Fly high!/); // the assistant's answer carries the loss…
  expect(trained).not.toMatch(/Which colour/); // …the question does not
  await expect(page.getByTestId('histogram')).toBeVisible();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/studio-data-hub.png`, fullPage: true });

  const gets = server.requests.filter((r) => r.method === 'GET');
  expect(gets.map((r) => [r.path, r.query.offset ?? null, r.query.length ?? null, r.status])).toEqual([
    ['/splits', null, null, 200],
    ['/rows', '0', '100', 200],
    ['/rows', '100', '30', 200],
  ]);
  expect(gets[1]!.query).toMatchObject({ dataset: DATASET, config: 'default', split: 'train' });
  expect(gets.every((r) => r.auth === `Bearer ${TOKEN}`)).toBe(true);
  expect(server.requests.some((r) => r.url.includes(TOKEN))).toBe(false); // a header, never in a URL
  expect(server.requests.some((r) => r.method === 'OPTIONS')).toBe(true); // the Authorization header's preflight

  // A few tiny steps of Quick try on these rows; paused after the first ones (a checkpoint is written).
  await panel(page, 'train');
  await page.getByTestId('preset-quick-try').click();
  const settings = page.getByTestId('train-settings');
  await setNumber(settings.getByLabel('Steps', { exact: true }), String(STEPS));
  await setNumber(settings.getByLabel('Gradient accumulation'), '1');
  await setNumber(settings.getByLabel('Sequence length'), '128');
  await setNumber(settings.getByLabel('Eval every'), '0');
  server.requests.length = 0;
  await page.getByTestId('start-training').click();
  await expect(page.getByTestId('metric-step')).toHaveText(new RegExp(`^[1-${STEPS - 3}] / ${STEPS}$`), { timeout: 180_000 });
  await page.getByTestId('pause-training').click();
  await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'paused', { timeout: 60_000 });
  await expect(page.getByTestId('metric-loss')).toHaveText(/^\d+\.\d{4}$/);
  type Run = { runId: string; label: string; points: Array<{ step: number; loss: number }> };
  const runState = () => page.evaluate(() => (window as unknown as { __studio: { getState(): { run: Run } } }).__studio.getState().run);
  const first = await runState();
  expect(first.label).toContain(DATASET);
  expect(first.points.length).toBeGreaterThanOrEqual(1);
  for (const p of first.points) expect(Number.isFinite(p.loss) && p.loss > 0).toBe(true);
  // The run read its rows from the local server too (the default one is unreachable here).
  expect(server.requests.filter((r) => r.method === 'GET' && r.path === '/rows').length).toBeGreaterThanOrEqual(2);

  // The run's record keeps the dataset reference with its endpoint, never the token.
  type Listing = { record: { runId: string; data: unknown } };
  const listed = () =>
    page.evaluate(async () => {
      const studio = (window as unknown as { __studio: { getState(): { refreshRuns(): Promise<void>; runs: { list: Listing[] } } } }).__studio;
      await studio.getState().refreshRuns();
      return studio.getState().runs.list;
    });
  await expect.poll(async () => (await listed()).some((l) => l.record.runId === first.runId)).toBe(true);
  const record = (await listed()).find((l) => l.record.runId === first.runId)!.record;
  expect(record.data).toEqual({ kind: 'hf', dataset: DATASET, endpoint: server.url });
  expect(JSON.stringify(record)).not.toContain(TOKEN);

  // A reopened tab with the setting back at the default resumes from the record's endpoint.
  await page.reload();
  await expect(page.getByTestId('resume-banner')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('adapter-badge')).toContainText('swiftshader', { timeout: 90_000 });
  await page.getByTestId('hub-access').locator('summary').click();
  await expect(page.getByTestId('datasets-endpoint')).toHaveValue(server.url); // remembered
  await page.getByTestId('datasets-endpoint').fill('');
  await page.getByTestId('datasets-endpoint').blur(); // blank: the default
  await expect(page.getByTestId('datasets-endpoint')).toHaveValue('');
  await expect(page.getByTestId('hub-access').locator('summary')).not.toContainText('datasets from');
  expect(await page.evaluate(() => localStorage.getItem('qlora-studio.hub.datasets-endpoint'))).toBeNull();
  server.requests.length = 0;
  await page.getByTestId('resume-banner-button').click();
  await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  await expect(page.getByTestId('metric-step')).toHaveText(`${STEPS} / ${STEPS}`);
  const resumed = await runState();
  expect(resumed.runId).toBe(first.runId);
  expect(resumed.points.map((p) => p.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  for (const p of resumed.points) expect(Number.isFinite(p.loss) && p.loss > 0).toBe(true);
  const rowsAgain = server.requests.filter((r) => r.method === 'GET' && r.path === '/rows');
  expect(rowsAgain.map((r) => [r.query.offset, r.query.length])).toEqual([['0', '100'], ['100', '30']]);
  expect(rowsAgain.every((r) => r.auth === `Bearer ${TOKEN}`)).toBe(true); // the tab's token, sent again
  expect(errors).toEqual([]);
});

test('an unknown dataset id: the 404 is shown naming the dataset, and nothing is loaded', async ({ page }) => {
  test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent, so there is no local model to pick');
  test.setTimeout(240_000);
  const errors = collectErrors(page);
  await openStudio(page);
  await useLocalDatasetsServer(page);
  await loadStories(page);
  await chooseHubDataset(page, 'nobody/no-such-dataset');

  const error = page.getByTestId('data-error');
  await expect(error).toHaveAttribute('data-error-kind', 'data', { timeout: 60_000 });
  await expect(error).toContainText('The data could not be used');
  await expect(error).toContainText('Dataset nobody/no-such-dataset: HTTP 404');
  await expect(error).toContainText('The dataset does not exist');
  await expect(error).toContainText('check the dataset id');
  await expect(page.getByTestId('data-rows')).toHaveCount(0);
  await expect(page.getByTestId('preview-text')).toHaveCount(0);
  expect(server.requests.map((r) => [r.method, r.path, r.query.dataset, r.status])).toEqual([['GET', '/splits', 'nobody/no-such-dataset', 404]]);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/studio-data-hub-missing.png`, fullPage: true });
  // Chromium logs the 404 answer itself; nothing else went wrong.
  expect(errors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e))).toEqual([]);
});
