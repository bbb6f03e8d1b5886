// The engine's Web Worker: GPU work runs here so the page never freezes. It speaks the protocol
// in protocol.ts; uncaught errors and unhandled rejections are sent to the page as messages.

import { createBrowserRuntime, webgpuMissingReason } from '../gpu/browser.ts';
import { IdbStore } from '../storage/idb-store.ts';
import { MemoryStore } from '../storage/memory-store.ts';
import { EngineHost } from './engine-host.ts';
import { opfsOf } from './opfs-sink.ts';
import type { EngineReply } from './protocol.ts';

const scope = self as unknown as DedicatedWorkerGlobalScope;

const host = new EngineHost((reply: EngineReply) => scope.postMessage(reply), {
  gpu: () => (typeof navigator !== 'undefined' ? navigator.gpu : undefined),
  missingReason: webgpuMissingReason,
  createRuntime: (onError) => createBrowserRuntime({ onError }),
  // Models, runs and checkpoints in IndexedDB (a private window without it: memory, lost on close).
  store: typeof indexedDB !== 'undefined' ? new IdbStore() : new MemoryStore('memory (no IndexedDB in this browser)'),
  storage: typeof navigator !== 'undefined' && navigator.storage ? navigator.storage : null,
  // The merged model streams into the Origin Private File System (sync access handles: this is a dedicated worker).
  opfs: typeof navigator !== 'undefined' ? opfsOf(navigator.storage) : null,
});

scope.addEventListener('message', (ev: MessageEvent) => void host.receive(ev.data));
scope.addEventListener('messageerror', () => host.reportUnattached(new Error('the engine received a message it could not decode')));
scope.addEventListener('error', (ev: ErrorEvent) => {
  ev.preventDefault(); // reported below as a message, so the page does not see it twice
  host.reportUnattached(ev.error ?? new Error(ev.message));
});
scope.addEventListener('unhandledrejection', (ev: PromiseRejectionEvent) => {
  ev.preventDefault();
  host.reportUnattached(ev.reason);
});
