// The studio shell in headless Chromium with WebGPU on SwiftShader: the GPU panel, the self-test
// through the engine worker, themes, keyboard navigation, and the page without WebGPU.

import { expect, test } from '@playwright/test';
import { collectErrors } from './studio-helpers.ts';

const PANEL_TITLES = ['Model', 'Data', 'Train', 'Playground', 'Export', 'GPU'];
const MiB = 1024 * 1024;

test('GPU panel shows the SwiftShader adapter, runs the self-test, and every panel opens by keyboard', async ({ page }) => {
  const errors = collectErrors(page);
  await page.goto('/');
  await expect(page).toHaveTitle('QLoRA Studio');
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible(); // the studio opens on its first step
  await page.getByRole('navigation', { name: 'Studio panels' }).getByRole('button', { name: /^GPU\b/ }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'GPU' })).toBeVisible();

  // The engine worker found an adapter, the same one the page itself gets.
  const status = page.getByTestId('gpu-status');
  await expect(status).toHaveAttribute('data-status', 'ready', { timeout: 90_000 });
  await expect(status).toContainText('WebGPU is available');
  const info = await page.evaluate(async () => {
    const a = await navigator.gpu.requestAdapter();
    return a && { vendor: a.info.vendor, architecture: a.info.architecture };
  });
  expect(info).not.toBeNull();
  await expect(page.getByTestId('adapter-vendor')).toHaveText(info!.vendor || 'not reported');
  await expect(page.getByTestId('adapter-architecture')).toHaveText(info!.architecture || 'not reported');
  if (info!.architecture === 'swiftshader' || !process.env.QLORA_E2E_NATIVE_GPU) {
    // Headless Chromium without a GPU: SwiftShader, Chromium's CPU Vulkan (vendor "google").
    await expect(page.getByTestId('adapter-vendor')).toHaveText('google');
    await expect(page.getByTestId('adapter-architecture')).toHaveText('swiftshader');
    await expect(page.getByTestId('adapter-type')).toContainText('Fallback adapter');
    await expect(page.getByTestId('adapter-badge')).toContainText('google · swiftshader (CPU)');
    await expect(page.getByTestId('software-adapter-note')).toContainText('SwiftShader, a CPU implementation');
    await expect(page.getByTestId('software-adapter-note')).toContainText('training will be slow');
  }

  // Limits: the raised maximum, not the 128 MiB default, and the same as the page's own adapter.
  const cell = page.getByTestId('limit-maxStorageBufferBindingSize');
  const shown = Number(await cell.getAttribute('data-value'));
  expect(shown).toBeGreaterThan(128 * MiB);
  const fromPage = await page.evaluate(async () => (await navigator.gpu.requestAdapter())?.limits.maxStorageBufferBindingSize);
  expect(shown).toBe(fromPage);
  await expect(cell).toHaveText(/^\d+(\.\d+)? (MiB|GiB|TiB)$/);
  await expect(cell).not.toHaveText('128 MiB');
  await expect(page.getByTestId('adapter-features')).toContainText('subgroups');

  // The self-test runs the smoke kernel in the worker and checks it against the CPU.
  await page.getByRole('button', { name: 'Run GPU self-test' }).click();
  const result = page.getByTestId('selftest-result');
  await expect(result).toBeVisible({ timeout: 90_000 });
  const maxAbsError = Number(await result.getAttribute('data-max-abs-error'));
  expect(maxAbsError).toBeLessThanOrEqual(1e-6);
  await expect(result).toHaveAttribute('data-passed', 'true');
  await expect(result).toContainText('100,003');

  await page.screenshot({ path: 'test-results/studio-shell.png', fullPage: true });

  // Theme: light by default here (colorScheme: 'light'), toggled to dark.
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  await page.getByRole('button', { name: 'Switch to dark theme' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.screenshot({ path: 'test-results/studio-shell-dark.png', fullPage: true });

  // Keyboard: from the theme toggle, Tab into the nav; Enter opens each panel in turn.
  for (const title of PANEL_TITLES) {
    const button = page.getByRole('navigation', { name: 'Studio panels' }).getByRole('button', { name: new RegExp(`^${title}\\b`) });
    for (let i = 0; i < 20 && !(await button.evaluate((el) => el === document.activeElement)); i++) {
      await page.keyboard.press('Tab');
    }
    await expect(button).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(button).toHaveAttribute('aria-current', 'page');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(title);
    await expect(page.locator('[aria-current="page"]')).toHaveCount(1);
    await expect(page.locator('.panel-summary')).not.toBeEmpty();
  }
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('GPU');
  await page.screenshot({ path: 'test-results/studio-shell-gpu-dark.png' });

  expect(errors).toEqual([]);
});

test('says plainly when WebGPU is missing, naming browsers and flags', async ({ page }) => {
  const errors = collectErrors(page);
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  await page.goto('/');
  // Every panel says so at the top, with the way to the details.
  const banner = page.getByTestId('gpu-banner');
  await expect(banner).toContainText('WebGPU is not available');
  await expect(page.getByTestId('load-model')).toBeDisabled();
  await page.screenshot({ path: 'test-results/studio-no-webgpu-model.png', fullPage: true });
  await banner.getByRole('button', { name: 'Details' }).click();
  const status = page.getByTestId('gpu-status');
  await expect(status).toHaveAttribute('data-status', 'missing');
  await expect(status.getByRole('heading', { name: 'WebGPU not available' })).toBeVisible();
  for (const words of ['Chrome', 'Edge', '--enable-unsafe-webgpu', 'Safari', 'Firefox']) {
    await expect(status).toContainText(words);
  }
  await expect(page.getByTestId('adapter-badge')).toHaveText('No WebGPU');
  await expect(page.getByRole('button', { name: 'Run GPU self-test' })).toHaveCount(0);
  await page.screenshot({ path: 'test-results/studio-shell-no-webgpu.png', fullPage: true });
  expect(errors).toEqual([]);
});

test.describe('with a dark system theme', () => {
  test.use({ colorScheme: 'dark' });

  test('follows prefers-color-scheme until the user toggles, and keeps the choice', async ({ page }) => {
    await page.goto('/');
    const html = page.locator('html');
    await expect(html).toHaveAttribute('data-theme', 'dark');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    await expect(html).toHaveAttribute('data-theme', 'light');
    await page.reload();
    await expect(html).toHaveAttribute('data-theme', 'light');
  });
});
