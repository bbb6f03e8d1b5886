// Helpers shared by the studio's browser tests: opening the studio, switching panels, typing numbers,
// screenshots, and collecting page errors (a test fails on any uncaught error or console error).

import { expect, type Locator, type Page } from '@playwright/test';

export const SHOTS = 'test-results';

/** Fails the test on uncaught page errors and console errors (React warnings included): check it is empty. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
  });
  return errors;
}

/** Opens the studio and waits for the engine worker to report the SwiftShader adapter. */
export async function openStudio(page: Page): Promise<void> {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();
  await expect(page.getByTestId('adapter-badge')).toContainText('swiftshader', { timeout: 90_000 });
}

export async function panel(page: Page, id: string): Promise<void> {
  await page.getByTestId(`nav-${id}`).click();
  await expect(page.locator(`[data-panel="${id}"]`)).toBeVisible();
}

export async function setNumber(field: Locator, value: string): Promise<void> {
  await field.fill(value);
  await expect(field).toHaveValue(value);
}

/** A full-page screenshot from the top (the header and the nav are sticky). */
export async function shot(page: Page, name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** Points the studio at a Hub endpoint (the local test Hub) before the page loads. */
export async function pointAtHub(page: Page, url: string): Promise<void> {
  await page.addInitScript((u) => localStorage.setItem('qlora-studio.hub.endpoint', u), url);
}
