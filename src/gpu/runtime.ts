// The GPU runtime: one adapter + device with the adapter's own maximum limits, a kernel
// registry (WGSL from shaders/, cached pipelines, one-line dispatch), a buffer pool, and
// clear errors for a lost device or uncaptured validation errors. No DOM, no Node APIs:
// the browser and Node entry points (browser.ts, node.ts) pass in `navigator.gpu` or Dawn's.

import { BufferPool } from './buffers.ts';
import { KernelRegistry, type ShaderLoader } from './kernels.ts';
import { UniformCache } from './uniforms.ts';

export class GpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuError';
  }
}

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** Limits we raise to the adapter's maximum: the defaults (256 MB buffers, 128 MB bindings) are far too small. */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
] as const;

/** Optional features we use when present (never required: the f32 paths always work). */
const OPTIONAL_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

export function reportAdapter(adapter: GPUAdapter, backend: string): AdapterReport {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const key of RAISED_LIMITS) limits[key] = Number(adapter.limits[key]);
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    backend,
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
    features: [...adapter.features].map(String).sort(),
    limits,
  };
}

export interface RuntimeOptions {
  /** Called once with a readable message when the device is lost or an uncaptured error occurs. */
  onError?: (message: string) => void;
  /** Label for logs ("browser", "node/dawn"). */
  backend?: string;
  /**
   * Which kernel shapes to use: 'cpu' (barrier-free rows, vec4 loads, tall register tiles) or 'gpu'
   * (workgroup reductions, the tiles measured on GPUs). Default: 'cpu' on CPU implementations
   * (SwiftShader, lavapipe) and fallback adapters, else 'gpu'. Tests force 'gpu' on SwiftShader to
   * check the GPU path end to end; QLORA_KERNELS does the same for the Node CLI.
   */
  kernels?: KernelStyle;
  /** Dispatches that make a submit on their own (default: 96 on GPUs, never on CPU adapters). */
  submitEvery?: number;
}

export type KernelStyle = 'cpu' | 'gpu';

export class GpuRuntime {
  readonly kernels: KernelRegistry;
  readonly pool: BufferPool;
  /** Resolves with a message when the device is lost (never rejects). */
  readonly lost: Promise<string>;
  private lostMessage: string | null = null;
  private uncaptured: string[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingUploads: GPUBuffer[] = [];
  private profiler: Profiler | null = null;
  private liveBytes = 0;
  private peakBytes = 0;
  private readonly uniformCache: UniformCache;
  /**
   * Dispatches recorded since the last submit, and how many make a submit on their own: on a GPU
   * the commands of a training step go out in pieces, so the GPU runs the first layers while the
   * CPU records the rest (an H100 otherwise idled through the ~15 ms a stories260K step takes to
   * record). A CPU adapter's shaders share the cores that record, so there it never splits.
   */
  private unsubmitted = 0;
  private submitEvery: number;
  private submitCount = 0;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  /** The kernel shapes this runtime uses (see RuntimeOptions.kernels). */
  readonly kernelStyle: KernelStyle;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterReport,
    loadShader: ShaderLoader,
    options: RuntimeOptions = {},
  ) {
    this.kernelStyle = options.kernels ?? (isCpuImplementation(adapter) ? 'cpu' : 'gpu');
    this.submitEvery = options.submitEvery ?? (isCpuImplementation(adapter) ? Infinity : SUBMIT_EVERY);
    this.kernels = new KernelRegistry(device, loadShader);
    this.pool = new BufferPool(device);
    this.uniformCache = new UniformCache(device, (b) => this.retire(b));
    this.lost = device.lost.then((info) => {
      const msg = `GPU device lost (${info.reason}): ${info.message || 'no details from the driver'}`;
      this.lostMessage = msg;
      options.onError?.(msg);
      return msg;
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      const msg = `GPU error: ${err.message}`;
      this.uncaptured.push(msg);
      options.onError?.(msg);
    });
  }

  get features(): ReadonlySet<string> {
    return this.device.features as ReadonlySet<string>;
  }

  get hasF16(): boolean {
    return this.device.features.has('shader-f16');
  }

  /** Throws if the device was lost or an uncaptured error happened since the last check. */
  check(): void {
    if (this.lostMessage) throw new GpuError(this.lostMessage);
    if (this.uncaptured.length) {
      const msgs = this.uncaptured.splice(0);
      throw new GpuError(msgs.join('\n'));
    }
  }

  // ---- buffers -------------------------------------------------------------------------

  /** A storage buffer holding `data` (copied). Size rounded up to 4 bytes. */
  upload(data: ArrayBufferView, label = 'upload', usage = 0): GPUBuffer {
    const size = Math.max(4, align4(data.byteLength));
    const buf = this.device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | usage,
      mappedAtCreation: true,
    });
    new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buf.unmap();
    return this.track(buf);
  }

  /**
   * Writes `data` into an existing buffer at `offset`, ordered after the work recorded so far
   * (queue.writeBuffer alone would land before recorded-but-unsubmitted dispatches, so with
   * recorded work pending the bytes go through a staging buffer copied in the command stream).
   */
  write(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const size = align4(bytes.byteLength);
    if (size === 0) return;
    if (!this.encoder) {
      if (bytes.byteLength === size) this.device.queue.writeBuffer(buf, offset, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
      else {
        const padded = new Uint8Array(size);
        padded.set(bytes);
        this.device.queue.writeBuffer(buf, offset, padded);
      }
      return;
    }
    const staging = this.device.createBuffer({ label: 'write.staging', size, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(bytes);
    staging.unmap();
    this.endPass();
    this.encoder.copyBufferToBuffer(staging, 0, buf, offset, size);
    this.retire(staging);
  }

  /** An empty storage buffer of at least `bytes` bytes. */
  create(bytes: number, label = 'buffer', usage = 0): GPUBuffer {
    if (bytes > this.device.limits.maxBufferSize) {
      throw new GpuError(
        `buffer "${label}" needs ${bytes} bytes but this GPU allows at most ${this.device.limits.maxBufferSize} per buffer`,
      );
    }
    return this.track(
      this.device.createBuffer({
        label,
        size: Math.max(4, align4(bytes)),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | usage,
      }),
    );
  }

  /**
   * Bytes of the storage buffers made through this runtime (upload/create) that are alive now,
   * and the most alive at once since the last resetPeak() — the engine's GPU memory use.
   */
  get memory(): { live: number; peak: number } {
    return { live: this.liveBytes, peak: this.peakBytes };
  }

  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  private track(buf: GPUBuffer): GPUBuffer {
    const size = buf.size;
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    const destroy = buf.destroy.bind(buf);
    let done = false;
    buf.destroy = () => {
      if (!done) {
        done = true;
        this.liveBytes -= size;
      }
      destroy();
    };
    return buf;
  }

  /**
   * Destroys a buffer once the GPU is done with the work recorded so far (after the next
   * submit completes). Use it instead of destroy() for a buffer that recorded-but-unsubmitted
   * commands may still read, e.g. a scratch buffer being replaced by a larger one.
   */
  retire(buf: GPUBuffer): void {
    this.pendingUploads.push(buf);
  }

  /**
   * A small uniform buffer from u32/f32/i32 words; `types` marks each word's type (default u32).
   * Content-addressed and recycled (see uniforms.ts); a `slot` names a call site whose words change
   * every step, which then keeps one buffer rewritten in place (and its bind groups).
   */
  uniform(words: number[], types?: string, slot?: string): GPUBuffer {
    const data = packWords(words, types);
    return slot === undefined ? this.uniformCache.get(data) : this.uniformCache.slot(slot, data);
  }

  // ---- dispatch ------------------------------------------------------------------------

  /**
   * Records one compute dispatch into the current command encoder (submitted by `flush`,
   * or implicitly by `read`). `bindings[i]` is bound at @group(0) @binding(i); an `undefined`
   * entry leaves that binding out (for entry points that don't use it).
   * Example: rt.dispatch('smoke', 'axpy', [params, x, y], [Math.ceil(n / 256)]);
   */
  dispatch(
    file: string,
    entry: string,
    bindings: Array<GPUBuffer | GPUBufferBinding | undefined>,
    workgroups: [number, number?, number?],
    constants?: Record<string, number>,
  ): void {
    const pipeline = this.kernels.pipelineSync(file, entry, constants);
    const group = this.bindGroup(pipeline, bindings);
    const [x, y = 1, z = 1] = workgroups;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new GpuError(`${file}.wgsl:${entry}: dispatch [${x}, ${y}, ${z}] exceeds ${max} workgroups per dimension`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    if (this.profiler) {
      this.endPass();
      const writes = this.profiler.next(`${file}:${entry}`);
      const p = this.currentEncoder().beginComputePass({ timestampWrites: writes });
      p.setPipeline(pipeline);
      p.setBindGroup(0, group);
      p.dispatchWorkgroups(x, y, z);
      p.end();
      return;
    }
    const pass = this.currentPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (++this.unsubmitted >= this.submitEvery) this.flush();
  }

  /** A bind group for these buffers, cached by pipeline and buffer identities (steps repeat). */
  private bindGroup(pipeline: GPUComputePipeline, bindings: Array<GPUBuffer | GPUBufferBinding | undefined>): GPUBindGroup {
    let key = `${this.idOf(pipeline)}`;
    for (const b of bindings) {
      if (!b) key += ',-';
      else if ('buffer' in b) key += `,${this.idOf(b.buffer)}@${b.offset ?? 0}+${b.size ?? ''}`;
      else key += `,${this.idOf(b)}`;
    }
    const hit = this.bindGroups.get(key);
    if (hit) return hit;
    const group = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.flatMap((b, i) => (b ? [{ binding: i, resource: 'buffer' in b ? b : { buffer: b } }] : [])),
    });
    this.bindGroups.set(key, group);
    if (this.bindGroups.size > MAX_CACHED) this.bindGroups.delete(this.bindGroups.keys().next().value!);
    return group;
  }

  private idOf(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = ++this.nextId;
      this.ids.set(o, id);
    }
    return id;
  }

  /** Copies `bytes` from one buffer to another inside the current command stream. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass();
    this.currentEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Command buffers submitted so far. */
  get submits(): number {
    return this.submitCount;
  }

  /**
   * Runs `record` with no submits of the runtime's own in between, so what it records goes out in
   * one piece at the next flush (benchmarks time that piece between two GPU timestamps).
   */
  holdSubmits(record: () => void): void {
    const every = this.submitEvery;
    this.submitEvery = Infinity;
    try {
      record();
    } finally {
      this.submitEvery = every;
    }
  }

  /** Submits everything recorded so far. */
  flush(): void {
    this.unsubmitted = 0;
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.submitCount++;
      this.uniformCache.submitted();
    }
    const uploads = this.pendingUploads.splice(0);
    if (uploads.length) {
      void this.device.queue.onSubmittedWorkDone().then(() => uploads.forEach((b) => b.destroy()));
    }
  }

  /** Waits for all submitted work (and reports errors). */
  async sync(): Promise<void> {
    this.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lost.then((m) => Promise.reject(new GpuError(m)))]);
    this.check();
  }

  /** Reads `bytes` bytes (default: all) of a buffer back to the CPU. */
  async read(buf: GPUBuffer, bytes = buf.size, offset = 0): Promise<ArrayBuffer> {
    const size = align4(bytes);
    const staging = this.device.createBuffer({
      label: 'readback',
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.endPass();
    this.currentEncoder().copyBufferToBuffer(buf, offset, staging, 0, size);
    this.flush();
    try {
      await Promise.race([
        staging.mapAsync(GPUMapMode.READ),
        this.lost.then((m) => Promise.reject(new GpuError(m))),
      ]);
      this.check();
      return staging.getMappedRange().slice(0, bytes);
    } finally {
      staging.destroy();
    }
  }

  async readF32(buf: GPUBuffer, count?: number, offset = 0): Promise<Float32Array> {
    return new Float32Array(await this.read(buf, (count ?? buf.size / 4) * 4, offset));
  }

  async readU32(buf: GPUBuffer, count?: number, offset = 0): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buf, (count ?? buf.size / 4) * 4, offset));
  }

  /**
   * Per-kernel GPU timing (needs the 'timestamp-query' feature): while on, every dispatch runs
   * in its own compute pass with timestamps. `stopProfile` returns total ms and count per
   * "file:entry", slowest first. For benchmarks and investigation, not for production runs.
   */
  startProfile(capacity = 2048): void {
    if (!this.device.features.has('timestamp-query')) throw new GpuError('this adapter has no timestamp-query feature');
    this.flush();
    this.profiler = new Profiler(this.device, capacity);
  }

  async stopProfile(): Promise<Array<{ kernel: string; ms: number; count: number }>> {
    const p = this.profiler;
    if (!p) throw new GpuError('no profile is running');
    this.profiler = null;
    this.endPass();
    p.resolve(this.currentEncoder());
    this.flush();
    return p.read();
  }

  destroy(): void {
    this.uniformCache.destroy();
    this.bindGroups.clear();
    this.pool.clear();
    this.device.destroy();
  }

  private currentEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private currentPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.currentEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }
}

/**
 * Requests an adapter and a device with the adapter's own maximum limits.
 * `gpu` is `navigator.gpu` in the browser, or Dawn's GPU object in Node.
 */
export async function createRuntime(
  gpu: GPU,
  loadShader: ShaderLoader,
  options: RuntimeOptions & { powerPreference?: GPUPowerPreference } = {},
): Promise<GpuRuntime> {
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new GpuError('WebGPU is available but no GPU adapter was found');
  const requiredLimits: Record<string, number> = {};
  for (const key of RAISED_LIMITS) requiredLimits[key] = Number(adapter.limits[key]);
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'qlora-studio' });
  return new GpuRuntime(device, reportAdapter(adapter, options.backend ?? 'webgpu'), loadShader, options);
}

/** Entries kept in the bind-group cache (least recently made go first). */
const MAX_CACHED = 4096;
/** Dispatches per submit on a GPU (see GpuRuntime.submitEvery). */
const SUBMIT_EVERY = 96;

/** Whether an adapter is a CPU WebGPU implementation (SwiftShader, lavapipe) or a fallback adapter. */
export function isCpuImplementation(a: AdapterReport): boolean {
  return a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|cpu/i.test([a.vendor, a.architecture, a.device, a.description, a.backend].join(' '));
}

/** Whether kernels should take their CPU-implementation shapes on this runtime (see RuntimeOptions.kernels). */
export function usesCpuKernels(rt: GpuRuntime): boolean {
  return rt.kernelStyle === 'cpu';
}

/** Workgroups a CPU adapter should get from one dispatch, at the least (see `spreadWorkgroup`). */
export const CPU_MIN_WORKGROUPS = 8;

/**
 * The workgroup size for a dispatch of `invocations` independent invocations whose kernel takes any
 * size (an override constant; no workgroup memory or barriers): `wg` on GPUs. A CPU adapter runs
 * each workgroup on one thread, so a small product of 1–2 workgroups of 64 leaves cores idle (a
 * 512×64×32 NF4 product: 2.8 GFLOP/s in one workgroup, 5.5 in two on 2 vCPUs): there the largest of
 * wg, wg/2, … down to 4 (SwiftShader's SIMD width) that still makes CPU_MIN_WORKGROUPS workgroups.
 */
export function spreadWorkgroup(rt: GpuRuntime, invocations: number, wg = 64): number {
  if (!usesCpuKernels(rt)) return wg;
  let size = wg;
  while (size > 4 && Math.ceil(invocations / size) < CPU_MIN_WORKGROUPS) size /= 2;
  return size;
}

/** Workgroup size of the row-per-invocation kernels (`*_rows` entry points, CPU shapes). */
export const ROW_KERNEL_WG = 16;

/**
 * How a per-row kernel family is dispatched over `rows` rows: `shape` 'workgroup' (entry `entry`,
 * one workgroup per row; `workgroupWG` overrides its workgroup size when given) or 'rows' (entry
 * `${entry}_rows`, one row per invocation, no barriers). Default: 'rows' with CPU kernel shapes.
 */
export function perRowDispatch(
  rt: GpuRuntime,
  entry: string,
  rows: number,
  shape?: 'workgroup' | 'rows',
  workgroupWG?: number,
): { entry: string; groups: [number, number]; constants?: Record<string, number> } {
  if ((shape ?? (usesCpuKernels(rt) ? 'rows' : 'workgroup')) === 'rows') {
    return { entry: `${entry}_rows`, groups: grid(rt, Math.ceil(rows / ROW_KERNEL_WG)), constants: { WG: ROW_KERNEL_WG } };
  }
  return { entry, groups: grid(rt, rows), ...(workgroupWG ? { constants: { WG: workgroupWG } } : {}) };
}

/**
 * Workgroup counts for `groups` workgroups along one logical axis: [x, y] with x ≤ the
 * device's per-dimension limit. Kernels recover the index as wid.x + wid.y·num_workgroups.x
 * and must ignore indices ≥ groups (the last row may overrun).
 */
export function grid(rt: GpuRuntime, groups: number): [number, number] {
  const max = rt.device.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(groups, 0), 1];
  // balanced: as few overrun workgroups in the last row as the limit allows
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Packs numbers into 32-bit words; `types` is a string of 'u' | 'i' | 'f' per word (default 'u'). */
export function packWords(words: number[], types = ''): ArrayBuffer {
  const buf = new ArrayBuffer(words.length * 4);
  const view = new DataView(buf);
  words.forEach((w, i) => {
    const t = types[i] ?? 'u';
    if (t === 'f') view.setFloat32(i * 4, w, true);
    else if (t === 'i') view.setInt32(i * 4, w, true);
    else view.setUint32(i * 4, w >>> 0, true);
  });
  return buf;
}

/** Timestamp pairs per dispatch, resolved into per-kernel totals. */
class Profiler {
  private readonly set: GPUQuerySet;
  private readonly labels: string[] = [];
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;

  constructor(
    device: GPUDevice,
    private readonly capacity: number,
  ) {
    this.set = device.createQuerySet({ type: 'timestamp', count: capacity * 2 });
    this.resolveBuf = device.createBuffer({ size: capacity * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ size: capacity * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  next(label: string): GPUComputePassTimestampWrites | undefined {
    const i = this.labels.length;
    if (i >= this.capacity) return undefined;
    this.labels.push(label);
    return { querySet: this.set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  resolve(enc: GPUCommandEncoder): void {
    const n = this.labels.length * 2;
    if (!n) return;
    enc.resolveQuerySet(this.set, 0, n, this.resolveBuf, 0);
    enc.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, n * 8);
  }

  async read(): Promise<Array<{ kernel: string; ms: number; count: number }>> {
    const totals = new Map<string, { ms: number; count: number }>();
    if (this.labels.length) {
      await this.readBuf.mapAsync(GPUMapMode.READ);
      const t = new BigInt64Array(this.readBuf.getMappedRange().slice(0, this.labels.length * 16));
      this.readBuf.unmap();
      this.labels.forEach((k, i) => {
        const ms = Number(t[2 * i + 1]! - t[2 * i]!) / 1e6;
        const e = totals.get(k) ?? { ms: 0, count: 0 };
        e.ms += Math.max(0, ms);
        e.count++;
        totals.set(k, e);
      });
    }
    this.set.destroy();
    this.resolveBuf.destroy();
    this.readBuf.destroy();
    return [...totals].map(([kernel, v]) => ({ kernel, ...v })).sort((a, b) => b.ms - a.ms);
  }
}
