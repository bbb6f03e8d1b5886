// Browser entry to the GPU runtime: navigator.gpu, with WGSL bundled as text by Vite.

import { createRuntime, GpuError, type GpuRuntime, type RuntimeOptions } from './runtime.ts';

const bundled = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

export function loadBundledShader(file: string): string {
  const src = bundled[`../../shaders/${file}.wgsl`];
  if (src === undefined) throw new GpuError(`no kernel file shaders/${file}.wgsl in this build`);
  return src;
}

/** Why WebGPU is missing here, in words a user can act on; null when it is available. */
export function webgpuMissingReason(): string | null {
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) {
    const secure = typeof isSecureContext === 'undefined' || isSecureContext;
    if (!secure) return 'WebGPU needs a secure context: open the studio over https:// or from http://localhost.';
    return (
      'This browser does not expose WebGPU. Use Chrome or Edge 113+ (on Linux start it with ' +
      '--enable-unsafe-webgpu --enable-features=Vulkan), Safari 26+, or Firefox 141+ on Windows ' +
      '(Firefox Nightly elsewhere, with dom.webgpu.enabled in about:config).'
    );
  }
  return null;
}

export async function createBrowserRuntime(options: RuntimeOptions = {}): Promise<GpuRuntime> {
  const reason = webgpuMissingReason();
  if (reason) throw new GpuError(reason);
  return createRuntime(navigator.gpu, loadBundledShader, { backend: 'browser', ...options });
}
