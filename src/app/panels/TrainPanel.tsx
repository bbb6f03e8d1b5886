import { PanelSection } from '../components/PanelSection.tsx';
import { Dashboard } from '../components/train/Dashboard.tsx';
import { PresetPicker } from '../components/train/PresetPicker.tsx';
import { RunsCard } from '../components/train/RunsCard.tsx';
import { SettingsCard } from '../components/train/SettingsCard.tsx';
import { isRunActive } from '../state/train.ts';
import { useStudio } from '../store.ts';

export function TrainPanel() {
  const active = useStudio((s) => isRunActive(s.run));
  return (
    <PanelSection id="train">
      <PresetPicker disabled={active} />
      <Dashboard />
      <SettingsCard />
      <RunsCard />
    </PanelSection>
  );
}
