// Dataset row formats, detected from the first rows (or chosen by name), normalized to one shape:
// a chat `Conversation` (system/user/assistant messages) or raw text. Rows that do not fit are
// rejected with a reason kind (for counting) and a detail naming the field and what was expected.
//
//   messages    {"messages": [{"role": "system"|"user"|"assistant", "content": "…"}]}
//   sharegpt    {"conversations": [{"from": "system"|"human"|"gpt", "value": "…"}]}
//   alpaca      {"instruction": "…", "input": "…" (optional), "output": "…", "system": "…" (optional)}
//   completion  {"prompt": "…", "completion": "…"} (strings, or message lists as in TRL)
//   oasst       {"text": "### Human: … ### Assistant: …"} (Guanaco / openassistant-guanaco)
//   text        {"text": "…"} raw text, trained on every token, no chat template

import { DataError, typeName } from './errors.ts';

export type FormatName = 'messages' | 'sharegpt' | 'alpaca' | 'completion' | 'oasst' | 'text';
export const FORMAT_NAMES: readonly FormatName[] = ['messages', 'sharegpt', 'alpaca', 'completion', 'oasst', 'text'];
const ALIASES: Record<string, FormatName> = { chat: 'messages', conversations: 'sharegpt', guanaco: 'oasst', raw: 'text', 'prompt-completion': 'completion' };

export type Role = 'system' | 'user' | 'assistant';
export interface Message {
  role: Role;
  content: string;
}
export interface Conversation {
  messages: Message[];
}
export type Example = { kind: 'chat'; messages: Message[] } | { kind: 'text'; text: string };

export type Normalized = { ok: true; example: Example } | { ok: false; kind: string; reason: string };

/** Parses a format name (or alias); 'auto' passes through. Unknown names are an error listing the choices. */
export function parseFormatName(name: string): FormatName | 'auto' {
  const n = name.trim().toLowerCase();
  if (n === 'auto' || (FORMAT_NAMES as readonly string[]).includes(n)) return n as FormatName | 'auto';
  if (ALIASES[n]) return ALIASES[n];
  throw new DataError(`unknown format "${name}" (expected one of auto, ${FORMAT_NAMES.join(', ')})`);
}

const ROLE_MAP: Record<string, Role> = {
  system: 'system', user: 'user', human: 'user', assistant: 'assistant', gpt: 'assistant', chatgpt: 'assistant',
  model: 'assistant', bard: 'assistant', bing: 'assistant',
};

const fail = (kind: string, reason: string): Normalized => ({ ok: false, kind, reason });
const isFail = (v: unknown): v is Normalized => typeof v === 'object' && v !== null && !Array.isArray(v) && 'ok' in v;

/** Content as a string: a string, or OpenAI-style parts [{type: "text", text}] joined. */
function contentText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((p) => typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string')) {
    return v.map((p) => (p as { text: string }).text).join('');
  }
  return null;
}

/** A value that should be a list of messages: an array, or a JSON string of one (CSV cells). */
function messageList(v: unknown): unknown {
  if (typeof v === 'string' && /^\s*\[/.test(v)) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

/** Parses a list of {role, content} or {from, value} messages (or a failure). */
function parseMessages(raw: unknown, field: string): Message[] | Normalized {
  const list = messageList(raw);
  if (!Array.isArray(list)) return fail('wrong type', `"${field}": expected an array of messages, got ${typeName(list)}`);
  if (list.length === 0) return fail('empty conversation', `"${field}" is an empty conversation`);
  const messages: Message[] = [];
  for (const [i, m] of list.entries()) {
    const at = `${field}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return fail('wrong type', `${at}: expected a message object, got ${typeName(m)}`);
    const o = m as Record<string, unknown>;
    const roleKey = 'role' in o ? 'role' : 'from' in o ? 'from' : null;
    const contentKey = 'content' in o ? 'content' : 'value' in o ? 'value' : null;
    if (!roleKey) return fail('missing field', `${at}: missing "role" (or "from")`);
    if (!contentKey) return fail('missing field', `${at}: missing "content" (or "value")`);
    const rawRole = o[roleKey];
    const role = typeof rawRole === 'string' ? ROLE_MAP[rawRole.toLowerCase()] : undefined;
    if (!role) {
      return fail('unknown role', `${at}.${roleKey}: unknown role ${JSON.stringify(rawRole)} (expected system, user/human or assistant/gpt)`);
    }
    const content = contentText(o[contentKey]);
    if (content === null) return fail('wrong type', `${at}.${contentKey}: expected a string, got ${typeName(o[contentKey])}`);
    messages.push({ role, content });
  }
  return messages;
}

function normalizeMessages(raw: unknown, field: string): Normalized {
  const m = parseMessages(raw, field);
  return isFail(m) ? m : finishConversation(m, field);
}

/** Drops trailing non-assistant turns (never trained) and checks there is an assistant answer. */
function finishConversation(messages: Message[], field: string): Normalized {
  let last = messages.length - 1;
  while (last >= 0 && messages[last]!.role !== 'assistant') last--;
  if (last < 0) return fail('no assistant message', `"${field}" has no assistant message to train on`);
  const kept = messages.slice(0, last + 1);
  const empty = kept.findIndex((m) => m.role === 'assistant' && m.content.trim() === '');
  if (empty >= 0) return fail('empty assistant message', `${field}[${empty}]: the assistant message is empty`);
  return { ok: true, example: { kind: 'chat', messages: kept } };
}

function stringField(row: Record<string, unknown>, key: string, required: boolean): string | null | Normalized {
  const v = row[key];
  if (v === undefined || v === null) return required ? fail('missing field', `missing field "${key}" (expected a string)`) : null;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'string') return fail('wrong type', `"${key}": expected a string, got ${typeName(v)}`);
  return v;
}

function normalizeAlpaca(row: Record<string, unknown>): Normalized {
  const instruction = stringField(row, 'instruction', true);
  if (isFail(instruction)) return instruction;
  const input = stringField(row, 'input', false);
  if (isFail(input)) return input;
  const output = stringField(row, 'output', true);
  if (isFail(output)) return output;
  const system = stringField(row, 'system', false);
  if (isFail(system)) return system;
  if (!instruction!.trim()) return fail('empty field', '"instruction" is empty');
  if (!output!.trim()) return fail('empty assistant message', '"output" is empty');
  const user = input && input.trim() ? `${instruction}\n\n${input}` : instruction!;
  const messages: Message[] = [];
  if (system && system.trim()) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: user }, { role: 'assistant', content: output! });
  return { ok: true, example: { kind: 'chat', messages } };
}

function normalizeCompletion(row: Record<string, unknown>): Normalized {
  const p = messageList(row.prompt);
  const c = messageList(row.completion);
  if (Array.isArray(p) || Array.isArray(c)) {
    const a = Array.isArray(p) ? parseMessages(p, 'prompt') : typeof p === 'string' ? [{ role: 'user' as Role, content: p }] : null;
    const b = Array.isArray(c) ? parseMessages(c, 'completion') : typeof c === 'string' ? [{ role: 'assistant' as Role, content: c }] : null;
    if (a === null || isFail(a)) return a ?? fail('wrong type', `"prompt": expected a string or a list of messages, got ${typeName(p)}`);
    if (b === null || isFail(b)) return b ?? fail('wrong type', `"completion": expected a string or a list of messages, got ${typeName(c)}`);
    return finishConversation([...a, ...b], 'completion');
  }
  const prompt = stringField(row, 'prompt', true);
  if (isFail(prompt)) return prompt;
  const completion = stringField(row, 'completion', true);
  if (isFail(completion)) return completion;
  if (!completion!.trim()) return fail('empty assistant message', '"completion" is empty');
  return { ok: true, example: { kind: 'chat', messages: [{ role: 'user', content: prompt! }, { role: 'assistant', content: completion! }] } };
}

const OASST_TURN = /###\s*(Human|Assistant|System)\s*:/g;

/** Splits Guanaco-style text into turns at "### Human:" / "### Assistant:" markers. */
export function parseOasstText(text: string): Message[] {
  const messages: Message[] = [];
  const marks = [...text.matchAll(OASST_TURN)];
  for (const [i, m] of marks.entries()) {
    const start = m.index! + m[0].length;
    const end = i + 1 < marks.length ? marks[i + 1]!.index! : text.length;
    const who = m[1]!.toLowerCase();
    messages.push({ role: who === 'human' ? 'user' : who === 'assistant' ? 'assistant' : 'system', content: text.slice(start, end).trim() });
  }
  return messages;
}

function normalizeOasst(row: Record<string, unknown>): Normalized {
  const text = stringField(row, 'text', true);
  if (isFail(text)) return text;
  const messages = parseOasstText(text!);
  if (messages.length === 0) return fail('no turns', '"text" has no "### Human:" / "### Assistant:" turns');
  return finishConversation(messages, 'text');
}

function normalizeText(row: Record<string, unknown>): Normalized {
  const text = stringField(row, 'text', true);
  if (isFail(text)) return text;
  if (!text!.trim()) return fail('empty text', '"text" is empty');
  return { ok: true, example: { kind: 'text', text: text! } };
}

/** Normalizes one row in the given format. */
export function normalizeRow(row: Record<string, unknown>, format: FormatName): Normalized {
  switch (format) {
    case 'messages':
      return 'messages' in row ? normalizeMessages(row.messages, 'messages') : fail('missing field', 'missing field "messages" (expected an array of {role, content})');
    case 'sharegpt':
      return 'conversations' in row ? normalizeMessages(row.conversations, 'conversations') : fail('missing field', 'missing field "conversations" (expected an array of {from, value})');
    case 'alpaca':
      return normalizeAlpaca(row);
    case 'completion':
      return normalizeCompletion(row);
    case 'oasst':
      return normalizeOasst(row);
    case 'text':
      return normalizeText(row);
  }
}

/** Which formats a row's fields look like, most specific first. */
function candidates(row: Record<string, unknown>): FormatName[] {
  const out: FormatName[] = [];
  if ('messages' in row) out.push('messages');
  if ('conversations' in row) out.push('sharegpt');
  if ('prompt' in row && 'completion' in row) out.push('completion');
  if ('instruction' in row && 'output' in row) out.push('alpaca');
  if (typeof row.text === 'string') {
    if (/###\s*Human\s*:/.test(row.text) && /###\s*Assistant\s*:/.test(row.text)) out.push('oasst');
    out.push('text');
  }
  return out;
}

export interface Detection {
  format: FormatName;
  /** How many of the sampled rows fit the format. */
  matched: number;
  sampled: number;
}

/**
 * Detects the format from sample rows: the most specific format whose fields at least half the rows
 * have. No match is an error listing the fields seen and the formats expected.
 */
export function detectFormat(rows: readonly Record<string, unknown>[], source = 'data'): Detection {
  if (rows.length === 0) throw new DataError('no rows to detect the format from (the dataset is empty)', source);
  const votes = new Map<FormatName, number>();
  for (const r of rows) for (const f of candidates(r)) votes.set(f, (votes.get(f) ?? 0) + 1);
  // The most specific format (FORMAT_NAMES order) that at least half the rows fit: Guanaco rows also
  // have a plain "text" field, so oasst wins over text when most rows carry the turn markers.
  const best = FORMAT_NAMES.find((f) => (votes.get(f) ?? 0) * 2 >= rows.length && (votes.get(f) ?? 0) > 0) ?? null;
  if (best === null) {
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].slice(0, 20);
    throw new DataError(
      `cannot detect the dataset format from the first ${rows.length} rows (fields: ${cols.join(', ') || 'none'}); expected ` +
        '"messages" [{role, content}], "conversations" [{from, value}], "instruction"/"output", "prompt"/"completion" or "text"; ' +
        'choose one with --format',
      source,
    );
  }
  return { format: best, matched: votes.get(best)!, sampled: rows.length };
}
