// A model argument of the CLI as ModelFiles: a folder path, or a Hub repo id ("owner/name" or
// "owner/name@revision") that `qlora pull` put in the cache ($QLORA_CACHE or ~/.cache/qlora).
// A folder wins when both could match.

import { existsSync, statSync } from 'node:fs';
import type { ModelFiles } from '../model/model-files.ts';
import { checkRepoId } from '../storage/layout.ts';
import { findCachedModel, openStoredModel } from '../storage/model-store.ts';
import { defaultCacheDir, FsStore } from './fs-store.ts';
import { modelFolder } from './model-folder.ts';

/** "owner/name[@rev]" as {repo, revision}, or null when `arg` is not shaped like a repo id. */
export function parseRepoArg(arg: string): { repo: string; revision?: string } | null {
  const at = arg.lastIndexOf('@');
  const repo = at > 0 ? arg.slice(0, at) : arg;
  const revision = at > 0 ? arg.slice(at + 1) : undefined;
  if (revision === '') return null;
  try {
    checkRepoId(repo);
  } catch {
    return null;
  }
  return { repo, revision };
}

export async function resolveModelArg(arg: string, opts: { cacheDir?: string } = {}): Promise<ModelFiles> {
  if (existsSync(arg) && statSync(arg).isDirectory()) return modelFolder(arg);
  const id = parseRepoArg(arg);
  if (!id) throw new Error(`${arg}: no such folder`);
  const store = new FsStore(opts.cacheDir ?? defaultCacheDir());
  const m = await findCachedModel(store, id.repo, id.revision);
  if (!m) {
    throw new Error(`${arg}: no such folder, and not in the model cache ${store.root}; download it with \`qlora pull ${id.repo}${id.revision ? ` --revision ${id.revision}` : ''}\``);
  }
  return openStoredModel(store, m.repo, m.revision);
}
