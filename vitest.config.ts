import { defineConfig } from 'vitest/config';

// Unit tests run in Node. GPU tests share one Dawn device per worker and are slow on
// SwiftShader, so files run in a small fixed pool with generous timeouts.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
