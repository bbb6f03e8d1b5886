// Browser tests: headless Debian Chromium (/usr/bin/chromium, never a downloaded browser) with
// WebGPU on SwiftShader, Chromium's CPU Vulkan driver, so they run on machines without a GPU.
// `--enable-unsafe-webgpu` is the one flag needed on Linux (Chromium 156): without it the page
// sees navigator.gpu but requestAdapter() returns null. The page must be a secure context
// (http://localhost is). Playwright itself already adds --no-sandbox, --no-first-run,
// --disable-background-networking, --disable-component-update and --disable-sync.

import { defineConfig } from '@playwright/test';

const PORT = 5173;

export default defineConfig({
  testDir: 'e2e',
  // Playwright empties its output folder before a run: keep it apart from the screenshots the
  // tests save under test-results/ and from scripts/test.mjs's test-results/summary/.
  outputDir: 'test-results/playwright',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 120_000, // SwiftShader: adapter start-up and kernels run on the CPU
  expect: { timeout: 30_000 },
  reporter: [['list']],
  use: {
    baseURL: `http://localhost:${PORT}`,
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--enable-unsafe-webgpu'],
    },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
  webServer: {
    command: `node_modules/.bin/vite --port ${PORT} --strictPort`,
    url: `http://localhost:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
