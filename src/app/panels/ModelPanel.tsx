import { CacheCard } from '../components/model/CacheCard.tsx';
import { HubAccessCard } from '../components/model/HubAccessCard.tsx';
import { MemoryCard } from '../components/model/MemoryCard.tsx';
import { ModelLoadCard } from '../components/model/ModelLoadCard.tsx';
import { ModelSourceCard } from '../components/model/ModelSourceCard.tsx';
import { PanelSection } from '../components/PanelSection.tsx';

export function ModelPanel() {
  return (
    <PanelSection id="model">
      <div className="split">
        <div className="stack">
          <ModelSourceCard />
          <CacheCard />
        </div>
        <div className="stack">
          <MemoryCard />
          <ModelLoadCard />
          <HubAccessCard />
        </div>
      </div>
    </PanelSection>
  );
}
