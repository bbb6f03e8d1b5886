import type { AdapterReport } from '../../../gpu/runtime.ts';
import { isSoftwareAdapter } from '../../store.ts';
import { Card } from '../Card.tsx';

function Value({ text, testId }: { text: string; testId: string }) {
  return text ? (
    <dd data-testid={testId}>{text}</dd>
  ) : (
    <dd data-testid={testId} className="muted">
      not reported
    </dd>
  );
}

export function AdapterDetails({ adapter }: { adapter: AdapterReport }) {
  const kind = adapter.isFallbackAdapter
    ? 'Fallback adapter (software, on the CPU)'
    : isSoftwareAdapter(adapter)
      ? 'Software (on the CPU)'
      : 'Hardware GPU';
  return (
    <Card title="Adapter" testId="adapter-details">
      <dl className="facts">
        <dt>Vendor</dt>
        <Value text={adapter.vendor} testId="adapter-vendor" />
        <dt>Architecture</dt>
        <Value text={adapter.architecture} testId="adapter-architecture" />
        <dt>Device</dt>
        <Value text={adapter.device} testId="adapter-device" />
        <dt>Description</dt>
        <Value text={adapter.description} testId="adapter-description" />
        <dt>Backend</dt>
        <dd data-testid="adapter-backend">
          {adapter.backend} <span className="muted">· in the engine’s worker</span>
        </dd>
        <dt>Type</dt>
        <dd data-testid="adapter-type">{kind}</dd>
      </dl>
    </Card>
  );
}
