import { PanelSection } from '../components/PanelSection.tsx';
import { PlannedNote } from '../components/PlannedNote.tsx';

export function PlaygroundPanel() {
  return (
    <PanelSection id="playground">
      <PlannedNote />
    </PanelSection>
  );
}
