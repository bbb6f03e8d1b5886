// Tokenizer adapter for the data pipeline: token ids WITH character offsets into the input text,
// built on @huggingface/tokenizers (which returns token strings but no offsets).
//
// Offsets are recovered by alignment, not by re-tokenizing pieces: every token string is mapped back
// to the bytes it stands for (byte-level BPE: the GPT-2 byte↔unicode table; SentencePiece: "▁" → space
// and <0xNN> byte-fallback tokens; added tokens: their content), and the token byte sequence is walked
// along the UTF-8 bytes of the text. Normalizer effects are tolerated: a SentencePiece dummy-prefix
// space, whitespace removed by lstrip/rstrip added tokens, and (as a resync fallback) Unicode
// normalization (NFC/NFKC) or lower-casing over a few tokens, and the unknown token covering a character.
// A token that splits a UTF-8 character gets the whole character in its range.
//
// `DataTokenizer` is the small interface the pipeline needs; src/model/tokenizer.ts is the model's own
// wrapper (encode/decode/streaming) and either can back this interface.

import { Tokenizer } from '@huggingface/tokenizers';

export interface Encoded {
  ids: number[];
  /** Per token: [start, end) in UTF-16 code units of the text; start === end for zero-width tokens. */
  offsets: Array<[number, number]>;
}

export interface DataTokenizer {
  /** Tokens of `text` with no special tokens added (BOS/EOS are the caller's decision). */
  encodeWithOffsets(text: string): Encoded;
  decode(ids: readonly number[], opts?: { skipSpecial?: boolean }): string;
  idToToken(id: number): string | null;
  readonly bosId: number | null;
  readonly bosToken: string | null;
  readonly eosId: number | null;
  readonly eosToken: string | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  /** Whether this tokenizer puts BOS in front of a sequence (tokenizer_config add_bos_token, else its post-processor). */
  readonly addsBos: boolean;
}

type Json = Record<string, unknown>;

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/** Whether a tokenizer.json component (or a Sequence of them) has a part of this type. */
function hasType(node: unknown, type: string): boolean {
  if (!node || typeof node !== 'object') return false;
  const o = node as Json;
  if (o.type === type) return true;
  for (const k of ['decoders', 'pretokenizers', 'normalizers', 'processors']) {
    if (Array.isArray(o[k]) && (o[k] as unknown[]).some((c) => hasType(c, type))) return true;
  }
  return false;
}

/** GPT-2's bytes_to_unicode, inverted: the printable character standing for each byte → the byte. */
function unicodeToBytes(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(cs.map((c, i) => [String.fromCharCode(c), bs[i]!]));
}

const enc = new TextEncoder();
const norm = (s: string) => s.normalize('NFKC').toLowerCase();
const isWsByte = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

class HfDataTokenizer implements DataTokenizer {
  readonly bosId: number | null;
  readonly bosToken: string | null;
  readonly eosId: number | null;
  readonly eosToken: string | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  readonly addsBos: boolean;
  private readonly tk: Tokenizer;
  private readonly added = new Map<number, string>();
  private readonly byteLevel: boolean;
  private readonly space: string;
  private readonly byteMap: Map<string, number> | null;
  private readonly cache = new Map<number, Uint8Array>();

  constructor(json: Json, cfg: Json) {
    this.tk = new Tokenizer(json, cfg);
    for (const t of (json.added_tokens as Array<{ id: number; content: string }> | undefined) ?? []) this.added.set(t.id, t.content);
    this.byteLevel = hasType(json.decoder, 'ByteLevel') || hasType(json.pre_tokenizer, 'ByteLevel');
    this.byteMap = this.byteLevel ? unicodeToBytes() : null;
    const meta = [json.pre_tokenizer, json.decoder].map((n) => n as Json | null).find((n) => n?.type === 'Metaspace');
    this.space = typeof meta?.replacement === 'string' ? meta.replacement : '\u2581';
    const id = (tok: string | null) => (tok === null ? null : this.tk.token_to_id(tok) ?? null);
    this.bosToken = tokenContent(cfg.bos_token);
    this.bosId = id(this.bosToken);
    this.eosToken = tokenContent(cfg.eos_token);
    this.eosId = id(this.eosToken);
    this.padId = id(tokenContent(cfg.pad_token));
    // model.unk_token is often null (byte-level BPE: Qwen, GPT-2): that means no unknown token, not the token "null".
    const modelUnk = (json.model as Json | undefined)?.unk_token;
    this.unkId = id(tokenContent(cfg.unk_token)) ?? (typeof modelUnk === 'string' ? id(modelUnk) : null);
    if (typeof cfg.add_bos_token === 'boolean') {
      this.addsBos = cfg.add_bos_token && this.bosId !== null;
    } else {
      const withSpecial = this.tk.encode('a').ids;
      const plain = this.tk.encode('a', { add_special_tokens: false }).ids;
      this.addsBos = this.bosId !== null && withSpecial.length > plain.length && withSpecial[0] === this.bosId;
    }
  }

  idToToken(id: number): string | null {
    return this.tk.id_to_token(id) ?? null;
  }

  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    const known = ids.filter((i) => this.tk.id_to_token(i) !== undefined);
    return known.length ? this.tk.decode(known, { skip_special_tokens: opts.skipSpecial ?? false }) : '';
  }

  /** The bytes a token stands for. */
  private bytesOf(id: number, token: string): Uint8Array {
    const hit = this.cache.get(id);
    if (hit) return hit;
    let out: Uint8Array;
    const addedContent = this.added.get(id);
    if (addedContent !== undefined) {
      out = enc.encode(addedContent);
    } else if (this.byteMap) {
      const bytes: number[] = [];
      for (const ch of token) {
        const b = this.byteMap.get(ch);
        if (b !== undefined) bytes.push(b);
        else bytes.push(...enc.encode(ch));
      }
      out = Uint8Array.from(bytes);
    } else {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
      out = m ? Uint8Array.of(parseInt(m[1]!, 16)) : enc.encode(token.split(this.space).join(' '));
    }
    this.cache.set(id, out);
    return out;
  }

  encodeWithOffsets(text: string): Encoded {
    const { ids, tokens } = this.tk.encode(text, { add_special_tokens: false });
    const tb = enc.encode(text);
    const N = tb.length;
    // Byte position ↔ UTF-16 index maps (floor for starts, ceil for ends inside a character).
    const floor = new Int32Array(N + 1);
    const ceil = new Int32Array(N + 1);
    const byteAt = new Int32Array(text.length + 1);
    {
      let p = 0;
      let u = 0;
      for (const ch of text) {
        const cp = ch.codePointAt(0)!;
        const len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        const ulen = ch.length;
        for (let j = 0; j < len; j++) {
          floor[p + j] = u;
          ceil[p + j] = j === 0 ? u : u + ulen;
        }
        for (let j = 0; j < ulen; j++) byteAt[u + j] = p;
        p += len;
        u += ulen;
      }
      floor[N] = ceil[N] = text.length;
      byteAt[text.length] = N;
    }
    const matchAt = (p: number, b: Uint8Array, from = 0): boolean => {
      if (p + b.length - from > N) return false;
      for (let i = from; i < b.length; i++) if (tb[p + i - from] !== b[i]) return false;
      return true;
    };
    const offsets: Array<[number, number]> = new Array(ids.length);
    let pos = 0;
    for (let t = 0; t < ids.length; t++) {
      const b = this.bytesOf(ids[t]!, tokens[t]!);
      const span = this.matchOne(pos, b, matchAt, tb);
      if (span) {
        offsets[t] = [floor[span[0]]!, ceil[span[1]]!];
        pos = span[1];
        continue;
      }
      const k = this.resync(t, pos, ids, tokens, text, floor, offsets);
      if (k === 0) {
        throw new Error(`tokenizer offsets: cannot align token ${t} (${JSON.stringify(tokens[t])}) with the text at character ${floor[pos]}: ` +
          JSON.stringify(text.slice(floor[pos]!, floor[pos]! + 20)));
      }
      pos = byteAt[offsets[t + k - 1]![1]]!;
      t += k - 1;
    }
    return { ids, offsets };
  }

  /** Exact match at `pos`, after a SentencePiece dummy-prefix space, or after whitespace a special token stripped. */
  private matchOne(pos: number, b: Uint8Array, matchAt: (p: number, b: Uint8Array, from?: number) => boolean, tb: Uint8Array): [number, number] | null {
    if (b.length === 0) return [pos, pos];
    if (matchAt(pos, b)) return [pos, pos + b.length];
    if (b[0] === 0x20 && matchAt(pos, b, 1)) return [pos, pos + b.length - 1];
    let q = pos;
    while (q < tb.length && isWsByte(tb[q]!)) q++;
    if (q > pos) {
      if (matchAt(q, b)) return [q, q + b.length];
      if (b[0] === 0x20 && matchAt(q, b, 1)) return [q, q + b.length - 1];
    }
    return null;
  }

  /**
   * Fallback when tokens differ from the text (normalization, unknown token): finds k ≤ 8 tokens and
   * m characters that agree after NFKC + lower-casing and gives those tokens that range. Returns k, or 0.
   */
  private resync(t: number, pos: number, ids: number[], tokens: string[], text: string, floor: Int32Array,
    offsets: Array<[number, number]>): number {
    const c0 = floor[pos]!;
    if (ids[t] === this.unkId && c0 < text.length) {
      const cp = text.codePointAt(c0)!;
      offsets[t] = [c0, c0 + (cp > 0xffff ? 2 : 1)];
      return 1;
    }
    const dec = new TextDecoder();
    const parts: number[] = [];
    for (let k = 1; k <= 8 && t + k <= ids.length; k++) {
      parts.push(...this.bytesOf(ids[t + k - 1]!, tokens[t + k - 1]!));
      const d = dec.decode(Uint8Array.from(parts));
      const targets = new Set([norm(d), norm(d.replace(/^ /, '')), norm(d.trim())]);
      const maxLen = d.length * 3 + 8;
      for (let m = 1; m <= maxLen && c0 + m <= text.length; m++) {
        const seg = text.slice(c0, c0 + m);
        if (targets.has(norm(seg)) || targets.has(norm(seg.trimStart()))) {
          for (let j = 0; j < k; j++) offsets[t + j] = [c0, c0 + m];
          return k;
        }
      }
    }
    return 0;
  }
}

/** Builds the data tokenizer from tokenizer.json (text or parsed) and tokenizer_config.json (text or parsed). */
export function createDataTokenizer(tokenizerJson: string | object, tokenizerConfig?: string | Json | null): DataTokenizer {
  const json = (typeof tokenizerJson === 'string' ? JSON.parse(tokenizerJson) : tokenizerJson) as Json;
  const cfg = (typeof tokenizerConfig === 'string' ? JSON.parse(tokenizerConfig) : tokenizerConfig ?? {}) as Json;
  return new HfDataTokenizer(json, cfg);
}
