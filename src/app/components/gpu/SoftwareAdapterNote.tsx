import type { AdapterReport } from '../../../gpu/runtime.ts';
import { isSoftwareAdapter, isSwiftShader } from '../../store.ts';

/** A CPU adapter works, but training on it is slow: say so before anyone waits on it. */
export function SoftwareAdapterNote({ adapter }: { adapter: AdapterReport }) {
  if (!isSoftwareAdapter(adapter)) return null;
  const what = isSwiftShader(adapter)
    ? 'This adapter is SwiftShader, a CPU implementation of WebGPU.'
    : 'This is a fallback adapter: the browser runs WebGPU in software, on the CPU.';
  return (
    <div className="callout callout-warn" data-testid="software-adapter-note">
      <p>
        <strong>{what}</strong> Everything works and the results are correct, but training will be slow: expect
        minutes where a GPU takes seconds. For real fine-tuning, use a browser with hardware WebGPU.
      </p>
    </div>
  );
}
