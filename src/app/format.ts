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
