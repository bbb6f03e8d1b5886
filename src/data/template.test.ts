// Chat templates of real model families render byte-identically to transformers' apply_chat_template
// (expected strings computed by hand from each template), plus the fallback and config handling.

import { describe, expect, it } from 'vitest';
import { DataError } from './errors.ts';
import type { Message } from './formats.ts';
import { chatTemplateFromConfig, createChatTemplate, FALLBACK_CHAT_TEMPLATE } from './template.ts';
import { LLAMA2_CONFIG, LLAMA3_CONFIG, QWEN25_CONFIG, SMOLLM2_CONFIG, ZEPHYR_CONFIG } from './test-fixtures.ts';

const conv: Message[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'Bye' },
  { role: 'assistant', content: 'Goodbye.' },
];
const noSystem = conv.slice(1);
const tpl = (json: string) => chatTemplateFromConfig(JSON.parse(json) as Record<string, unknown>);

describe('real chat templates', () => {
  it('Qwen2.5 (ChatML with its default system prompt)', () => {
    const t = tpl(QWEN25_CONFIG);
    expect(t.isFallback).toBe(false);
    expect(t.render(conv)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nGoodbye.<|im_end|>\n',
    );
    expect(t.render(noSystem.slice(0, 1), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Llama 3 (header tokens, trimmed content, BOS from the template)', () => {
    const t = tpl(LLAMA3_CONFIG);
    expect(t.render(conv)).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nGoodbye.<|eot_id|>',
    );
    // `message['content'] | trim` binds before `+`: surrounding whitespace of the content goes, the header's \n\n stays.
    expect(t.render([{ role: 'user', content: '  Hi \n' }], { addGenerationPrompt: true })).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('SmolLM2 (ChatML, default system only when none is given)', () => {
    const t = tpl(SMOLLM2_CONFIG);
    expect(t.render(noSystem)).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n' +
        '<|im_start|>assistant\nGoodbye.<|im_end|>\n',
    );
    expect(t.render(conv.slice(0, 2), { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('Zephyr / TinyLlama (newlines between tags: trim_blocks and lstrip_blocks as in transformers)', () => {
    const t = tpl(ZEPHYR_CONFIG);
    expect(t.render(conv)).toBe('<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\nGoodbye.</s>\n');
    expect(t.render(noSystem.slice(0, 1), { addGenerationPrompt: true })).toBe('<|user|>\nHi</s>\n<|assistant|>\n');
  });

  it('Llama 2 chat ([INST], <<SYS>>, BOS per turn, stripped content)', () => {
    const t = tpl(LLAMA2_CONFIG);
    expect(t.render(conv)).toBe('<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST] Goodbye. </s>');
    expect(t.render([{ role: 'user', content: ' Hi ' }, { role: 'assistant', content: ' Yo ' }])).toBe('<s>[INST] Hi [/INST] Yo </s>');
  });

  it('a template error (raise_exception) is a DataError naming the template', () => {
    const t = tpl(LLAMA2_CONFIG);
    expect(() => t.render([{ role: 'assistant', content: 'x' }])).toThrow(DataError);
    expect(() => t.render([{ role: 'assistant', content: 'x' }])).toThrow(/chat_template.*Conversation roles must alternate/);
  });
});

describe('fallback and configuration', () => {
  it('the fallback template: Guanaco style, EOS after every answer, no BOS when the model has none', () => {
    const t = chatTemplateFromConfig({ bos_token: '<s>', eos_token: '</s>' });
    expect(t.isFallback).toBe(true);
    expect(t.source).toBe(FALLBACK_CHAT_TEMPLATE);
    expect(t.render(conv)).toBe('<s>Be brief.\n\n### Human: Hi\n### Assistant: Hello!</s>\n### Human: Bye\n### Assistant: Goodbye.</s>');
    expect(t.render(conv.slice(0, 2), { addGenerationPrompt: true })).toBe('<s>Be brief.\n\n### Human: Hi\n### Assistant:');
    const noBos = chatTemplateFromConfig({ eos_token: '<|endoftext|>' });
    expect(noBos.render(noSystem.slice(0, 2))).toBe('### Human: Hi\n### Assistant: Hello!<|endoftext|>');
  });

  it('AddedToken objects, chat_template lists, chat_template.jinja and a syntax error', () => {
    const cfg = {
      bos_token: { content: '<s>', lstrip: false }, eos_token: { content: '</s>' },
      chat_template: [{ name: 'default', template: '{{ bos_token }}{{ messages[0].content }}{{ eos_token }}' }, { name: 'tool_use', template: 'T' }],
    };
    expect(chatTemplateFromConfig(cfg).render([{ role: 'user', content: 'x' }])).toBe('<s>x</s>');
    expect(chatTemplateFromConfig(cfg, { templateName: 'tool_use' }).render([])).toBe('T');
    expect(() => chatTemplateFromConfig(cfg, { templateName: 'nope' })).toThrow(/no chat template named "nope".*default, tool_use/);
    expect(chatTemplateFromConfig(cfg, { chatTemplateJinja: 'J{{ eos_token }}' }).render([])).toBe('J</s>');
    expect(() => createChatTemplate('{% for %}', {})).toThrow(/cannot parse the chat template/);
  });

  it('is sandboxed: no access to JS objects from the template', () => {
    const t = createChatTemplate("{{ ''.constructor }}{{ messages.constructor }}{{ messages.__class__ }}", {});
    expect(t.render([{ role: 'user', content: 'x' }])).toBe('');
  });
});
