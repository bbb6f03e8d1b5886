// The studio as a user drives it, in headless Chromium on SwiftShader with real IndexedDB:
// 1. a local model folder (../shared/models/stories260K through the folder input), the shipped
//    sample dataset, the "Quick try" preset cut to a few tiny steps, the loss chart drawing and the
//    eval loss falling, an input answering within 100 ms while a step runs, screenshots of every
//    panel in light and dark;
// 2. the same model downloaded from the local test Hub (src/hub/test-server.ts), a page reload in the
//    middle of the run, and the run resumed from its checkpoint to the end, without downloading again.

import { expect, test, type Locator, type Page } from '@playwright/test';
import { startTestHub, type TestHub } from '../src/hub/test-server.ts';
import { sharedPath } from '../src/node/shared.ts';
import { collectErrors, openStudio, panel, setNumber, shot, SHOTS } from './studio-helpers.ts';

const stories = sharedPath('models/stories260K');

/** Quick try, cut to `steps` tiny steps that show the loss move on stories260K. */
async function tinyQuickTry(page: Page, steps: number, extra: { checkpointEvery?: number } = {}): Promise<void> {
  await panel(page, 'train');
  await page.getByTestId('preset-quick-try').click();
  await expect(page.getByTestId('preset-quick-try')).toHaveAttribute('aria-checked', 'true');
  const settings = page.getByTestId('train-settings');
  await setNumber(settings.getByLabel('Steps', { exact: true }), String(steps));
  await setNumber(settings.getByLabel('Gradient accumulation'), '1');
  await setNumber(settings.getByLabel('Sequence length'), '128');
  await setNumber(settings.getByLabel('Learning rate'), '0.003');
  await setNumber(settings.getByLabel('Warmup ratio'), '0');
  await setNumber(settings.getByLabel('Eval every'), '0');
  if (extra.checkpointEvery !== undefined) await setNumber(settings.getByLabel('Checkpoint every'), String(extra.checkpointEvery));
  await expect(page.getByTestId('preset-quick-try')).toContainText('changed');
}

/**
 * Input responsiveness while typing (Event Timing API): for every key/input event slower than 16 ms,
 * `answered` is the time from the keystroke until its handlers had run (input delay + processing)
 * and `painted` the time until the next frame showed it; long tasks on the main thread are listed.
 */
async function typingLatency(page: Page, input: Locator, text: string): Promise<{ answeredMs: number; paintedMs: number; events: number; longTasks: number[] }> {
  await page.evaluate(() => {
    const w = window as unknown as { __lat: { answered: number[]; painted: number[]; long: number[] } };
    w.__lat = { answered: [], painted: [], long: [] };
    new PerformanceObserver((l) => {
      for (const e of l.getEntries() as PerformanceEventTiming[]) {
        if (!/key|input/.test(e.name)) continue;
        w.__lat.answered.push(e.processingEnd - e.startTime);
        w.__lat.painted.push(e.duration);
      }
    }).observe({ type: 'event', buffered: false, durationThreshold: 16 } as PerformanceObserverInit);
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) w.__lat.long.push(e.duration);
    }).observe({ type: 'longtask', buffered: false });
  });
  await input.click();
  await input.press('End');
  await input.pressSequentially(text, { delay: 60 });
  await page.waitForTimeout(300); // let the last entries arrive
  return page.evaluate(() => {
    const w = window as unknown as { __lat: { answered: number[]; painted: number[]; long: number[] } };
    return { answeredMs: Math.round(Math.max(0, ...w.__lat.answered)), paintedMs: Math.max(0, ...w.__lat.painted), events: w.__lat.painted.length, longTasks: w.__lat.long };
  });
}

test('local folder → sample data → Quick try: the loss curve draws, the eval loss falls, the page stays responsive', async ({ page }) => {
  test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent, so there is no local model to pick');
  test.setTimeout(300_000);
  const errors = collectErrors(page);
  await openStudio(page);

  // Defaults: a Hub model and its estimate are preselected.
  await expect(page.getByTestId('catalog-HuggingFaceTB/SmolLM2-135M-Instruct').getByRole('radio')).toBeChecked();
  await expect(page.getByTestId('verdict')).toBeVisible();
  await shot(page, 'studio-model');

  // A local folder, through the folder input.
  await page.getByRole('radio', { name: 'Local folder' }).click();
  await page.getByTestId('folder-input').setInputFiles(stories!);
  await expect(page.getByTestId('local-inspection')).toContainText('llama · 5 layers · hidden 64');
  await expect(page.getByTestId('verdict')).toHaveAttribute('data-verdict', 'fits');
  await page.getByTestId('load-model').click();
  await expect(page.getByTestId('loaded-name')).toHaveText('stories260K', { timeout: 120_000 });
  await expect(page.getByTestId('cached-local/stories260K')).toBeVisible(); // kept for a reload
  await shot(page, 'studio-model-loaded');

  // The sample dataset is preselected and prepared with the model's tokenizer.
  await panel(page, 'data');
  await expect(page.getByTestId('data-rows')).toHaveText('40', { timeout: 60_000 });
  await expect(page.getByTestId('data-format')).toContainText('Auto (messages)');
  await expect(page.getByTestId('preview-text').first().locator('mark.trained').first()).toBeVisible();
  await expect(page.getByTestId('histogram')).toBeVisible();
  await shot(page, 'studio-data');

  // Malformed data is explained where it is pasted.
  await page.getByRole('radio', { name: 'Paste' }).click();
  await page.getByLabel('Text').fill('{"messages": 5}\n{"messages": [{"role": "user"}]}\nnot json at all');
  const dataError = page.getByTestId('data-error');
  await expect(dataError).toHaveAttribute('data-error-kind', 'data', { timeout: 30_000 });
  await expect(dataError).toContainText('The data could not be used');
  await expect(dataError).toContainText('no usable examples');
  await shot(page, 'studio-data-error');
  await page.getByRole('radio', { name: 'Sample' }).click();
  await expect(page.getByTestId('data-rows')).toHaveText('40', { timeout: 30_000 });
  await expect(dataError).toHaveCount(0);

  // Quick try, a few tiny steps.
  await tinyQuickTry(page, 3);
  await page.getByTestId('start-training').click();
  await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'running', { timeout: 60_000 });

  // While a step runs in the worker (the first one compiles every kernel: seconds on SwiftShader),
  // an input on the page answers within 100 ms.
  await panel(page, 'model');
  await page.getByTestId('hub-access').locator('summary').click();
  const lat = await typingLatency(page, page.getByTestId('hub-endpoint'), '/mirror');
  const during = await page.evaluate(() => {
    const r = (window as unknown as { __studio: { getState(): { run: { state: string; last: { step: number } | null } } } }).__studio.getState().run;
    return { state: r.state, step: r.last?.step ?? 0 };
  });
  console.log(
    `typing while training (${JSON.stringify(during)}): answered within ${lat.answeredMs} ms, painted within ${lat.paintedMs} ms ` +
      `(${lat.events} key events over 16 ms); main-thread long tasks: ${JSON.stringify(lat.longTasks)}`,
  );
  expect(during.state).toBe('running'); // the run had not finished while we typed
  expect(during.step).toBeLessThan(3);
  expect(lat.answeredMs).toBeLessThan(100); // the page's handlers ran within 100 ms of each keystroke
  // The frame that shows it comes from Chromium's GPU process, which on SwiftShader shares the CPU with
  // the training kernels themselves (2 cores here: 24–88 ms seen); bounded loosely so a busy machine passes.
  expect(lat.paintedMs).toBeLessThan(250);
  expect(lat.longTasks.filter((ms) => ms >= 100)).toEqual([]);
  await expect(page.getByTestId('hub-endpoint')).toHaveValue('https://huggingface.co/mirror');
  await page.getByTestId('hub-endpoint').fill('https://huggingface.co');
  await panel(page, 'train');
  await expect(page.getByTestId('loss-chart')).not.toHaveAttribute('data-points', '0', { timeout: 120_000 });
  await page.screenshot({ path: `${SHOTS}/studio-train-running.png` });

  await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'done', { timeout: 180_000 });
  await expect(page.getByTestId('metric-step')).toHaveText('3 / 3');
  await expect(page.getByTestId('metric-loss')).toHaveText(/^\d+\.\d{4}$/);
  const chart = page.getByTestId('loss-chart');
  await expect(chart).toHaveAttribute('data-points', '4'); // steps 1–3 and the eval before step 1
  await expect(chart.locator('canvas')).toBeVisible();
  // The curve is drawn: the canvas holds non-background pixels of the loss colour.
  const drawn = await chart.locator('canvas').evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3]! > 0) n++;
    return n;
  });
  expect(drawn).toBeGreaterThan(100);
  // The eval loss fell from before training to the end.
  const evals = await page.evaluate(() => {
    const run = (window as unknown as { __studio?: { getState(): { run: { evals: Array<{ step: number; loss: number }> } | null } } }).__studio?.getState().run;
    return run?.evals ?? [];
  });
  expect(evals.length).toBeGreaterThanOrEqual(2);
  expect(evals[evals.length - 1]!.loss).toBeLessThan(evals[0]!.loss);
  await expect(page.getByTestId('metric-eval')).toHaveText(/^\d+\.\d{4}$/);
  await expect(page.getByTestId('runs-card')).toContainText('finished');
  await shot(page, 'studio-train');

  // Dark theme, every panel.
  await page.getByRole('button', { name: 'Switch to dark theme' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await shot(page, 'studio-train-dark');
  for (const id of ['model', 'data', 'gpu'] as const) {
    await panel(page, id);
    await shot(page, `studio-${id}-dark`);
  }
  expect(errors).toEqual([]);
});

test.describe('with the local test Hub', () => {
  let hub: TestHub;
  test.beforeAll(async () => {
    if (stories) hub = await startTestHub([{ id: 'test/stories260K', dir: stories }]);
  });
  test.afterAll(() => hub?.close());

  test('download with progress, train, reload mid-run, resume from the checkpoint to the end with losses identical to an uninterrupted run', async ({ page }) => {
    test.skip(!stories, 'the reference folder ../shared/models/stories260K is absent, so the test Hub has no model to serve');
    test.setTimeout(360_000);
    const errors = collectErrors(page);
    await openStudio(page);

    // Point the studio at the test Hub and pick the repo by id: its config.json gives the estimate.
    await page.getByTestId('hub-access').locator('summary').click();
    await page.getByTestId('hub-endpoint').fill(hub.url);
    await page.getByTestId('hub-endpoint').blur();
    await expect(page.getByTestId('hub-access').locator('summary')).toContainText(new URL(hub.url).host);
    await page.getByLabel('Or any Hub repo id').fill('test/stories260K');
    await page.getByRole('button', { name: 'Use', exact: true }).click();
    await expect(page.getByText('llama, 5 layers')).toBeVisible();
    await expect(page.getByTestId('verdict')).toHaveAttribute('data-verdict', 'fits');

    await page.getByTestId('load-model').click();
    await expect(page.getByTestId('loaded-name')).toHaveText('test/stories260K', { timeout: 120_000 });
    await expect(page.getByTestId('download')).toHaveAttribute('data-status', 'done');
    await expect(page.getByTestId('download-numbers')).toContainText('5/5 files');
    await expect(page.getByTestId('cached-test/stories260K')).toBeVisible();
    const weights = hub.sent('test/stories260K', 'model.safetensors');
    expect(weights).toBe(hub.file('test/stories260K', 'model.safetensors').bytes.byteLength);
    await shot(page, 'studio-model-hub');

    await panel(page, 'data');
    await expect(page.getByTestId('data-rows')).toHaveText('40', { timeout: 60_000 });

    await tinyQuickTry(page, 6, { checkpointEvery: 1 });
    await page.getByTestId('start-training').click();
    await expect(page.getByTestId('run-foot')).toContainText(/Last checkpoint at step [1-4]\b/, { timeout: 180_000 });

    // Pause between steps (a checkpoint is written), then resume.
    await page.getByTestId('pause-training').click();
    await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'paused', { timeout: 60_000 });
    const pausedAt = await page.getByTestId('metric-step').textContent();
    await page.waitForTimeout(1500);
    await expect(page.getByTestId('metric-step')).toHaveText(pausedAt!); // nothing moves while paused
    await shot(page, 'studio-train-paused');
    await page.getByTestId('resume-training').click();
    await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'running');
    const runId = await page.evaluate(() => (window as unknown as { __studio: { getState(): { run: { runId: string } } } }).__studio.getState().run.runId);

    // The tab goes away mid-run; the reopened studio offers to resume.
    await page.reload();
    await expect(page.getByTestId('resume-banner')).toBeVisible({ timeout: 60_000 });
    const banner = await page.getByTestId('resume-banner').textContent();
    const at = Number(/stopped at step (\d+) of 6/.exec(banner ?? '')?.[1]);
    expect(at).toBeGreaterThanOrEqual(1);
    expect(at).toBeLessThan(6);
    await expect(page.getByTestId('adapter-badge')).toContainText('swiftshader', { timeout: 90_000 });
    await page.getByTestId('resume-banner-button').click();
    await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'done', { timeout: 240_000 });
    await expect(page.getByTestId('metric-step')).toHaveText('6 / 6');
    // The chart holds the steps before the reload (from the checkpoint) and after it.
    await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-points', '7');
    const run = await page.evaluate(() => (window as unknown as { __studio: { getState(): { run: { runId: string; resumedFrom: number; points: Array<{ step: number }> } } } }).__studio.getState().run);
    expect(run.runId).toBe(runId);
    expect(run.resumedFrom).toBe(at);
    expect(run.points.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // The model came from the browser cache: not one more byte of weights was sent.
    expect(hub.sent('test/stories260K', 'model.safetensors')).toBe(weights);
    await expect(page.getByTestId(`run-${runId}`)).toHaveAttribute('data-finished', 'true');
    await shot(page, 'studio-train-resumed');

    // Exact resume: the same run again without interruption gives bit-identical losses at every step.
    type Pt = { step: number; loss: number };
    const state = () => page.evaluate(() => (window as unknown as { __studio: { getState(): { run: { runId: string; state: string; points: Pt[] } } } }).__studio.getState().run);
    const resumed = (await state()).points.map((p) => p.loss);
    await page.getByTestId('start-training').click();
    await expect.poll(async () => (await state()).runId, { timeout: 60_000 }).not.toBe(runId);
    await expect(page.getByTestId('run-state')).toHaveAttribute('data-state', 'done', { timeout: 240_000 });
    const straight = (await state()).points.map((p) => p.loss);
    expect(straight).toHaveLength(6);
    expect(resumed).toEqual(straight);
    expect(errors).toEqual([]);
  });
});
