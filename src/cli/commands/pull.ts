// `qlora pull <repo-id>`: downloads a model from the Hugging Face Hub (or HF_ENDPOINT / --endpoint)
// into the cache folder ($QLORA_CACHE or ~/.cache/qlora), resuming whatever an earlier pull left.
// Progress goes to stderr; stdout gets the folder of the model's files (or --json). The token comes
// from an environment variable (--token-env, default HF_TOKEN) and is never printed.
// --quantize nf4|fp4 also builds a bnb-4bit copy as each file lands (the cache entry
// <repo>@<rev>+nf4, see src/storage/quantize-on-download.ts); --drop-original then deletes the
// full-precision files once the copy is complete. stdout then gets the 4-bit copy's folder.

import { statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { choice, CliError, formatBytes, num, printJson, type Command } from '../args.ts';
import { DEFAULT_ENDPOINT } from '../../hub/hub-api.ts';
import { downloadModel, type DownloadProgress, type StorageNumbers } from '../../hub/hub-client.ts';
import { defaultCacheDir, FsStore } from '../../node/fs-store.ts';
import { parseRepoArg } from '../../node/resolve-model.ts';
import { modelPrefix } from '../../storage/layout.ts';
import { readManifest } from '../../storage/model-store.ts';
import { QuantizeOnDownload, type QuantizeOnDownloadResult } from '../../storage/quantize-on-download.ts';

/** Free space of the disk holding `dir` (its nearest existing ancestor). */
export function diskEstimate(dir: string): () => Promise<StorageNumbers> {
  return async () => {
    let d = dir;
    while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
    const s = await statfs(d);
    const quota = s.blocks * s.bsize;
    return { quota, usage: quota - s.bavail * s.bsize };
  };
}

const secs = (s: number) => (s < 90 ? `${Math.ceil(s)}s` : s < 5400 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`);

/** Progress lines on stderr: one per file state change, the total at most once a second. */
function reporter(write: (line: string) => void) {
  const seen = new Map<string, string>();
  let last = 0;
  return (p: DownloadProgress) => {
    const f = p.file;
    if (f && seen.get(f.name) !== f.status) {
      seen.set(f.name, f.status);
      if (f.status === 'done') write(`  done     ${f.name} (${formatBytes(f.bytes)}${f.restarts ? `, ${f.restarts} restart${f.restarts > 1 ? 's' : ''}` : ''})`);
      else if (f.status === 'cached') write(`  cached   ${f.name} (${formatBytes(f.bytes)})`);
      else if (f.status === 'retrying') write(`  retrying ${f.name} at ${formatBytes(f.bytes)}`);
      else if (f.status === 'failed') write(`  failed   ${f.name}`);
      else if (f.status === 'downloading' && f.resumedFrom > 0) write(`  resuming ${f.name} at ${formatBytes(f.resumedFrom)}`);
    }
    const t = Date.now();
    if (t - last < 1000 && !(p.total.filesDone === p.total.files)) return;
    last = t;
    const tt = p.total;
    const pct = tt.size ? ` (${((100 * tt.bytes) / tt.size).toFixed(1)}%)` : '';
    const rate = tt.rate > 0 ? `  ${formatBytes(Math.round(tt.rate))}/s` : '';
    const eta = tt.eta !== null && tt.rate > 0 && tt.bytes < (tt.size ?? 0) ? `  ETA ${secs(tt.eta)}` : '';
    write(`  ${formatBytes(tt.bytes)}${tt.size !== null ? ` / ${formatBytes(tt.size)}` : ''}${pct}${rate}${eta}  [${tt.filesDone}/${tt.files} files]`);
  };
}

export const pullCommand: Command = {
  name: 'pull',
  summary: 'download a model from the Hugging Face Hub into the cache (resumable)',
  usage: 'qlora pull <repo-id>[@revision] [--revision main] [--endpoint URL] [--token-env HF_TOKEN] [--parallel 3] [--quantize nf4|fp4|none] [--drop-original] [--json]',
  options: {
    revision: { type: 'string' },
    quantize: { type: 'string' },
    'drop-original': { type: 'boolean' },
    endpoint: { type: 'string' },
    'token-env': { type: 'string' },
    parallel: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new CliError(`expected one repo id\nusage: ${this.usage}`);
    const id = parseRepoArg(positionals[0]!);
    if (!id) throw new CliError(`"${positionals[0]}" is not a repo id: expected owner/name (letters, digits, ".", "_", "-")`);
    const revision = (values.revision as string | undefined) ?? id.revision ?? 'main';
    const endpoint = (values.endpoint as string | undefined) || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT;
    const tokenEnv = (values['token-env'] as string | undefined) ?? 'HF_TOKEN';
    const token = process.env[tokenEnv] || undefined;
    if (values['token-env'] !== undefined && !token) throw new CliError(`--token-env ${tokenEnv}: the environment variable ${tokenEnv} is not set`);
    const quant = choice(values, 'quantize', ['nf4', 'fp4', 'none'], 'none');
    if (values['drop-original'] && quant === 'none') throw new CliError('--drop-original needs --quantize nf4|fp4 (it drops the full-precision files once the 4-bit copy is made)');
    const store = new FsStore(defaultCacheDir());
    const q = quant === 'none' ? null : new QuantizeOnDownload(store, id.repo, revision, { type: quant, keepOriginal: values['drop-original'] !== true });
    const folder = (rev: string) => join(store.root, ...modelPrefix(id.repo, rev).split('/').filter(Boolean), 'files');
    if (q) {
      // The 4-bit copy is complete and the original was dropped: nothing to download.
      const made = await readManifest(store, id.repo, q.revision).catch(() => undefined);
      if (made?.complete && !(await readManifest(store, id.repo, revision).catch(() => undefined))) {
        process.stderr.write(`${id.repo}@${q.revision} is in the cache already (the original was dropped; \`qlora cache rm ${id.repo}@${q.revision}\` to pull again)\n`);
        if (values.json) printJson({ repo: id.repo, revision, quantized: { revision: q.revision, path: folder(q.revision) } });
        else process.stdout.write(folder(q.revision) + '\n');
        return;
      }
    }
    const ac = new AbortController();
    const onSig = () => ac.abort();
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    const log = (line: string) => process.stderr.write(line + '\n');
    log(`pulling ${id.repo}@${revision} from ${endpoint}${token ? ` (with the token in $${tokenEnv})` : ''} into ${store.root}`);
    try {
      const r = await downloadModel(store, id.repo, {
        revision,
        endpoint,
        token,
        signal: ac.signal,
        parallel: num(values, 'parallel', 3, { int: true, min: 1, max: 16 }),
        estimate: diskEstimate(store.root),
        persist: null,
        onProgress: reporter(log),
        onFileDone: q ? (f) => q.fileDone(f.name) : undefined,
      });
      const path = folder(revision);
      const kept = r.resumed ? `, ${formatBytes(r.resumed)} kept from an earlier pull` : '';
      log(`${id.repo}@${revision}${r.commit ? ` (commit ${r.commit.slice(0, 12)})` : ''}: ${r.files.length} files, ${formatBytes(r.fetched)} fetched${kept} in ${(r.elapsedMs / 1000).toFixed(1)}s`);
      let qr: QuantizeOnDownloadResult | undefined;
      if (q) {
        qr = await q.finish();
        log(`${id.repo}@${qr.revision}: ${quant} copy complete, ${qr.files} files, ${formatBytes(qr.bytes)}${qr.droppedOriginal ? ` (the original ${id.repo}@${revision} was removed)` : ''}`);
      }
      if (values.json) {
        printJson({
          repo: r.repo, revision: r.revision, commit: r.commit, path, fetched: r.fetched, resumed: r.resumed, restarts: r.restarts, elapsedMs: r.elapsedMs,
          files: r.files.map((f) => ({ name: f.name, size: f.size, status: f.status, fetched: f.fetched, resumedFrom: f.resumedFrom, restarts: f.restarts, sha256: r.manifest.files.find((m) => m.name === f.name)?.sha256 })),
          ...(qr ? { quantized: { ...qr, path: folder(qr.revision) } } : {}),
        });
      } else {
        process.stdout.write((qr ? folder(qr.revision) : path) + '\n');
      }
    } finally {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
  },
};
