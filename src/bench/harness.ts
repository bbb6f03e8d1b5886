// Timing GPU work: warm up, then run a kernel R times between two `await rt.sync()` calls, several
// repeats, median. With the `timestamp-query` feature the interval is read from GPU timestamps written
// by empty compute passes submitted immediately before and after the R recorded runs (the runs are
// recorded first, then begin-mark, runs and end-mark are submitted back to back, so CPU encoding time
// stays outside the interval; any host function that records work through the runtime can be timed);
// otherwise it is wall time around the sync, which includes encoding, submit and wait overhead,
// amortized over R. Each result says which method it used.

import type { GpuRuntime } from '../gpu/runtime.ts';

export type TimingMethod = 'timestamp' | 'wall';

export interface BenchResult {
  /** What was measured, e.g. "fused NF4 matmul". */
  name: string;
  /** The shape, e.g. "256x1024x1024" (M×K×N) or "n=4194304". */
  shape: string;
  /** Median time of one run, milliseconds. */
  ms: number;
  gflops?: number;
  /** Bytes moved (read + written) per second / 1e9. */
  gbps?: number;
  /** A ratio against the named baseline (higher is better, as described in `ratioOf`). */
  ratio?: number;
  ratioOf?: string;
  /** The goal, human readable, and whether it is met. */
  goal?: string;
  met?: boolean;
  timing?: TimingMethod;
  /** Process CPU time per run, ms (Node): on CPU WebGPU implementations the work runs in-process, so this
   *  stays meaningful when other processes share the cores (wall ~ cpuMs / cores on an idle machine). */
  cpuMs?: number;
  /** Spread: min and max of the repeat medians, ms. */
  minMs?: number;
  maxMs?: number;
  note?: string;
  /** Extra figures (errors, peers' numbers). */
  extra?: Record<string, number | string>;
}

export interface TimeOptions {
  /** Warm-up runs (default 2). */
  warmup?: number;
  /** Runs per repeat; default: chosen so that a repeat takes about `targetMs`. */
  reps?: number;
  /** Repeats (default 5); the median of them is reported. */
  repeats?: number;
  /** Target time per repeat when `reps` is not given (default 100 ms). */
  targetMs?: number;
  /** Upper bound for the automatic reps (default 200). */
  maxReps?: number;
  /** Force a timing method (default: timestamp when the device has it). */
  method?: TimingMethod;
}

export interface Timing {
  ms: number;
  minMs: number;
  maxMs: number;
  samples: number[];
  reps: number;
  method: TimingMethod;
  /** Median process CPU time per run, ms (Node only). */
  cpuMs?: number;
}

type CpuUsage = () => { user: number; system: number };
const cpuUsage: CpuUsage | undefined = (globalThis as { process?: { cpuUsage?: CpuUsage } }).process?.cpuUsage;
const cpuNowMs = (): number => {
  const u = cpuUsage!();
  return (u.user + u.system) / 1000;
};

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const now = (): number => globalThis.performance.now();

/** GPU timestamps around submitted work: empty compute passes with timestampWrites. */
class TimestampProbe {
  private readonly set: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;

  constructor(private readonly rt: GpuRuntime) {
    const d = rt.device;
    this.set = d.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolve = d.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = d.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Submits: begin mark, the work recorded in the runtime so far, end mark (+ resolve). */
  submitAround(): void {
    const d = this.rt.device;
    const begin = d.createCommandEncoder();
    begin.beginComputePass({ timestampWrites: { querySet: this.set, beginningOfPassWriteIndex: 0 } }).end();
    const end = d.createCommandEncoder();
    end.beginComputePass({ timestampWrites: { querySet: this.set, beginningOfPassWriteIndex: 1 } }).end();
    end.resolveQuerySet(this.set, 0, 2, this.resolve, 0);
    end.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16);
    d.queue.submit([begin.finish()]);
    this.rt.flush();
    d.queue.submit([end.finish()]);
  }

  /** Milliseconds between the two marks (after the second was submitted). */
  async elapsedMs(): Promise<number> {
    await this.readback.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    return Number(t[1]! - t[0]!) / 1e6;
  }

  destroy(): void {
    this.set.destroy();
    this.resolve.destroy();
    this.readback.destroy();
  }
}

/** Whether timestamp queries are usable on this runtime. */
export function hasTimestamps(rt: GpuRuntime): boolean {
  return rt.features.has('timestamp-query');
}

/**
 * Times `run` (which records GPU work through `rt`, e.g. one dispatch): median milliseconds per run.
 */
export async function timeGpu(rt: GpuRuntime, run: () => void, opts: TimeOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2;
  const repeats = opts.repeats ?? 5;
  const method: TimingMethod = opts.method ?? (hasTimestamps(rt) ? 'timestamp' : 'wall');
  for (let i = 0; i < warmup; i++) run();
  await rt.sync();
  let reps = opts.reps;
  if (!reps) {
    const t0 = now();
    run();
    await rt.sync();
    const one = Math.max(now() - t0, 0.01);
    reps = Math.max(1, Math.min(opts.maxReps ?? 200, Math.round((opts.targetMs ?? 100) / one)));
  }
  const probe = method === 'timestamp' ? new TimestampProbe(rt) : null;
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  try {
    for (let r = 0; r < repeats; r++) {
      await rt.sync();
      const c0 = cpuUsage ? cpuNowMs() : 0;
      let ms: number;
      if (probe) {
        rt.holdSubmits(() => {
          for (let i = 0; i < reps; i++) run();
        });
        probe.submitAround();
        await rt.sync();
        ms = await probe.elapsedMs();
      } else {
        const t0 = now();
        for (let i = 0; i < reps; i++) run();
        await rt.sync();
        ms = now() - t0;
      }
      samples.push(ms / reps);
      if (cpuUsage) cpuSamples.push((cpuNowMs() - c0) / reps);
    }
  } finally {
    probe?.destroy();
  }
  return {
    ms: median(samples),
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    samples,
    reps,
    method,
    cpuMs: cpuSamples.length ? median(cpuSamples) : undefined,
  };
}

/** GFLOP/s of a matrix product M×K×N taking `ms`. */
export function matmulGflops(M: number, K: number, N: number, ms: number): number {
  return (2 * M * K * N) / (ms * 1e6);
}

/** GB/s for `bytes` moved in `ms`. */
export function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}
