// The studio's panels, in navigation order. The GPU panel is selected first.

export type PanelId = 'gpu' | 'model' | 'data' | 'train' | 'playground' | 'export';

export interface PanelInfo {
  id: PanelId;
  title: string;
  /** One line: what the panel holds (or will hold). */
  summary: string;
}

export const PANELS: readonly PanelInfo[] = [
  { id: 'gpu', title: 'GPU', summary: 'The WebGPU adapter the engine runs on, its features and limits, and a self-test.' },
  {
    id: 'model',
    title: 'Model',
    summary: 'Pick a base model from the Hugging Face Hub or a local file, and quantize it to 4-bit NF4.',
  },
  {
    id: 'data',
    title: 'Data',
    summary: 'Load a JSONL or CSV dataset, apply the chat template, and preview the tokenized examples.',
  },
  {
    id: 'train',
    title: 'Train',
    summary: 'Set the LoRA rank, learning rate and steps, then train and follow the loss curve live.',
  },
  {
    id: 'playground',
    title: 'Playground',
    summary: 'Chat with the base model and the fine-tuned adapter side by side.',
  },
  {
    id: 'export',
    title: 'Export',
    summary: 'Download the trained LoRA adapter as safetensors, or merge it into the base model.',
  },
];

export function panelInfo(id: PanelId): PanelInfo {
  return PANELS.find((p) => p.id === id)!;
}

export function isPanelId(x: unknown): x is PanelId {
  return PANELS.some((p) => p.id === x);
}
