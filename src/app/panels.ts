// The studio's panels, in navigation order. The Model panel is selected first; `built` marks the
// panels that hold their feature (the others say what is coming).

export type PanelId = 'gpu' | 'model' | 'data' | 'train' | 'playground' | 'export';

export interface PanelInfo {
  id: PanelId;
  title: string;
  /** One line: what the panel holds (or will hold). */
  summary: string;
  built: boolean;
}

export const PANELS: readonly PanelInfo[] = [
  {
    id: 'model',
    title: 'Model',
    summary: 'Pick a base model from the Hugging Face Hub or a folder on this computer, see whether it fits, and load it in 4-bit.',
    built: true,
  },
  {
    id: 'data',
    title: 'Data',
    summary: 'Bring chats, instructions or text; check the format, the token counts and which tokens are trained.',
    built: true,
  },
  {
    id: 'train',
    title: 'Train',
    summary: 'Pick a preset or set every hyperparameter, then follow the loss, speed and memory live.',
    built: true,
  },
  {
    id: 'playground',
    title: 'Playground',
    summary: 'Chat with the base model and the fine-tuned adapter side by side: same prompt, same seed, tokens as they come.',
    built: true,
  },
  {
    id: 'export',
    title: 'Export',
    summary: 'Download the trained LoRA adapter (PEFT), its training config and loss history, or the merged model; share a demo link.',
    built: true,
  },
  { id: 'gpu', title: 'GPU', summary: 'The WebGPU adapter the engine runs on, its features and limits, and a self-test.', built: true },
];

export function panelInfo(id: PanelId): PanelInfo {
  return PANELS.find((p) => p.id === id)!;
}

export function isPanelId(x: unknown): x is PanelId {
  return PANELS.some((p) => p.id === x);
}
