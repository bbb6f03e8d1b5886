import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { mulberry32 } from '../util/random.ts';
import { AdamW, GpuOptimizerStore, adamwReference, type AdamWHyper } from './adamw.ts';
import { GRAD_NORM, GradNorm, clipCoefficient, gradNormReference } from './grad-norm.ts';
import { learningRate } from './schedule.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

const rand = mulberry32(1234);
const uniform = (n: number, scale = 1) => new Float32Array(n).map(() => (rand() * 2 - 1) * scale);

/** Max of |got − want| / max(|want|, floor): relative error, absolute below `floor`. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>, floor: number): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), floor));
  return e;
}

interface Ref { p: Float64Array; m: Float64Array; v: Float64Array; p32: Float32Array; m32: Float32Array; v32: Float32Array }
const refOf = (p: Float32Array): Ref => ({
  p: Float64Array.from(p), m: new Float64Array(p.length), v: new Float64Array(p.length),
  p32: p.slice(), m32: new Float32Array(p.length), v32: new Float32Array(p.length),
});

const hyper: AdamWHyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

describe('AdamW (GPU) vs torch.optim.AdamW reference', () => {
  it('WGSL compiles', async () => {
    await rt.kernels.validate('adamw');
    await rt.kernels.validate('reduce');
  });

  it('several steps on random data over pages of awkward sizes match the float64 reference (rel 1e-6)', async () => {
    const sizes = [1, 7, 4099, 70_001];
    const store = new GpuOptimizerStore(rt);
    const refs = sizes.map((n, k) => {
      const p = uniform(n);
      store.add(`page${k}`, p);
      return refOf(p);
    });
    const opt = new AdamW(rt, store, hyper);
    const total = 6;
    for (let s = 0; s < total; s++) {
      const lr = learningRate(s, total, { lr: 1e-2, schedule: 'cosine', warmupSteps: 1 }) || 1e-3;
      for (let k = 0; k < sizes.length; k++) {
        const g = uniform(sizes[k]!, 0.5);
        rt.write((await store.acquire(`page${k}`)).grads, g);
        store.release(`page${k}`);
        const r = refs[k]!;
        adamwReference(r.p, g, r.m, r.v, { ...hyper, lr, step: s + 1 });
        adamwReference(r.p32, g, r.m32, r.v32, { ...hyper, lr, step: s + 1, f32: true });
      }
      await opt.step(lr);
      // Submit the step before the next queue.writeBuffer of the gradients (writes are queue-ordered).
      rt.flush();
    }
    expect(opt.stepCount).toBe(total);
    for (let k = 0; k < sizes.length; k++) {
      const page = await store.acquire(`page${k}`);
      const [p, m, v] = [await rt.readF32(page.params, page.length), await rt.readF32(page.m, page.length), await rt.readF32(page.v, page.length)];
      const r = refs[k]!;
      console.log(`AdamW n=${page.length}: p rel err vs f64 ${relErr(p, r.p, 0.1).toExponential(2)}, vs torch-f32 ${relErr(p, r.p32, 0.1).toExponential(2)}; m ${relErr(m, r.m, 1e-2).toExponential(2)}, v ${relErr(v, r.v, 1e-6).toExponential(2)}`);
      // Params are O(1): relative 1e-6 (absolute 1e-7 below |p| = 0.1).
      expect(relErr(p, r.p, 0.1)).toBeLessThan(1e-6);
      expect(relErr(m, r.m, 1e-2)).toBeLessThan(1e-5);
      expect(relErr(v, r.v, 1e-6)).toBeLessThan(1e-5);
      // Against torch's f32 arithmetic: bit-equal on SwiftShader; within 6e-7 on an H100 (Dawn/Vulkan:
      // FMA contraction and WGSL's 2.5-ulp division).
      expect(relErr(p, r.p32, 0.1)).toBeLessThan(1e-6);
      store.release(`page${k}`);
    }
    opt.destroy();
    store.destroy();
  });

  it('bias correction: the first step moves every weight by lr·g/(|g| + eps) ≈ lr·sign(g)', async () => {
    const n = 1000;
    const p0 = uniform(n);
    const g = uniform(n);
    const store = new GpuOptimizerStore(rt);
    const page = store.add('w', p0);
    rt.write(page.grads, g);
    const opt = new AdamW(rt, store, { ...hyper, weightDecay: 0 });
    const lr = 1e-3;
    await opt.step(lr);
    const p1 = await rt.readF32(page.params, n);
    for (let i = 0; i < n; i++) {
      const want = p0[i]! - (lr * g[i]!) / (Math.abs(g[i]!) + 1e-8); // m̂ = g, v̂ = g²
      expect(Math.abs(p1[i]! - want)).toBeLessThan(2e-7);
    }
    opt.destroy();
    store.destroy();
  });

  it('decoupled weight decay: with zero gradients p ← p·(1 − lr·wd) exactly', async () => {
    const n = 513;
    const p0 = uniform(n);
    const store = new GpuOptimizerStore(rt);
    const page = store.add('w', p0);
    const opt = new AdamW(rt, store, { ...hyper, weightDecay: 0.1 });
    await opt.step(0.05);
    await opt.step(0.05);
    const p2 = await rt.readF32(page.params, n);
    const d = Math.fround(1 - 0.05 * 0.1);
    for (let i = 0; i < n; i++) expect(p2[i]).toBe(Math.fround(Math.fround(p0[i]! * d) * d));
    opt.destroy();
    store.destroy();
  });
});

describe('global gradient norm and clipping (GPU)', () => {
  for (const kernel of ['workgroup', 'rows'] as const)
  it(`norm over buffers of lengths 1, 7 and 1000003 matches float64 (rel 1e-5), ${kernel} kernel`, async () => {
    const grads = [uniform(1, 3), uniform(7), uniform(1_000_003, 0.01)];
    const bufs = grads.map((g) => rt.upload(g));
    const gn = new GradNorm(rt, grads.map((g, i) => ({ buffer: bufs[i]!, length: g.length })), kernel);
    const want = gradNormReference(grads);
    for (const maxNorm of [0, 0.3, 1e6]) {
      gn.record(maxNorm);
      const got = await gn.read();
      expect(Math.abs(got.norm - want) / want).toBeLessThan(1e-5);
      expect(Math.abs(got.sumSq - want * want) / (want * want)).toBeLessThan(2e-5);
      expect(Math.abs(got.coef - clipCoefficient(want, maxNorm))).toBeLessThan(1e-6);
    }
    gn.record(0.3);
    expect((await gn.read()).coef).toBeLessThan(1);
    gn.record(0);
    expect((await gn.read()).coef).toBe(1);
    gn.destroy();
    bufs.forEach((b) => b.destroy());
  });

  it('clipping on/off: AdamW reads the clip coefficient from the GPU, no readback in between', async () => {
    for (const maxNorm of [0.3, 0]) {
      const sizes = [300, 4097];
      const store = new GpuOptimizerStore(rt);
      const refs: Ref[] = [];
      const pages = sizes.map((n, k) => {
        const p = uniform(n);
        refs.push(refOf(p));
        return store.add(`p${k}`, p);
      });
      const gn = new GradNorm(rt, pages.map((p) => ({ buffer: p.grads, length: p.length })));
      const opt = new AdamW(rt, store, hyper);
      for (let s = 1; s <= 3; s++) {
        const grads = sizes.map((n) => uniform(n, 2));
        pages.forEach((p, k) => rt.write(p.grads, grads[k]!));
        gn.record(maxNorm);
        await opt.step(1e-2, { buffer: gn.result, index: GRAD_NORM.coef });
        const { norm, coef } = await gn.read(); // for the log, after the step
        const want = gradNormReference(grads);
        expect(Math.abs(norm - want) / want).toBeLessThan(1e-5);
        if (maxNorm > 0) expect(coef).toBeLessThan(0.3);
        else expect(coef).toBe(1);
        refs.forEach((r, k) => adamwReference(r.p, grads[k]!, r.m, r.v, { ...hyper, lr: 1e-2, step: s, gradScale: coef }));
      }
      for (let k = 0; k < sizes.length; k++) {
        expect(relErr(await rt.readF32(pages[k]!.params, sizes[k]), refs[k]!.p, 0.1)).toBeLessThan(1e-6);
        expect(relErr(await rt.readF32(pages[k]!.m, sizes[k]), refs[k]!.m, 1e-2)).toBeLessThan(1e-5);
      }
      gn.destroy();
      opt.destroy();
      store.destroy();
    }
  });
});
