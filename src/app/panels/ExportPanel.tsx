import { PanelSection } from '../components/PanelSection.tsx';
import { PlannedNote } from '../components/PlannedNote.tsx';

export function ExportPanel() {
  return (
    <PanelSection id="export">
      <PlannedNote />
    </PanelSection>
  );
}
