// Chat templates: the model's own `chat_template` (tokenizer_config.json, or chat_template.jinja)
// rendered with @huggingface/jinja, a sandboxed interpreter (templates cannot run code), given
// messages, bos_token, eos_token, add_generation_prompt, as transformers' apply_chat_template does
// (trim_blocks + lstrip_blocks, unset special tokens left undefined).
//
// Fallback for base models without a template (FALLBACK_CHAT_TEMPLATE), the Guanaco / QLoRA-paper style:
//
//   {bos}{system}\n\n### Human: {user}\n### Assistant: {assistant}{eos}\n### Human: {user}\n### Assistant: …
//
// with generation prompt "### Assistant:" (no trailing space: the answer's first token carries its
// own leading space, as at inference). Plain text, so it needs no new special tokens in the vocabulary,
// and every assistant turn ends with EOS.

import { Template } from '@huggingface/jinja';
import { DataError } from './errors.ts';
import type { Message } from './formats.ts';

export const FALLBACK_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'user' %}" +
  "{% if loop.index0 > 0 and messages[loop.index0 - 1]['role'] == 'assistant' %}{{ '\\n' }}{% endif %}" +
  "{{ '### Human: ' + message['content'] + '\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ '### Assistant: ' + message['content'] + eos_token }}" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:' }}{% endif %}";

export interface SpecialTokens {
  bosToken?: string | null;
  eosToken?: string | null;
  unkToken?: string | null;
  padToken?: string | null;
}

export interface ChatTemplate {
  /** Where the template came from, for display. */
  readonly name: string;
  readonly source: string;
  readonly isFallback: boolean;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Renders messages; throws a DataError when the template fails (e.g. its raise_exception). */
  render(messages: readonly Message[], opts?: { addGenerationPrompt?: boolean }): string;
}

export interface TemplateOptions {
  name?: string;
  isFallback?: boolean;
  /** Extra template variables (e.g. date_string, tools), passed as given. */
  vars?: Record<string, unknown>;
}

/** Compiles a jinja chat template. A syntax error is reported at once, naming the template. */
export function createChatTemplate(source: string, tokens: SpecialTokens, opts: TemplateOptions = {}): ChatTemplate {
  const name = opts.name ?? 'chat_template';
  let tpl: Template;
  try {
    tpl = new Template(source);
  } catch (e) {
    throw new DataError(`cannot parse the chat template: ${(e as Error).message}`, name);
  }
  const base: Record<string, unknown> = { ...opts.vars };
  if (tokens.bosToken != null) base.bos_token = tokens.bosToken;
  if (tokens.eosToken != null) base.eos_token = tokens.eosToken;
  if (tokens.unkToken != null) base.unk_token = tokens.unkToken;
  if (tokens.padToken != null) base.pad_token = tokens.padToken;
  return {
    name,
    source,
    isFallback: opts.isFallback ?? false,
    bosToken: tokens.bosToken ?? null,
    eosToken: tokens.eosToken ?? null,
    render(messages, ro = {}) {
      try {
        return tpl.render({ ...base, messages: messages.map((m) => ({ role: m.role, content: m.content })), add_generation_prompt: ro.addGenerationPrompt ?? false });
      } catch (e) {
        throw new DataError(`chat template failed to render: ${(e as Error).message}`, name);
      }
    },
  };
}

function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

/** The special tokens a tokenizer_config.json names (strings or AddedToken objects). */
export function specialTokensFromConfig(cfg: Record<string, unknown>): SpecialTokens {
  return {
    bosToken: tokenContent(cfg.bos_token),
    eosToken: tokenContent(cfg.eos_token),
    unkToken: tokenContent(cfg.unk_token),
    padToken: tokenContent(cfg.pad_token),
  };
}

/**
 * The model's chat template: `chatTemplateJinja` (a chat_template.jinja file) if given, else
 * tokenizer_config.json's `chat_template` (a string, or a list of {name, template} where "default" is
 * used unless `templateName` picks another), else the documented fallback.
 */
export function chatTemplateFromConfig(
  cfg: Record<string, unknown>,
  opts: { chatTemplateJinja?: string | null; templateName?: string; vars?: Record<string, unknown>; fallback?: boolean } = {},
): ChatTemplate {
  const tokens = specialTokensFromConfig(cfg);
  if (opts.chatTemplateJinja) return createChatTemplate(opts.chatTemplateJinja, tokens, { name: 'chat_template.jinja', vars: opts.vars });
  const ct = cfg.chat_template;
  if (typeof ct === 'string' && ct.trim() && opts.fallback !== true) {
    return createChatTemplate(ct, tokens, { name: 'tokenizer_config.json chat_template', vars: opts.vars });
  }
  if (Array.isArray(ct) && opts.fallback !== true) {
    const want = opts.templateName ?? 'default';
    const hit = ct.find((t) => (t as { name?: unknown }).name === want) as { template?: unknown } | undefined;
    if (hit && typeof hit.template === 'string') {
      return createChatTemplate(hit.template, tokens, { name: `tokenizer_config.json chat_template "${want}"`, vars: opts.vars });
    }
    const names = ct.map((t) => String((t as { name?: unknown }).name)).join(', ');
    throw new DataError(`no chat template named "${want}" (the tokenizer config has ${names})`, 'tokenizer_config.json');
  }
  return createChatTemplate(FALLBACK_CHAT_TEMPLATE, tokens, { name: 'fallback (### Human: / ### Assistant:)', isFallback: true, vars: opts.vars });
}
