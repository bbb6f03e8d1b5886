// Text tokenizer: a thin wrapper over @huggingface/tokenizers built from tokenizer.json text and the
// tokenizer_config.json object. Adds BOS exactly once (tokenizer_config `add_bos_token`, else what
// the tokenizer.json post-processor would add), decodes, and streams detokenized text during
// generation (byte-fallback tokens and multi-byte UTF-8 are held back until complete).

import { Tokenizer } from '@huggingface/tokenizers';
import { eosTokenIds, type ModelConfig } from './config.ts';

export interface EncodeOptions {
  /** Prepend BOS (once). Default: tokenizer_config `add_bos_token`, else whether the post-processor adds it. */
  addBos?: boolean;
  /** Append EOS. Default: tokenizer_config `add_eos_token` (usually false). */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, …). Default false for `decode`, true for `createDecoder`. */
  skipSpecial?: boolean;
}

/** Incremental detokenizer: the concatenation of every `push` and the final `flush` equals `decode(ids)`. */
export interface StreamDecoder {
  /** Adds one token id; returns only the text it completed ('' while a UTF-8 character is unfinished). */
  push(id: number): string;
  /** Returns whatever is still held back (an unfinished character decodes as U+FFFD). */
  flush(): string;
  /** All ids pushed so far. */
  readonly ids: readonly number[];
}

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

export class TextTokenizer {
  readonly bosToken: string | null;
  readonly bosId: number | null;
  readonly eosToken: string | null;
  readonly eosId: number | null;
  /** EOS ids that stop generation: the tokenizer's EOS, then the model config's eos_token_id(s). */
  readonly eosIds: readonly number[];
  readonly padToken: string | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  /** Largest token id + 1 (model vocab may be larger: extra rows are never produced by encode). */
  readonly vocabSize: number;
  /** Whether `encode` adds BOS when `addBos` is not given. */
  readonly addBosDefault: boolean;
  readonly addEosDefault: boolean;
  private readonly tk: Tokenizer;
  private readonly specialIds: Set<number>;
  /** tokenizer_config `clean_up_tokenization_spaces` (transformers now defaults to false). */
  private readonly cleanUp: boolean;

  constructor(tokenizerJson: string | object, tokenizerConfig: Record<string, unknown> | null = null, modelConfig?: ModelConfig) {
    const json = typeof tokenizerJson === 'string' ? (JSON.parse(tokenizerJson) as Record<string, unknown>) : tokenizerJson;
    const cfg = tokenizerConfig ?? {};
    this.tk = new Tokenizer(json, cfg);
    const id = (tok: string | null) => (tok === null ? null : this.tk.token_to_id(tok) ?? null);

    // BOS comes from tokenizer_config; the model config's bos_token_id only when the key is absent
    // (Qwen2 writes `"bos_token": null` and has no BOS although config.json names one).
    this.bosToken = tokenContent(cfg.bos_token);
    this.bosId = id(this.bosToken) ?? (cfg.bos_token === undefined ? modelConfig?.bosTokenId ?? null : null);
    if (this.bosToken === null && this.bosId !== null) this.bosToken = this.tk.id_to_token(this.bosId) ?? null;
    this.eosToken = tokenContent(cfg.eos_token);
    this.eosId = id(this.eosToken);
    const fromModel = modelConfig ? eosTokenIds(modelConfig) : [];
    if (this.eosId === null && fromModel.length) {
      this.eosId = fromModel[0];
      this.eosToken = this.tk.id_to_token(this.eosId) ?? null;
    }
    this.eosIds = [...new Set([...(this.eosId === null ? [] : [this.eosId]), ...fromModel])];
    this.padToken = tokenContent(cfg.pad_token);
    this.padId = id(this.padToken);
    this.unkId = id(tokenContent(cfg.unk_token));

    let maxId = -1;
    for (const v of this.tk.get_vocab(true).values()) maxId = Math.max(maxId, v);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set([...this.tk.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([i]) => i));

    if (typeof cfg.add_bos_token === 'boolean') {
      this.addBosDefault = cfg.add_bos_token && this.bosId !== null;
    } else {
      // What the tokenizer.json post-processor prepends (e.g. Llama 3's <|begin_of_text|>).
      const withSpecial = this.tk.encode('a').ids;
      const plain = this.tk.encode('a', { add_special_tokens: false }).ids;
      this.addBosDefault = this.bosId !== null && withSpecial.length > plain.length && withSpecial[0] === this.bosId;
    }
    this.addEosDefault = cfg.add_eos_token === true && this.eosId !== null;
    this.cleanUp = cfg.clean_up_tokenization_spaces === true;
  }

  /** Token ids of `text`. BOS is added at most once: never when the text already starts with it. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.tk.encode(text, { add_special_tokens: false }).ids;
    const addBos = opts.addBos ?? this.addBosDefault;
    if (addBos && this.bosId !== null && ids[0] !== this.bosId) ids.unshift(this.bosId);
    if ((opts.addEos ?? this.addEosDefault) && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  /** Text of `ids`; ids the tokenizer does not know (padded model vocab rows) are dropped. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const known = ids.filter((i) => this.tk.id_to_token(i) !== undefined);
    if (known.length === 0) return '';
    const skip = opts.skipSpecial ?? false;
    if (skip && known.every((i) => this.specialIds.has(i))) return '';
    return this.tk.decode(known, { skip_special_tokens: skip, clean_up_tokenization_spaces: this.cleanUp });
  }

  tokenToId(token: string): number | null {
    return this.tk.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tk.id_to_token(id) ?? null;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * A streaming detokenizer. It decodes a window that starts one emitted chunk back, so decoders
   * that look at context (SentencePiece's leading-space strip, byte fallback) agree with a full
   * decode, and holds text back while it ends in U+FFFD (an unfinished UTF-8 character).
   */
  createDecoder(opts: DecodeOptions = {}): StreamDecoder {
    const decodeOpts = { skipSpecial: opts.skipSpecial ?? true };
    const ids: number[] = [];
    let prefixOffset = 0;
    let readOffset = 0;
    const step = (final: boolean): string => {
      const prefix = this.decode(ids.slice(prefixOffset, readOffset), decodeOpts);
      const full = this.decode(ids.slice(prefixOffset), decodeOpts);
      if (full.length <= prefix.length || (!final && full.endsWith('\uFFFD'))) return '';
      prefixOffset = readOffset;
      readOffset = ids.length;
      return full.startsWith(prefix) ? full.slice(prefix.length) : full.slice(Math.min(prefix.length, full.length));
    };
    return {
      ids,
      push: (id: number) => {
        ids.push(id);
        return step(false);
      },
      flush: () => (readOffset < ids.length ? step(true) : ''),
    };
  }
}

/** Builds a tokenizer from tokenizer.json text and tokenizer_config.json (text or object). */
export function createTokenizer(
  tokenizerJson: string | object,
  tokenizerConfig?: string | Record<string, unknown> | null,
  modelConfig?: ModelConfig,
): TextTokenizer {
  const cfg = typeof tokenizerConfig === 'string' ? (JSON.parse(tokenizerConfig) as Record<string, unknown>) : tokenizerConfig;
  return new TextTokenizer(tokenizerJson, cfg ?? null, modelConfig);
}
