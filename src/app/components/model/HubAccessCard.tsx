import { datasetsEndpointFor } from '../../hub-settings.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { HubSettingsForm } from './HubSettingsForm.tsx';

/** Where downloads come from, and the token for gated models (collapsed until needed). */
export function HubAccessCard() {
  const hub = useStudio((s) => s.hub);
  const authError = useStudio((s) => s.download?.error?.kind === 'auth' || s.hubConfigs[s.hubRepo]?.error?.kind === 'auth');
  const hostOf = (endpoint: string) => {
    try {
      return new URL(endpoint).host;
    } catch {
      return endpoint;
    }
  };
  const host = hostOf(hub.endpoint);
  const datasets = datasetsEndpointFor(hub);
  return (
    <Card title="Hub access" testId="hub-access">
      <details className="disclosure" open={authError || undefined}>
        <summary>
          {host}
          {hub.token ? ' · token set' : ' · no token'}
          {datasets ? ` · datasets from ${hostOf(datasets)}` : ''}
        </summary>
        <HubSettingsForm />
      </details>
    </Card>
  );
}
