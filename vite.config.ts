// Vite config for the studio (the browser shell). The engine runs in a module Web Worker;
// WGSL kernels in shaders/ are bundled as raw text (import.meta.glob + ?raw in src/gpu/browser.ts).
// The Node-only `webgpu` package (Dawn) and src/gpu/node.ts must never reach the browser:
// the optimizer skips `webgpu`, and a guard fails the build if client code imports either.

import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const NODE_ONLY = [/^webgpu(\/|$)/, /\/src\/gpu\/node\.ts$/, /^node:/];

function nodeOnlyGuard(): Plugin {
  return {
    name: 'qlora:node-only-guard',
    enforce: 'pre',
    resolveId(id, importer, options) {
      if (options?.ssr || !importer || importer.includes('/node_modules/')) return null;
      if (NODE_ONLY.some((re) => re.test(id) || re.test(id.replace(/\?.*$/, '')))) {
        this.error(`${id} is Node-only and cannot be bundled for the browser (imported from ${importer})`);
      }
      return null;
    },
  };
}

export default defineConfig({
  plugins: [nodeOnlyGuard(), react()],
  server: {
    host: 'localhost',
    port: 5173,
    strictPort: true,
    watch: { ignored: ['**/test-results/**', '**/playwright-report/**', '**/scratch/**', '**/bench-results/**'] },
  },
  preview: { host: 'localhost', port: 4173, strictPort: true },
  worker: { format: 'es' },
  optimizeDeps: {
    // Only the studio's own page is an entry (never a Playwright report or other stray HTML).
    entries: ['index.html'],
    include: ['react', 'react/jsx-runtime', 'react/jsx-dev-runtime', 'react-dom/client', 'zustand', 'idb-keyval', 'fflate', 'uplot'],
    exclude: ['webgpu'],
  },
  build: { target: 'es2022', sourcemap: true },
});
