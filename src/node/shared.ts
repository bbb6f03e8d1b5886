// Locating ../shared (reference models, tokenizers, corpora) beside the repo. Tests and benchmarks
// that need it skip with a printed reason when it is absent (a user's fresh clone).

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED = resolve(REPO_ROOT, '../shared');

/** Absolute path of `rel` inside ../shared, or null (with a printed reason) when it is absent. */
export function sharedPath(rel: string): string | null {
  const p = join(SHARED, rel);
  if (existsSync(p)) return p;
  console.log(`skipping: ${p} is absent (the reference folder ../shared is not beside this checkout)`);
  return null;
}
