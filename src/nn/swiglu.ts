// SwiGLU activation (shaders/swiglu.wgsl): h = silu(g) ⊙ u with silu(g) = g·σ(g), the Llama MLP's
// act_fn(gate_proj(x)) * up_proj(x).
//
// Buffers (n = T·F elements, row-major [T, F], any n):
//   g  f32 [T, F]  gate projection output      u  f32 [T, F]  up projection output
//   h  f32 [T, F]  forward output (down_proj input)
//   dh f32 [T, F]  gradient of h
//   dg, du f32 [T, F]  gradients of g and u: dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g).
//   Passing dg = g and du = u (the default) computes them in place over g and u, which the
//   backward no longer needs, saving two [T, F] buffers.
// With n % 4 == 0 the forward and the in-place backward take four elements per invocation (vec4).

import { grid, type GpuRuntime } from '../gpu/runtime.ts';

const WG = 256;

/** Records h = silu(g)·u over n elements. Returns h (created when not given). */
export function swigluForward(rt: GpuRuntime, g: GPUBuffer, u: GPUBuffer, n: number, h?: GPUBuffer): GPUBuffer {
  const out = h ?? rt.create(n * 4, 'swiglu.h');
  if (n > 0) {
    const v = n % 4 === 0 ? 4 : 1;
    rt.dispatch('swiglu', v === 4 ? 'swiglu_forward4' : 'swiglu_forward', [rt.uniform([n / v]), g, u, out], grid(rt, Math.ceil(n / v / WG)));
  }
  return out;
}

/**
 * Records the backward over n elements. dg/du default to g/u (in place: g becomes dg, u becomes
 * du); otherwise they must be two buffers distinct from g, u and dh. Returns { dg, du }.
 */
export function swigluBackward(
  rt: GpuRuntime,
  dh: GPUBuffer,
  g: GPUBuffer,
  u: GPUBuffer,
  n: number,
  dg: GPUBuffer = g,
  du: GPUBuffer = u,
): { dg: GPUBuffer; du: GPUBuffer } {
  const inPlace = dg === g && du === u;
  if (!inPlace && (dg === g || du === u || dg === u || du === g)) {
    throw new Error('swigluBackward: dg/du must both be in place (g, u) or both separate buffers');
  }
  if (n > 0) {
    const v = inPlace && n % 4 === 0 ? 4 : 1;
    const groups = grid(rt, Math.ceil(n / v / WG));
    if (v === 4) rt.dispatch('swiglu', 'swiglu_backward_inplace4', [rt.uniform([n / 4]), dh, g, u], groups);
    else if (inPlace) rt.dispatch('swiglu', 'swiglu_backward_inplace', [rt.uniform([n]), dh, g, u], groups);
    else rt.dispatch('swiglu', 'swiglu_backward', [rt.uniform([n]), dh, g, u, dg, du], groups);
  }
  return { dg, du };
}
