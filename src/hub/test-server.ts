// A local Hugging Face Hub for tests (Node, node:http, 127.0.0.1, random port): serves folders and
// in-memory files in the Hub's URL layout — /api/models/{id}[/revision/{rev}][?blobs=true],
// /{id}/resolve/{rev}/{file} (302 to /cdn/... for LFS-sized files, like the Hub's CDN) — with Range,
// If-Range, ETag and CORS (for the browser tests). Faults can be injected per request: an HTTP
// status, a connection cut after K body bytes, a stall, a Content-Length larger than the body,
// Range ignored. Body bytes sent are counted per file, so tests can prove no byte went twice.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { writeSafetensors } from '../formats/safetensors.ts';
import { modelTensorShapes } from '../model/names.ts';
import { randomWeights, tinyConfig, tinyConfigJson } from '../model/tiny-model.ts';
import { sharedPath } from '../node/shared.ts';

export interface TestRepo {
  id: string;
  /** A folder whose top-level files are served. */
  dir?: string;
  files?: Record<string, Uint8Array | string>;
  /** Gated: every request must carry `Authorization: Bearer <token>`. */
  token?: string;
}

export interface Fault {
  repo?: string;
  /** A file name, or "api" for the repo-info request; absent: any request of the repo. */
  file?: string;
  status?: number;
  retryAfter?: number;
  /** Send this many body bytes, then close the connection. */
  cutAfter?: number;
  /** Send this many body bytes, then hold the connection open (until the client leaves or close()). */
  stallAfter?: number;
  /** Announce a Content-Length this many bytes larger than the body, send the body, close. */
  extraLength?: number;
  /** Answer a Range request with 200 and the whole file. */
  ignoreRange?: boolean;
  /** Requests it applies to (default 1; Infinity: all). */
  times?: number;
}

export interface RequestLog {
  method: string;
  url: string;
  status: number;
  range?: string;
  ifRange?: string;
  auth: boolean;
  file?: string;
  /** Body bytes sent. */
  bytes: number;
}

interface ServedFile {
  bytes: Uint8Array;
  sha256: string;
  blobId: string;
  listedSize?: number;
}

interface Served {
  id: string;
  token?: string;
  files: Map<string, ServedFile>;
  commit: string;
}

export interface TestHub {
  url: string;
  port: number;
  requests: RequestLog[];
  fault(f: Fault): void;
  clearFaults(): void;
  /** Body bytes sent for `file` of `repo` (since start or resetCounters). */
  sent(repo: string, file: string): number;
  resetCounters(): void;
  /** Replaces (or adds) a file: new sha256, blob id, ETag and commit. */
  setFile(repo: string, name: string, bytes: Uint8Array): void;
  /** Makes the API list `size` for a file (a lie when it differs from the bytes). */
  setListedSize(repo: string, name: string, size: number): void;
  file(repo: string, name: string): ServedFile;
  close(): Promise<void>;
}

/** Files at or above this size are LFS files (sha256 listed, 302 to /cdn/). */
export const LFS_THRESHOLD = 1024;
const CUT_DELAY_MS = 60;

const sha = (algo: string, ...parts: (Uint8Array | string)[]) => {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

function servedFile(bytes: Uint8Array): ServedFile {
  return { bytes, sha256: sha('sha256', bytes), blobId: sha('sha1', `blob ${bytes.byteLength}\0`, bytes) };
}

const etagOf = (f: ServedFile) => `"${f.bytes.byteLength >= LFS_THRESHOLD ? f.sha256 : f.blobId}"`;

function commitOf(files: Map<string, ServedFile>): string {
  return sha('sha1', ...[...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, f]) => `${n}:${f.sha256}\n`));
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Range, Content-Length, ETag, Accept-Ranges, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, X-Error-Code',
};

export async function startTestHub(repos: TestRepo[]): Promise<TestHub> {
  const served = new Map<string, Served>();
  for (const r of repos) {
    const files = new Map<string, ServedFile>();
    if (r.dir) {
      for (const name of readdirSync(r.dir).sort()) {
        if (statSync(join(r.dir, name)).isFile()) files.set(name, servedFile(new Uint8Array(readFileSync(join(r.dir, name)))));
      }
    }
    for (const [name, v] of Object.entries(r.files ?? {})) files.set(name, servedFile(typeof v === 'string' ? new TextEncoder().encode(v) : v));
    served.set(r.id, { id: r.id, token: r.token, files, commit: commitOf(files) });
  }
  const faults: (Fault & { left: number })[] = [];
  const counters = new Map<string, number>();
  const requests: RequestLog[] = [];
  const sockets = new Set<Socket>();

  const takeFault = (repo: string, file: string, kind: 'status' | 'body'): Fault | undefined => {
    const i = faults.findIndex((f) => f.left > 0 && (!f.repo || f.repo === repo) && (!f.file || f.file === file) &&
      (kind === 'status' ? f.status !== undefined : f.status === undefined));
    if (i < 0) return undefined;
    faults[i]!.left--;
    return faults[i];
  };

  const server = createServer((req, res) => {
    const log: RequestLog = {
      method: req.method ?? 'GET', url: req.url ?? '/', status: 0, bytes: 0, auth: !!req.headers.authorization,
      range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined,
    };
    requests.push(log);
    res.on('close', () => (log.status ||= res.statusCode));
    try {
      route(req, res, log);
    } catch (e) {
      send(res, log, 500, { error: String(e) });
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function send(res: ServerResponse, log: RequestLog, status: number, body: unknown, headers: Record<string, string> = {}) {
    log.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, { ...CORS, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  }

  function authorized(repo: Served, req: IncomingMessage): boolean {
    return !repo.token || req.headers.authorization === `Bearer ${repo.token}`;
  }

  function route(req: IncomingMessage, res: ServerResponse, log: RequestLog) {
    const u = new URL(req.url ?? '/', 'http://localhost');
    const path = u.pathname.split('/').map(decodeURIComponent).join('/');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...CORS,
        'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
        'Access-Control-Allow-Headers': 'Range, If-Range, Authorization, Accept, Content-Type',
        'Access-Control-Max-Age': '600',
      });
      log.status = 204;
      return res.end();
    }
    const error = (status: number, code: string, message: string) => send(res, log, status, { error: message }, { 'X-Error-Code': code });
    const faulted = (repo: string, file: string) => {
      const f = takeFault(repo, file, 'status');
      if (!f) return false;
      send(res, log, f.status!, { error: `injected ${f.status}` }, f.retryAfter !== undefined ? { 'Retry-After': String(f.retryAfter) } : {});
      return true;
    };
    if (path.startsWith('/api/models/')) {
      let rest = path.slice('/api/models/'.length);
      let rev = 'main';
      const r = rest.indexOf('/revision/');
      if (r >= 0) {
        rev = rest.slice(r + '/revision/'.length);
        rest = rest.slice(0, r);
      }
      const repo = served.get(rest);
      if (!repo) return error(404, 'RepoNotFound', 'Repository not found');
      if (!authorized(repo, req)) return error(401, 'GatedRepo', 'Access to this repo is restricted: authenticate');
      if (faulted(repo.id, 'api')) return;
      if (rev !== 'main' && rev !== repo.commit) return error(404, 'RevisionNotFound', 'Invalid rev id');
      const blobs = u.searchParams.get('blobs') === 'true';
      const siblings = [...repo.files].map(([name, f]) => {
        const size = f.listedSize ?? f.bytes.byteLength;
        const s: Record<string, unknown> = { rfilename: name };
        if (blobs) {
          s.blobId = f.blobId;
          s.size = size;
          if (f.bytes.byteLength >= LFS_THRESHOLD) s.lfs = { sha256: f.sha256, size, pointerSize: 134 };
        }
        return s;
      });
      return send(res, log, 200, { _id: sha('sha1', repo.id).slice(0, 24), id: repo.id, modelId: repo.id, sha: repo.commit, private: !!repo.token, gated: repo.token ? 'manual' : false, siblings });
    }
    const cdn = path.startsWith('/cdn/');
    const at = cdn ? -1 : path.indexOf('/resolve/');
    let repo: Served | undefined;
    let name = '';
    let rev = '';
    if (cdn) {
      // /cdn/<id>/<commit>/<file>: ids have one or two segments; try both.
      const parts = path.slice(5).split('/');
      for (const n of [2, 1]) {
        const cand = served.get(parts.slice(0, n).join('/'));
        if (cand && parts[n] === cand.commit) {
          repo = cand;
          name = parts.slice(n + 1).join('/');
          rev = cand.commit;
          break;
        }
      }
      if (!repo) return error(404, 'EntryNotFound', 'Entry not found');
    } else if (at > 0) {
      repo = served.get(path.slice(1, at));
      if (!repo) return error(404, 'RepoNotFound', 'Repository not found');
      const after = path.slice(at + '/resolve/'.length);
      rev = after.slice(0, after.indexOf('/'));
      name = after.slice(rev.length + 1);
      if (!authorized(repo, req)) return error(401, 'GatedRepo', 'Access to this repo is restricted: authenticate');
      if (rev !== 'main' && rev !== repo.commit) return error(404, 'RevisionNotFound', 'Invalid rev id');
    } else {
      return error(404, 'NotFound', 'Not found');
    }
    const file = repo.files.get(name);
    if (!file) return error(404, 'EntryNotFound', 'Entry not found');
    log.file = name;
    const etag = etagOf(file);
    if (!cdn) {
      if (faulted(repo.id, name)) return;
      if (file.bytes.byteLength >= LFS_THRESHOLD) {
        log.status = 302;
        res.writeHead(302, {
          ...CORS,
          Location: `http://${req.headers.host}/cdn/${repo.id}/${repo.commit}/${name.split('/').map(encodeURIComponent).join('/')}`,
          ETag: etag, 'X-Linked-Etag': etag, 'X-Linked-Size': String(file.bytes.byteLength), 'X-Repo-Commit': repo.commit, 'Content-Length': '0',
        });
        return res.end();
      }
    }
    serveBytes(req, res, log, repo, name, file, etag);
  }

  function serveBytes(req: IncomingMessage, res: ServerResponse, log: RequestLog, repo: Served, name: string, file: ServedFile, etag: string) {
    const size = file.bytes.byteLength;
    const fault = takeFault(repo.id, name, 'body');
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    const headers: Record<string, string> = { ...CORS, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: etag, 'X-Repo-Commit': repo.commit };
    if (range && !fault?.ignoreRange && (!ifRange || ifRange === etag)) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (m) {
        start = Number(m[1]);
        end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
        if (start >= size || start > end) {
          log.status = 416;
          res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': '0' });
          return res.end();
        }
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      }
    }
    const body = file.bytes.subarray(start, end + 1);
    headers['Content-Length'] = String(body.byteLength + (fault?.extraLength ?? 0));
    log.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return res.end();
    const key = `${repo.id}/${name}`;
    const count = (n: number) => {
      counters.set(key, (counters.get(key) ?? 0) + n);
      log.bytes += n;
    };
    const cutAt = fault?.cutAfter ?? fault?.stallAfter;
    if (cutAt !== undefined || fault?.extraLength) {
      const part = body.subarray(0, Math.min(cutAt ?? body.byteLength, body.byteLength));
      count(part.byteLength);
      res.write(part, () => {
        // Give the client time to read what was sent, then drop the connection (not for a stall).
        if (fault?.stallAfter === undefined) setTimeout(() => res.socket?.destroy(), CUT_DELAY_MS);
      });
      return;
    }
    count(body.byteLength);
    res.end(body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const repoOf = (id: string) => {
    const r = served.get(id);
    if (!r) throw new Error(`test hub: no repo ${id}`);
    return r;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    fault: (f) => faults.push({ ...f, left: f.times ?? 1 }),
    clearFaults: () => void faults.splice(0),
    sent: (repo, file) => counters.get(`${repo}/${file}`) ?? 0,
    resetCounters: () => {
      counters.clear();
      requests.splice(0);
    },
    setFile: (id, name, bytes) => {
      const r = repoOf(id);
      r.files.set(name, servedFile(bytes));
      r.commit = commitOf(r.files);
    },
    setListedSize: (id, name, size) => {
      repoOf(id).files.get(name)!.listedSize = size;
    },
    file: (id, name) => {
      const f = repoOf(id).files.get(name);
      if (!f) throw new Error(`test hub: no file ${name} in ${id}`);
      return f;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A tiny random Llama model as files: config.json, two safetensors shards and their index. */
export function tinyModelFiles(seed = 1): Record<string, Uint8Array | string> {
  const config = tinyConfig('llama');
  const shapes = new Map(modelTensorShapes(config).map((t) => [t.name, t.shape]));
  const weights = [...randomWeights(config, seed)];
  const half = Math.ceil(weights.length / 2);
  const shards = [weights.slice(0, half), weights.slice(half)];
  const files: Record<string, Uint8Array | string> = { 'config.json': JSON.stringify(tinyConfigJson('llama'), null, 2) };
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((ts, i) => {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    files[name] = writeSafetensors(ts.map(([n, data]) => ({ name: n, dtype: 'F32' as const, shape: shapes.get(n)!, data })));
    for (const [n, data] of ts) {
      weightMap[n] = name;
      total += data.byteLength;
    }
  });
  files['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2);
  return files;
}

/** The standard test repos: "test/tiny" (generated) and "test/stories260K" when ../shared has it. */
export function standardRepos(): TestRepo[] {
  const repos: TestRepo[] = [{ id: 'test/tiny', files: tinyModelFiles() }];
  const dir = sharedPath('models/stories260K');
  if (dir) repos.push({ id: 'test/stories260K', dir });
  return repos;
}
