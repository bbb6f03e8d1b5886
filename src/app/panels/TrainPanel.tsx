import { PanelSection } from '../components/PanelSection.tsx';
import { PlannedNote } from '../components/PlannedNote.tsx';

export function TrainPanel() {
  return (
    <PanelSection id="train">
      <PlannedNote />
    </PanelSection>
  );
}
