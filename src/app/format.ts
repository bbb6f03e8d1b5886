// Human-readable numbers and the meaning of the WebGPU limits the studio cares about.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1073741824 → "1 GiB", 134217728 → "128 MiB", 65536 → "64 KiB", 1000 → "1000 B". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || Number.isInteger(v) ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${Number(v.toFixed(digits))} ${UNITS[u]}`;
}

/** Grouped digits: 100003 → "100,003". */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US') : String(n);
}

/** 0 → "0", 1.192e-7 → "1.19e-7", 1e-6 → "1e-6", NaN → "NaN". */
export function formatError(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  return x.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export interface LimitInfo {
  key: string;
  kind: 'bytes' | 'count';
  /** The WebGPU default a device gets unless it asks for more. */
  defaultValue: number;
  meaning: string;
}

/** The limits the runtime raises to the adapter's maximum, in display order. */
export const LIMITS: readonly LimitInfo[] = [
  { key: 'maxBufferSize', kind: 'bytes', defaultValue: 268_435_456, meaning: 'largest single GPU buffer' },
  {
    key: 'maxStorageBufferBindingSize',
    kind: 'bytes',
    defaultValue: 134_217_728,
    meaning: 'largest buffer one kernel can read or write',
  },
  { key: 'maxUniformBufferBindingSize', kind: 'bytes', defaultValue: 65_536, meaning: 'largest uniform (parameter) block' },
  {
    key: 'maxComputeWorkgroupStorageSize',
    kind: 'bytes',
    defaultValue: 16_384,
    meaning: 'shared memory per workgroup (matmul tiles)',
  },
  { key: 'maxStorageBuffersPerShaderStage', kind: 'count', defaultValue: 8, meaning: 'storage buffers per kernel' },
  { key: 'maxComputeInvocationsPerWorkgroup', kind: 'count', defaultValue: 256, meaning: 'threads per workgroup' },
  { key: 'maxComputeWorkgroupSizeX', kind: 'count', defaultValue: 256, meaning: 'workgroup width' },
  { key: 'maxComputeWorkgroupSizeY', kind: 'count', defaultValue: 256, meaning: 'workgroup height' },
  { key: 'maxComputeWorkgroupSizeZ', kind: 'count', defaultValue: 64, meaning: 'workgroup depth' },
  { key: 'maxComputeWorkgroupsPerDimension', kind: 'count', defaultValue: 65_535, meaning: 'workgroups per dispatch axis' },
  { key: 'maxBindGroups', kind: 'count', defaultValue: 4, meaning: 'bind groups per pipeline' },
];

export function formatLimit(info: Pick<LimitInfo, 'kind'>, value: number): string {
  return info.kind === 'bytes' ? formatBytes(value) : formatCount(value);
}

/** Adapter features the engine uses when present (everything also works without them). */
export const ENGINE_FEATURES: ReadonlyArray<{ name: string; use: string }> = [
  { name: 'shader-f16', use: 'half-precision math in kernels' },
  { name: 'subgroups', use: 'faster reductions and matmuls' },
  { name: 'timestamp-query', use: 'per-kernel GPU timings' },
];

/** 134515008 → "135M", 1235814400 → "1.24B", 92480 → "92.5K". */
export function formatParams(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const [v, u] = n >= 1e9 ? [n / 1e9, 'B'] : n >= 1e6 ? [n / 1e6, 'M'] : n >= 1e3 ? [n / 1e3, 'K'] : [n, ''];
  const digits = v >= 100 || u === '' ? 0 : v >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))}${u}`;
}

/** Bytes per second: "12.4 MiB/s". */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '—';
}

/** Seconds as "45 s", "3 min 20 s", "1 h 05 min"; null/Infinity → "—". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A loss with 4 significant decimals: "2.3456"; missing → "—". */
export function formatLoss(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(4);
}

/** A learning rate: "3.00e-4", 0 → "0". */
export function formatLr(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x === 0 ? '0' : x.toExponential(2).replace('e-', 'e-').replace('e+', 'e');
}

/** A fraction as a percentage: 0.4567 → "45.7%". */
export function formatPercent(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : '—';
}
