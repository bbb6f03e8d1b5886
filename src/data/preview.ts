// Shows a tokenized example with its trained tokens marked: [[trained text]] in plain text, or green
// when ANSI colour is wanted. Built from token offsets into the rendered text, so the preview shows
// exactly what the model sees; inserted tokens (BOS/EOS with no text) are shown as their token string.

import type { TokenizedExample } from './labels.ts';
import { IGNORE } from './sequences.ts';
import type { DataTokenizer } from './tokenize.ts';

export type MarkStyle = 'brackets' | 'ansi';

export interface TrainedRun {
  text: string;
  trained: boolean;
}

/** The example as runs of text, each wholly trained or not. */
export function trainedRuns(ex: TokenizedExample, tok: DataTokenizer): TrainedRun[] {
  const runs: TrainedRun[] = [];
  const add = (text: string, trained: boolean) => {
    if (!text) return;
    const last = runs[runs.length - 1];
    if (last && last.trained === trained) last.text += text;
    else runs.push({ text, trained });
  };
  let cursor = 0;
  for (let t = 0; t < ex.ids.length; t++) {
    const a = ex.offsets[2 * t]!;
    const b = ex.offsets[2 * t + 1]!;
    const on = ex.trained[t] === 1;
    if (a === b) {
      const id = ex.ids[t]!;
      if (id === tok.bosId || id === tok.eosId) add(tok.idToToken(id) ?? '', on);
      continue;
    }
    if (a > cursor) add(ex.text.slice(cursor, a), false);
    if (b > cursor) {
      add(ex.text.slice(Math.max(cursor, a), b), on);
      cursor = b;
    }
  }
  add(ex.text.slice(cursor), false);
  return runs;
}

/** The example's text with trained runs marked. */
export function markTrained(ex: TokenizedExample, tok: DataTokenizer, style: MarkStyle = 'brackets'): string {
  return trainedRuns(ex, tok)
    .map((r) => (!r.trained ? r.text : style === 'ansi' ? `\x1b[32m${r.text}\x1b[0m` : `[[${r.text}]]`))
    .join('');
}

/** Labels as the batches carry them: the id where trained, else -100 (the first token never trained). */
export function exampleLabels(ex: TokenizedExample): number[] {
  return Array.from(ex.ids, (id, i) => (i > 0 && ex.trained[i] === 1 ? id : IGNORE));
}
