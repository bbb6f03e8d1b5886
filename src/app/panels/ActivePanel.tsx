import type { ComponentType } from 'react';
import type { PanelId } from '../panels.ts';
import { useStudio } from '../store.ts';
import { DataPanel } from './DataPanel.tsx';
import { ExportPanel } from './ExportPanel.tsx';
import { GpuPanel } from './GpuPanel.tsx';
import { ModelPanel } from './ModelPanel.tsx';
import { PlaygroundPanel } from './PlaygroundPanel.tsx';
import { TrainPanel } from './TrainPanel.tsx';

const COMPONENTS: Record<PanelId, ComponentType> = {
  gpu: GpuPanel,
  model: ModelPanel,
  data: DataPanel,
  train: TrainPanel,
  playground: PlaygroundPanel,
  export: ExportPanel,
};

export function ActivePanel() {
  const panel = useStudio((s) => s.panel);
  const Panel = COMPONENTS[panel];
  return <Panel />;
}
