import { isSoftwareAdapter, useStudio } from '../store.ts';

/** The header's one-glance GPU status: adapter name, or why there is none. */
export function AdapterBadge() {
  const gpu = useStudio((s) => s.gpu);
  let text: string;
  let tone: string;
  if (gpu.status === 'ready' && gpu.adapter) {
    const a = gpu.adapter;
    text = [a.vendor, a.architecture || a.device || a.description].filter(Boolean).join(' · ') || 'WebGPU adapter';
    if (isSoftwareAdapter(a)) text += ' (CPU)';
    tone = isSoftwareAdapter(a) ? 'warn' : 'ok';
  } else if (gpu.status === 'checking') {
    text = 'Checking GPU…';
    tone = 'muted';
  } else if (gpu.status === 'missing') {
    text = 'No WebGPU';
    tone = 'bad';
  } else {
    text = 'GPU error';
    tone = 'bad';
  }
  return (
    <span className={`badge badge-${tone}`} data-testid="adapter-badge" title="The GPU adapter the engine runs on">
      <span className="badge-dot" aria-hidden="true" />
      {text}
    </span>
  );
}
