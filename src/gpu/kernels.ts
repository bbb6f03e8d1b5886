// Kernel registry: WGSL source per kernel family (one file in shaders/ each), compiled once
// into a shader module, and one cached compute pipeline per (file, entry point, constants).
// A line `//!include NAME` is replaced by shaders/NAME.wgsl (once per file; WGSL has no
// includes), so shared helpers such as the RNG live in one place.
// The loader is synchronous: in the browser the sources are bundled by Vite as text
// (shaders-browser.ts), in Node they are read from disk (node.ts).

export type ShaderLoader = (file: string) => string;

export class KernelRegistry {
  private modules = new Map<string, GPUShaderModule>();
  private pipelines = new Map<string, GPUComputePipeline>();

  constructor(
    private readonly device: GPUDevice,
    private readonly loadShader: ShaderLoader,
  ) {}

  /** The WGSL text of `shaders/<file>.wgsl`, includes resolved. */
  source(file: string): string {
    return resolveIncludes(file, this.loadShader);
  }

  module(file: string): GPUShaderModule {
    let mod = this.modules.get(file);
    if (!mod) {
      mod = this.device.createShaderModule({ label: `${file}.wgsl`, code: this.source(file) });
      this.modules.set(file, mod);
    }
    return mod;
  }

  /** A compute pipeline for `entry` in `file`, with pipeline-overridable constants. Cached. */
  pipelineSync(file: string, entry: string, constants?: Record<string, number>): GPUComputePipeline {
    const key = constants ? `${file}:${entry}:${JSON.stringify(constants)}` : `${file}:${entry}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.device.createComputePipeline({
        label: `${file}.wgsl:${entry}`,
        layout: 'auto',
        compute: { module: this.module(file), entryPoint: entry, constants },
      });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /** Compiles a file and throws with the compiler's messages (file:line:col) if it has errors. */
  async validate(file: string): Promise<void> {
    const info = await this.module(file).getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      throw new Error(errors.map((m) => `shaders/${file}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`).join('\n'));
    }
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }
}

const INCLUDE = /^\/\/!include\s+([\w-]+)\s*$/gm;

/** Inlines `//!include NAME` lines (each file at most once; cycles are an error). */
export function resolveIncludes(file: string, load: ShaderLoader, seen = new Set<string>()): string {
  if (seen.has(file)) return '';
  seen.add(file);
  return load(file).replace(INCLUDE, (_, name: string) => {
    if (name === file) throw new Error(`shaders/${file}.wgsl includes itself`);
    return resolveIncludes(name, load, seen);
  });
}
