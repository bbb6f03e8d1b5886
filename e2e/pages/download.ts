// The e2e download page: exposes window.e2e for the Playwright test (start or await a download
// in the page or in a worker, partial sizes, sha256 of stored files). The IndexedDB database is
// named by ?db= (each test uses its own; a reload keeps it).

import { download, storedSha, storeOf, type Outcome } from './download-shared.ts';
import { fileKey } from '../../src/storage/layout.ts';
import { listCachedModels } from '../../src/storage/model-store.ts';
import { IdbStore } from '../../src/storage/idb-store.ts';

function inWorker<T>(msg: unknown): Promise<T> {
  const w = new Worker(new URL('./download-worker.ts', import.meta.url), { type: 'module' });
  return new Promise<T>((resolve, reject) => {
    w.onmessage = (ev) => {
      resolve(ev.data as T);
      w.terminate();
    };
    w.onerror = (ev) => reject(new Error(`worker: ${ev.message}`));
    w.postMessage(msg);
  });
}

const db = new URLSearchParams(location.search).get('db') || 'qlora-e2e';
const store = storeOf(db);

const api = {
  db,
  download: (endpoint: string, repo: string, opts: { retries?: number; token?: string } = {}) => download(db, endpoint, repo, opts),
  /** Starts a download without waiting (the test reloads the page under it). */
  start(endpoint: string, repo: string): void {
    void download(db, endpoint, repo, { stallTimeoutMs: 600_000 });
  },
  downloadInWorker: (endpoint: string, repo: string) => inWorker<Outcome>({ op: 'download', db, endpoint, repo }),
  shaInWorker: (repo: string, file: string) => inWorker<{ sha256: string; size: number } | null>({ op: 'sha', db, repo, file }),
  pingWorker: () => inWorker<{ ok: boolean }>({ op: 'ping', db }),
  storedSha: (repo: string, file: string) => storedSha(db, repo, file),
  partialSize: (repo: string, file: string) => store.partialSize(fileKey(repo, 'main', file)),
  list: () => listCachedModels(store),
  /** The class itself, for the store-semantics test. */
  IdbStore,
};

declare global {
  interface Window {
    e2e: typeof api;
  }
}
window.e2e = api;
document.body.dataset.ready = '1';
