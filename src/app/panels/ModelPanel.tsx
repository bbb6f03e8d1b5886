import { PanelSection } from '../components/PanelSection.tsx';
import { PlannedNote } from '../components/PlannedNote.tsx';

export function ModelPanel() {
  return (
    <PanelSection id="model">
      <PlannedNote />
    </PanelSection>
  );
}
