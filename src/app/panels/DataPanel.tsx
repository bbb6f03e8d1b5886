import { useEffect } from 'react';
import { DataSourceCard } from '../components/data/DataSourceCard.tsx';
import { DataStatsCard } from '../components/data/DataStatsCard.tsx';
import { PreviewCard } from '../components/data/PreviewCard.tsx';
import { PanelSection } from '../components/PanelSection.tsx';
import { dataKey } from '../state/data.ts';
import { useStudio } from '../store.ts';

export function DataPanel() {
  const key = useStudio(dataKey);
  const choice = useStudio((s) => s.dataChoice);
  const prepared = useStudio((s) => s.data.key);
  const ready = useStudio((s) => s.load.status === 'ready');
  const prepare = useStudio((s) => s.prepareData);
  // Prepare again when the data, the options or the model change (Hub datasets: on request).
  useEffect(() => {
    if (!ready || !key || key === prepared || choice === 'hf') return;
    const t = setTimeout(() => void prepare(), choice === 'paste' ? 500 : 0);
    return () => clearTimeout(t);
  }, [ready, key, prepared, choice, prepare]);
  return (
    <PanelSection id="data">
      <div className="split">
        <DataSourceCard />
        <DataStatsCard />
      </div>
      <PreviewCard />
    </PanelSection>
  );
}
