import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { Segmented } from '../Segmented.tsx';
import { HubModelPicker } from './HubModelPicker.tsx';
import { LocalFolderPicker } from './LocalFolderPicker.tsx';

export function ModelSourceCard() {
  const origin = useStudio((s) => s.modelOrigin);
  const setOrigin = useStudio((s) => s.setModelOrigin);
  const busy = useStudio((s) => s.load.status === 'fetching' || s.load.status === 'loading' || (s.run !== null && !['done', 'stopped', 'error'].includes(s.run.state)));
  return (
    <Card title="Base model" testId="model-source">
      <Segmented
        label="Where the model comes from"
        value={origin}
        onChange={setOrigin}
        disabled={busy}
        options={[
          { value: 'hub', label: 'Hugging Face Hub' },
          { value: 'local', label: 'Local folder' },
        ]}
      />
      {origin === 'hub' ? <HubModelPicker disabled={busy} /> : <LocalFolderPicker disabled={busy} />}
    </Card>
  );
}
