/** WebGPU is missing: say so plainly, with what to do about it (the message names browsers and flags). */
export function WebGpuMissing({ message }: { message: string | null }) {
  return (
    <div className="callout callout-bad" data-testid="gpu-status" data-status="missing" role="alert">
      <h2 className="callout-title">WebGPU not available</h2>
      <p>{message ?? 'This browser does not expose WebGPU.'}</p>
      <p className="muted">
        QLoRA Studio trains on the GPU through WebGPU and has no other backend. After switching browser or
        enabling WebGPU, reload this page.
      </p>
    </div>
  );
}
