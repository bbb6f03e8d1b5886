import { AdapterDetails } from '../components/gpu/AdapterDetails.tsx';
import { FeatureList } from '../components/gpu/FeatureList.tsx';
import { GpuStatusLine } from '../components/gpu/GpuStatusLine.tsx';
import { LimitsTable } from '../components/gpu/LimitsTable.tsx';
import { SelfTestCard } from '../components/gpu/SelfTestCard.tsx';
import { SoftwareAdapterNote } from '../components/gpu/SoftwareAdapterNote.tsx';
import { PanelSection } from '../components/PanelSection.tsx';
import { useStudio } from '../store.ts';

export function GpuPanel() {
  const gpu = useStudio((s) => s.gpu);
  const adapter = gpu.status === 'ready' ? gpu.adapter : null;
  return (
    <PanelSection id="gpu">
      <GpuStatusLine />
      {adapter && (
        <>
          <SoftwareAdapterNote adapter={adapter} />
          <div className="grid-2">
            <AdapterDetails adapter={adapter} />
            <SelfTestCard />
          </div>
          <LimitsTable limits={adapter.limits} />
          <FeatureList features={adapter.features} />
        </>
      )}
    </PanelSection>
  );
}
