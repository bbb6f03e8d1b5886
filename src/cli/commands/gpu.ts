// `qlora gpu`: the WebGPU adapter Node sees, and the limits the engine will use.

import { printJson, table, formatBytes, type Command } from '../args.ts';
import { createNodeRuntime } from '../../gpu/node.ts';

export const gpuCommand: Command = {
  name: 'gpu',
  summary: 'show the WebGPU adapter and its limits',
  usage: 'qlora gpu [--json]',
  options: { json: { type: 'boolean' } },
  async run(values) {
    const rt = await createNodeRuntime();
    const a = rt.adapter;
    if (values.json) {
      printJson(a);
    } else {
      const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(unnamed adapter)';
      process.stdout.write(`adapter:  ${name}\nbackend:  ${a.backend}${a.isFallbackAdapter ? ' (fallback)' : ''}\n`);
      process.stdout.write(`features: ${a.features.join(', ') || '(none)'}\n\n`);
      const rows = [['limit', 'value']];
      for (const [k, v] of Object.entries(a.limits)) rows.push([k, /Size$/.test(k) ? `${v} (${formatBytes(v)})` : String(v)]);
      process.stdout.write(table(rows, [1]) + '\n');
    }
    rt.destroy();
  },
};
