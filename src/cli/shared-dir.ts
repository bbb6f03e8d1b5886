// The reference folder ../shared beside a checkout (models, corpora), when it is there.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SHARED = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared');

/** The path of ../shared/models/<name>, or null when absent. */
export function sharedModel(name: string): string | null {
  const p = join(SHARED, 'models', name);
  return existsSync(join(p, 'config.json')) ? p : null;
}
