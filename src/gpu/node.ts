// Node entry to the GPU runtime: Dawn through the `webgpu` package. When no adapter comes up
// (no GPU driver on this machine), retries with Chromium's SwiftShader Vulkan ICD.
// WGSL is read from shaders/ on disk.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { createRuntime, GpuError, isCpuImplementation, type GpuRuntime, type RuntimeOptions } from './runtime.ts';
import { throttleDawnPolling } from './dawn-polling.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const SHADER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../shaders');

const sources = new Map<string, string>();
export function loadShaderFromDisk(file: string): string {
  let s = sources.get(file);
  if (s === undefined) {
    const path = join(SHADER_DIR, `${file}.wgsl`);
    if (!existsSync(path)) throw new GpuError(`no kernel file ${path}`);
    s = readFileSync(path, 'utf8');
    sources.set(file, s);
  }
  return s;
}

type Dawn = { create(flags: string[]): GPU; globals: Record<string, unknown> };

let dawn: Dawn | null = null;
function loadDawn(): Dawn {
  if (!dawn) {
    // The Vulkan loader complains on stderr when no runtime dir is set (headless servers, CI).
    process.env.XDG_RUNTIME_DIR ??= tmpdir();
    const require = createRequire(import.meta.url);
    dawn = require('webgpu') as Dawn;
    // GPUBufferUsage, GPUMapMode, ... as in a browser.
    Object.assign(globalThis, dawn.globals);
  }
  return dawn;
}

async function adapterWorks(gpu: GPU): Promise<boolean> {
  const a = await gpu.requestAdapter();
  return a !== null;
}

let cachedGpu: GPU | null = null;

/**
 * Dawn's GPU object. Dawn reads VK_ICD_FILENAMES when it creates its Vulkan instance, so
 * the SwiftShader fallback is chosen before the first instance if the machine has no
 * other working adapter (QLORA_GPU=swiftshader forces it; QLORA_GPU=native forbids it).
 */
export async function nodeGpu(): Promise<GPU> {
  if (cachedGpu) return cachedGpu;
  const mode = process.env.QLORA_GPU ?? 'auto';
  const { create } = loadDawn();
  const canFallBack = existsSync(SWIFTSHADER_ICD) && !process.env.VK_ICD_FILENAMES;
  if (mode === 'swiftshader' && canFallBack) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  } else if (mode === 'auto' && canFallBack && !(await probeNative())) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  const gpu = create([]);
  if (!(await adapterWorks(gpu))) {
    throw new GpuError(
      'no WebGPU adapter in Node: install a GPU driver with Vulkan, or Debian\'s "chromium" and "libvulkan1" packages ' +
        `for the SwiftShader CPU adapter (${SWIFTSHADER_ICD})`,
    );
  }
  cachedGpu = gpu;
  return gpu;
}

/**
 * Whether a native (non-SwiftShader) adapter works. Checked in a child process, because
 * a Dawn instance in this process would fix the Vulkan ICD choice before the fallback.
 * Lavapipe (Mesa's CPU Vulkan) does not work with Dawn, so it counts as no adapter.
 */
async function probeNative(): Promise<boolean> {
  const { execFileSync } = await import('node:child_process');
  const script =
    "const {create,globals}=require('webgpu');Object.assign(globalThis,globals);" +
    "create([]).requestAdapter().then(a=>{const i=a&&a.info;" +
    "const ok=a&&!/llvmpipe|lavapipe|swiftshader/i.test([i.vendor,i.architecture,i.device,i.description].join(' '));" +
    'process.stdout.write(ok?"yes":"no");process.exit(0)},()=>{process.stdout.write("no");process.exit(0)})';
  try {
    const out = execFileSync(process.execPath, ['-e', script], {
      cwd: dirname(fileURLToPath(import.meta.url)),
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.toString().trim() === 'yes';
  } catch {
    return false;
  }
}

/** A ready GPU runtime in Node. QLORA_KERNELS=cpu|gpu picks the kernel shapes (default: by adapter). */
export async function createNodeRuntime(options: RuntimeOptions = {}): Promise<GpuRuntime> {
  const gpu = await nodeGpu();
  const backend = process.env.VK_ICD_FILENAMES === SWIFTSHADER_ICD ? 'node/dawn (SwiftShader)' : 'node/dawn';
  const env = process.env.QLORA_KERNELS;
  if (env !== undefined && env !== 'cpu' && env !== 'gpu') throw new Error(`QLORA_KERNELS must be "cpu" or "gpu", got ${JSON.stringify(env)}`);
  const rt = await createRuntime(gpu, loadShaderFromDisk, { backend, ...(env ? { kernels: env } : {}), ...options });
  // Dawn busy-polls on the main thread while a GPU promise is pending (see dawn-polling.ts). On a
  // CPU adapter that spinning core is one the shaders need, so polls are spaced out; on a real
  // GPU the spinning costs a core nobody else wants, and spacing the polls made an H100's
  // stories260K training step 1.5× slower (43 → 65 ms), so there Dawn keeps its own loop.
  if (isCpuImplementation(rt.adapter)) throttleDawnPolling();
  return rt;
}
