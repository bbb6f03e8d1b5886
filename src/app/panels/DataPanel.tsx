import { PanelSection } from '../components/PanelSection.tsx';
import { PlannedNote } from '../components/PlannedNote.tsx';

export function DataPanel() {
  return (
    <PanelSection id="data">
      <PlannedNote />
    </PanelSection>
  );
}
