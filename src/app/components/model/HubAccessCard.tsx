import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { HubSettingsForm } from './HubSettingsForm.tsx';

/** Where downloads come from, and the token for gated models (collapsed until needed). */
export function HubAccessCard() {
  const hub = useStudio((s) => s.hub);
  const authError = useStudio((s) => s.download?.error?.kind === 'auth' || s.hubConfigs[s.hubRepo]?.error?.kind === 'auth');
  const host = (() => {
    try {
      return new URL(hub.endpoint).host;
    } catch {
      return hub.endpoint;
    }
  })();
  return (
    <Card title="Hub access" testId="hub-access">
      <details className="disclosure" open={authError || undefined}>
        <summary>
          {host}
          {hub.token ? ' · token set' : ' · no token'}
        </summary>
        <HubSettingsForm />
      </details>
    </Card>
  );
}
