// Elementwise ops the layers need (shaders/elementwise.wgsl), plus the grid helper every
// nn kernel uses to spread many workgroups over a 2D dispatch.
//
// Buffers are flat f32 arrays of n elements (any shape, row-major):
//   add(a, b, n, alpha)   a[i] += alpha·b[i]           (residual add: alpha = 1)
//   addInto(out, x, b, n) out[i] = x[i] + b[i]         (out must not alias x or b)
//   scale(a, n, alpha)    a[i] *= alpha
//   fill(a, n, value)     a[i] = value;  zero(a, n) = fill 0
//   copy(src, dst, n)     dst[dstOffset + i] = src[srcOffset + i] (a copyBufferToBuffer; offsets in
//                         f32 elements; src and dst must be different buffers)
// Everything is recorded into the runtime's command stream: no readback, no sync.

import { grid, type GpuRuntime } from '../gpu/runtime.ts';

const FILE = 'elementwise';
const WG = 256;


function run(rt: GpuRuntime, entry: string, bindings: GPUBuffer[], n: number, alpha: number): void {
  if (n <= 0) return;
  rt.dispatch(FILE, entry, [rt.uniform([n, alpha], 'uf'), ...bindings], grid(rt, Math.ceil(n / WG)));
}

/** a += alpha·b over n elements (four per invocation when n % 4 == 0). */
export function add(rt: GpuRuntime, a: GPUBuffer, b: GPUBuffer, n: number, alpha = 1): void {
  if (n % 4 === 0) run(rt, 'axpy4', [a, b], n / 4, alpha);
  else run(rt, 'axpy', [a, b], n, alpha);
}

/** out = x + b over n elements. */
export function addInto(rt: GpuRuntime, out: GPUBuffer, x: GPUBuffer, b: GPUBuffer, n: number): void {
  run(rt, 'add_out', [x, b, out], n, 0);
}

/** a *= alpha over n elements. */
export function scale(rt: GpuRuntime, a: GPUBuffer, n: number, alpha: number): void {
  run(rt, 'scale', [a], n, alpha);
}

/** a = value over n elements. */
export function fill(rt: GpuRuntime, a: GPUBuffer, n: number, value: number): void {
  run(rt, 'fill', [a], n, value);
}

/** a = 0 over n elements. */
export function zero(rt: GpuRuntime, a: GPUBuffer, n: number): void {
  fill(rt, a, n, 0);
}

/** dst[dstOffset..+n] = src[srcOffset..+n] (f32 elements), recorded in the command stream. */
export function copy(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, n: number, srcOffset = 0, dstOffset = 0): void {
  if (n <= 0) return;
  rt.copy(src, srcOffset * 4, dst, dstOffset * 4, n * 4);
}
