import { useStudio } from '../store.ts';

/** On every panel but the GPU one: WebGPU is missing or failed, in words, with the way to the details. */
export function GpuBanner() {
  const gpu = useStudio((s) => s.gpu);
  const panel = useStudio((s) => s.panel);
  const setPanel = useStudio((s) => s.setPanel);
  if (panel === 'gpu' || (gpu.status !== 'missing' && gpu.status !== 'error')) return null;
  return (
    <div className="callout callout-bad banner" role="alert" data-testid="gpu-banner">
      <p>
        <strong>{gpu.status === 'missing' ? 'WebGPU is not available, so nothing can be trained here.' : 'The GPU failed to start.'}</strong>{' '}
        {gpu.message}
      </p>
      <div className="actions">
        <button type="button" className="button" onClick={() => setPanel('gpu')}>
          Details
        </button>
      </div>
    </div>
  );
}
