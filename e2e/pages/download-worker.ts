// The e2e download worker: the same downloader and IndexedDB store inside a module Web Worker.

import { download, storedSha } from './download-shared.ts';

self.onmessage = async (ev: MessageEvent<{ op: 'ping' | 'download' | 'sha'; db: string; endpoint?: string; repo?: string; file?: string }>) => {
  const m = ev.data;
  try {
    if (m.op === 'ping') self.postMessage({ ok: true });
    else if (m.op === 'download') self.postMessage(await download(m.db, m.endpoint!, m.repo!));
    else self.postMessage(await storedSha(m.db, m.repo!, m.file!));
  } catch (e) {
    self.postMessage({ ok: false, code: 'worker', message: String(e) });
  }
};
