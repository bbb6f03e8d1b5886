// One example → token ids + a trained-token mask, for completion-only loss.
//
// The conversation is rendered ONCE with the chat template and tokenized once with offsets; assistant
// spans are character ranges of that rendered text, and a token is trained when its range overlaps a
// span. Spans are found by rendering prefixes (method 'prefix'): for assistant message i,
//   before = render(messages[:i], add_generation_prompt=true)   (else without the prompt)
//   through = render(messages[:i+1])
// must be prefixes of each other and of the full render; the answer is located in through[before.length:]
// (its text as given, else trimmed, for templates that strip) and the span runs from the answer's first
// character through the EOS text that follows it inside the turn. Templates without that prefix
// property (e.g. ones that rewrite earlier turns), or where the answer text occurs twice in its turn,
// fall back to 'markers': private-use characters around each answer, rendered once, located and
// removed; the result must equal the plain render.
//
// EOS: a turn whose rendered text has no EOS gets the EOS id inserted after its last token (trained).
// BOS: added once, only when the tokenizer adds BOS and the rendered text does not already start with it.
// The first token of every example is never trained (nothing in the example predicts it).

import { DataError } from './errors.ts';
import type { Example, Message } from './formats.ts';
import type { ChatTemplate } from './template.ts';
import type { DataTokenizer } from './tokenize.ts';

export type LabelMode = 'assistant' | 'all';

/** A trained character range of the rendered text. */
export interface TrainedSpan {
  start: number;
  end: number;
  /** Whether [start, end) ends with the EOS text the template emitted (else EOS is appended as a token). */
  hasEos: boolean;
}

export interface RenderedChat {
  text: string;
  spans: TrainedSpan[];
  method: 'prefix' | 'markers';
}

const OPEN = '\uE000';
const CLOSE = '\uE001';

function spanFromTurn(text: string, contentStart: number, contentEnd: number, turnEnd: number, eos: string | null): TrainedSpan {
  if (eos) {
    const e = text.indexOf(eos, contentEnd);
    if (e >= 0 && e + eos.length <= turnEnd) return { start: contentStart, end: e + eos.length, hasEos: true };
  }
  let end = turnEnd;
  while (end > contentEnd && /\s/.test(text[end - 1]!)) end--;
  return { start: contentStart, end, hasEos: false };
}

function byPrefixes(tpl: ChatTemplate, messages: readonly Message[], eos: string | null, strict: boolean): RenderedChat | null {
  const full = tpl.render(messages);
  const spans: TrainedSpan[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (m.role !== 'assistant') continue;
    let through: string;
    let before: string;
    try {
      through = i === messages.length - 1 ? full : tpl.render(messages.slice(0, i + 1));
      before = tpl.render(messages.slice(0, i), { addGenerationPrompt: true });
      if (!through.startsWith(before)) before = tpl.render(messages.slice(0, i));
    } catch {
      return null;
    }
    if (!full.startsWith(through) || !through.startsWith(before)) return null;
    // The answer inside this turn's text: as given, else trimmed (templates that strip it).
    let text = m.content;
    let at = through.indexOf(text, before.length);
    if (at < 0) {
      text = m.content.trim();
      at = through.indexOf(text, before.length);
    }
    if (at < 0) return null;
    // Ambiguous (e.g. answer "a" after a header "<|assistant|>" the generation prompt did not include):
    // let the marker method decide, and only fall back to the first occurrence.
    if (strict && through.lastIndexOf(text) !== at) return null;
    spans.push(spanFromTurn(full, at, at + text.length, through.length, eos));
  }
  return { text: full, spans, method: 'prefix' };
}

function byMarkers(tpl: ChatTemplate, messages: readonly Message[], eos: string | null): RenderedChat | null {
  if (messages.some((m) => m.content.includes(OPEN) || m.content.includes(CLOSE))) return null;
  const marked = tpl.render(messages.map((m) => (m.role === 'assistant' ? { role: m.role, content: OPEN + m.content + CLOSE } : m)));
  const plain = tpl.render(messages);
  let text = '';
  const ranges: Array<[number, number]> = [];
  let last = 0;
  for (let i = marked.indexOf(OPEN); i >= 0; i = marked.indexOf(OPEN, last)) {
    const j = marked.indexOf(CLOSE, i);
    if (j < 0) return null;
    text += marked.slice(last, i);
    const start = text.length;
    text += marked.slice(i + 1, j);
    ranges.push([start, text.length]);
    last = j + 1;
  }
  text += marked.slice(last);
  if (text !== plain || ranges.length !== messages.filter((m) => m.role === 'assistant').length) return null;
  const spans = ranges.map(([s, e], k) => {
    let q = e;
    while (q < text.length && /\s/.test(text[q]!)) q++;
    const next = k + 1 < ranges.length ? ranges[k + 1]![0] : text.length;
    return eos && text.startsWith(eos, q) && q < next ? { start: s, end: q + eos.length, hasEos: true } : { start: s, end: e, hasEos: false };
  });
  return { text, spans, method: 'markers' };
}

/** Renders a conversation and finds the trained span of every assistant message. */
export function renderChat(tpl: ChatTemplate, messages: readonly Message[]): RenderedChat {
  const eos = tpl.eosToken || null;
  const r = byPrefixes(tpl, messages, eos, true) ?? byMarkers(tpl, messages, eos) ?? byPrefixes(tpl, messages, eos, false);
  if (!r) {
    throw new DataError(`cannot locate the assistant messages in the text the chat template "${tpl.name}" renders ` +
      '(the template changes earlier turns or the message text)');
  }
  return r;
}

export interface TokenizedExample {
  ids: Int32Array;
  /** 1 where the token is a training target. */
  trained: Uint8Array;
  /** The rendered text and each token's [start, end) in it (inserted BOS/EOS are zero-width). */
  text: string;
  offsets: Int32Array;
}

/**
 * Renders and tokenizes one example. `labelMode` 'assistant' trains on the assistant spans (answers
 * plus their EOS); 'all' trains on every token. Raw text is BOS? + text + EOS, all trained.
 */
export function tokenizeExample(ex: Example, tok: DataTokenizer, tpl: ChatTemplate, labelMode: LabelMode = 'assistant'): TokenizedExample {
  let text: string;
  let spans: TrainedSpan[];
  if (ex.kind === 'chat') {
    ({ text, spans } = renderChat(tpl, ex.messages));
  } else {
    text = ex.text;
    spans = [{ start: 0, end: text.length, hasEos: false }];
  }
  const { ids, offsets } = tok.encodeWithOffsets(text);
  const outIds: number[] = [];
  const outOff: number[] = [];
  const trained: number[] = [];
  if (tok.addsBos && tok.bosId !== null && ids[0] !== tok.bosId) {
    outIds.push(tok.bosId);
    outOff.push(0, 0);
    trained.push(0);
  }
  let s = 0;
  for (let t = 0; t < ids.length; t++) {
    const [a, b] = offsets[t]!;
    while (s < spans.length && spans[s]!.end <= a) {
      closeSpan(spans[s]!, tok, outIds, outOff, trained, text);
      s++;
    }
    const sp = spans[s];
    const inSpan = sp !== undefined && a < sp.end && b > sp.start;
    outIds.push(ids[t]!);
    outOff.push(a, b);
    trained.push(labelMode === 'all' || inSpan ? 1 : 0);
  }
  while (s < spans.length) closeSpan(spans[s++]!, tok, outIds, outOff, trained, text);
  if (labelMode === 'all') trained.fill(1);
  if (trained.length) trained[0] = 0;
  return { ids: Int32Array.from(outIds), trained: Uint8Array.from(trained), text, offsets: Int32Array.from(outOff) };
}

/** Ends a span: checks the template's EOS became the EOS id, or appends the EOS id. */
function closeSpan(sp: TrainedSpan, tok: DataTokenizer, ids: number[], off: number[], trained: number[], text: string): void {
  if (tok.eosId === null) return;
  if (sp.hasEos) {
    const last = ids.length - 1;
    if (ids[last] !== tok.eosId) {
      throw new DataError(`the EOS text ${JSON.stringify(tok.eosToken)} at character ${sp.end - (tok.eosToken?.length ?? 0)} of the rendered ` +
        `text did not become the EOS token id ${tok.eosId} (got ${ids[last]}: ${JSON.stringify(text.slice(off[2 * last]!, off[2 * last + 1]!))})`);
    }
    return;
  }
  ids.push(tok.eosId);
  off.push(sp.end, sp.end);
  trained.push(1);
}
