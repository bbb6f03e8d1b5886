// `qlora cache ls [--json]` lists the models in the cache folder ($QLORA_CACHE or ~/.cache/qlora)
// with sizes and download state; `qlora cache rm <repo-id>[@rev]` deletes one (every revision
// without @rev), unfinished downloads included.

import { join } from 'node:path';
import { CliError, formatBytes, printJson, table, type Command } from '../args.ts';
import { defaultCacheDir, FsStore } from '../../node/fs-store.ts';
import { parseRepoArg } from '../../node/resolve-model.ts';
import { deleteModel, listCachedModels, type CachedModel } from '../../storage/model-store.ts';

const status = (m: CachedModel) => {
  if (m.complete && m.quantized) return `complete (${m.quantized.type} of ${m.quantized.from})`;
  if (m.complete) return m.source === 'local' ? 'complete (local)' : 'complete';
  const have = m.bytes + m.partialBytes;
  if (m.quantized) return `partial ${m.quantized.type} of ${m.quantized.from} (pull again with --quantize ${m.quantized.type} to finish)`;
  return `partial${m.size ? ` ${((100 * have) / m.size).toFixed(0)}%` : ''} (pull again to resume)`;
};

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'list (ls) or delete (rm) the models in the download cache',
  usage: 'qlora cache ls [--json] | qlora cache rm <repo-id>[@revision]',
  options: { json: { type: 'boolean' } },
  async run(values, positionals) {
    const [sub, ...rest] = positionals;
    const store = new FsStore(defaultCacheDir());
    const pathOf = (m: CachedModel) => join(store.root, ...m.prefix.split('/').filter(Boolean));
    if (sub === 'ls' && rest.length === 0) {
      const models = await listCachedModels(store);
      if (values.json) {
        printJson({ root: store.root, models: models.map((m) => ({ ...m, path: pathOf(m) })) });
        return;
      }
      if (!models.length) {
        process.stdout.write(`no models in the cache (${store.root})\n`);
        return;
      }
      const rows = [['model', 'revision', 'files', 'size', 'status']];
      for (const m of models) rows.push([m.repo, m.revision, `${m.filesDone}/${m.files}`, formatBytes(m.bytes + m.partialBytes), status(m)]);
      const total = models.reduce((n, m) => n + m.bytes + m.partialBytes, 0);
      process.stdout.write(`${table(rows, [3])}\n\n${models.length} model${models.length > 1 ? 's' : ''}, ${formatBytes(total)} in ${store.root}\n`);
      return;
    }
    if (sub === 'rm' && rest.length === 1) {
      const id = parseRepoArg(rest[0]!);
      if (!id) throw new CliError(`"${rest[0]}" is not a repo id: expected owner/name or owner/name@revision`);
      const gone = await deleteModel(store, id.repo, id.revision);
      if (!gone.length) {
        const all = (await listCachedModels(store)).map((m) => `${m.repo}@${m.revision}`);
        throw new CliError(`no cached model ${rest[0]} in ${store.root}${all.length ? ` (cached: ${all.join(', ')})` : ' (the cache is empty)'}`);
      }
      for (const m of gone) process.stdout.write(`removed ${m.repo}@${m.revision} (${formatBytes(m.bytes + m.partialBytes)})\n`);
      return;
    }
    throw new CliError(`usage: ${this.usage}`);
  },
};
