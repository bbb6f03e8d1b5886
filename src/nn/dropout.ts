// Dropout with a reproducible mask (shaders/rng.wgsl `dropout`): y[i] = x[i]/(1−p) when the
// counter-based RNG keeps element i under `key`, else 0. Same key → same mask, so the backward
// applies the forward's mask to the gradient. In place when x === y.
//   x, y  f32 [n]

import type { GpuRuntime } from '../gpu/runtime.ts';
import { grid } from './elementwise.ts';
import { dropoutKeep, dropoutThreshold } from '../train/rng.ts';

const WG = 256;

export function dropout(rt: GpuRuntime, x: GPUBuffer, y: GPUBuffer, n: number, key: number, p: number): void {
  if (n <= 0) return;
  const params = rt.uniform([key >>> 0, dropoutThreshold(p), n, 1 / (1 - p)], 'uuuf');
  const groups = grid(rt, Math.ceil(n / WG));
  if (x === y) rt.dispatch('rng', 'dropout_inplace', [params, x], groups);
  else rt.dispatch('rng', 'dropout', [params, x, y], groups);
}

/** Float64 reference of the same mask and scaling. */
export function dropoutRef(x: ArrayLike<number>, key: number, p: number): Float64Array {
  const t = dropoutThreshold(p);
  const s = Math.fround(1 / (1 - p));
  return Float64Array.from({ length: x.length }, (_, i) => (dropoutKeep(key, i, t) ? x[i]! * s : 0));
}
