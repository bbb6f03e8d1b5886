import { useStudio } from '../../store.ts';
import { WebGpuMissing } from './WebGpuMissing.tsx';

/** Whether WebGPU is available, in one line (or a plain explanation when it is not). */
export function GpuStatusLine() {
  const gpu = useStudio((s) => s.gpu);
  const checkGpu = useStudio((s) => s.checkGpu);

  if (gpu.status === 'missing') return <WebGpuMissing message={gpu.message} />;
  if (gpu.status === 'error') {
    return (
      <div className="callout callout-bad" data-testid="gpu-status" data-status="error" role="alert">
        <h2 className="callout-title">The GPU check failed</h2>
        <p>{gpu.message}</p>
        <button type="button" className="button" onClick={() => void checkGpu()}>
          Check again
        </button>
      </div>
    );
  }
  if (gpu.status === 'checking') {
    return (
      <p className="status-line" data-testid="gpu-status" data-status="checking" role="status">
        <span className="spinner" aria-hidden="true" />
        Looking for a WebGPU adapter…
      </p>
    );
  }
  return (
    <p className="status-line status-ok" data-testid="gpu-status" data-status="ready" role="status">
      <span className="status-icon" aria-hidden="true">
        ✓
      </span>
      WebGPU is available. The engine has a device with this adapter’s maximum limits.
    </p>
  );
}
