import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import {
  crossEntropyCount,
  crossEntropyForward,
  crossEntropyForwardBackward,
  crossEntropyReduce,
} from './cross-entropy.ts';
import {
  compare,
  crossEntropyBackward as refBackward,
  crossEntropyForward as refForward,
  numericalGradient,
  randn,
} from './reference.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('cross_entropy');
});
afterAll(() => rt?.destroy());

function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5): void {
  const r = compare(got, want, rtol);
  expect(r.ok, `${label}: ${r.message}`).toBe(true);
}

function logitsFor(T: number, V: number, seed: number): Float32Array {
  const x = randn(T * V, seed, 3);
  // A row of huge logits: the max subtraction must keep exp finite.
  for (let j = 0; j < V; j++) x[j] = x[j]! + 1000;
  return x;
}

describe('cross-entropy', () => {
  it('float64 reference backward matches finite differences of the mean loss', () => {
    const T = 4;
    const V = 7;
    const labels = [3, -100, 0, 6];
    const x = Float64Array.from(randn(T * V, 1, 2));
    const d = refBackward(x, labels, T, V);
    const num = numericalGradient((xx) => refForward(xx, labels, T, V).mean, x);
    expectClose('ref dlogits', d, num, 1e-6);
    expect(refForward(x, labels, T, V).count).toBe(3);
  });

  for (const kernel of ['workgroup', 'rows'] as const)
  for (const [T, V] of [
    [9, 7],
    [9, 513],
    [37, 64],
  ] as Array<[number, number]>) {
    it(`forward, fused backward (GPU count and host count) and reduction, T=${T}, V=${V}, ${kernel} kernel`, async () => {
      const x = logitsFor(T, V, V);
      const labels = Int32Array.from({ length: T }, (_, t) => (t % 4 === 1 ? -100 : (t * 37) % V));
      labels[T - 1] = V; // out of range: ignored like −100
      const ref = refForward(x, labels, T, V);
      const rd = refBackward(x, labels, T, V);
      const blab = rt.upload(labels);

      // Forward only: logits untouched.
      const bx = rt.upload(x);
      const losses = crossEntropyForward(rt, { logits: bx, labels: blab, rows: T, V, kernel });
      expectClose('losses (forward)', await rt.readF32(losses), ref.losses);
      expect(Array.from(await rt.readF32(bx))).toEqual(Array.from(x));

      // Fused with the count from the GPU, then reduced on the GPU.
      const stats = crossEntropyCount(rt, blab, T, V);
      expect(Array.from(await rt.readF32(stats))).toEqual([0, 0, ref.count, Math.fround(1 / ref.count)]);
      const l2 = crossEntropyForwardBackward(rt, { logits: bx, labels: blab, rows: T, V, kernel, count: stats });
      crossEntropyReduce(rt, l2, blab, T, V, stats);
      expectClose('losses (fused)', await rt.readF32(l2), ref.losses);
      expectClose('dlogits (GPU count)', await rt.readF32(bx), rd);
      const st = await rt.readF32(stats);
      expectClose('stats', st, [ref.mean, ref.sum, ref.count, 1 / ref.count]);

      // Host count with a gradient scale (e.g. 1/2 for two micro-batches).
      const bx2 = rt.upload(x);
      crossEntropyForwardBackward(rt, { logits: bx2, labels: blab, rows: T, V, kernel, count: ref.count, gradScale: 0.5, losses: l2 });
      expectClose('dlogits (host count, gradScale)', await rt.readF32(bx2), refBackward(x, labels, T, V, 0.5 / ref.count));

      // In chunks of rows: rows [0, 4) then [4, T), logits holding only the chunk.
      const l3 = rt.create(T * 4);
      for (const [r0, r1] of [
        [0, 4],
        [4, T],
      ]) {
        const chunk = rt.upload(x.subarray(r0 * V, r1 * V));
        crossEntropyForwardBackward(rt, { logits: chunk, labels: blab, rows: r1 - r0, V, kernel, rowOffset: r0, count: ref.count, losses: l3 });
        expectClose(`dlogits chunk ${r0}`, await rt.readF32(chunk), rd.subarray(r0 * V, r1 * V));
        chunk.destroy();
      }
      expectClose('losses (chunked)', await rt.readF32(l3), ref.losses);
      for (const b of [blab, bx, bx2, losses, stats, l2, l3]) b.destroy();
    });
  }

  for (const kernel of ['workgroup', 'rows'] as const)
  it(`all labels ignored: losses 0, count 0, mean 0, dlogits 0, no NaN, ${kernel} kernel`, async () => {
    const T = 3;
    const V = 5;
    const x = randn(T * V, 5);
    const labels = Int32Array.from([-100, -100, -100]);
    const bx = rt.upload(x);
    const blab = rt.upload(labels);
    const stats = crossEntropyCount(rt, blab, T, V);
    const losses = crossEntropyForwardBackward(rt, { logits: bx, labels: blab, rows: T, V, kernel, count: stats });
    crossEntropyReduce(rt, losses, blab, T, V, stats);
    expect(Array.from(await rt.readF32(losses))).toEqual([0, 0, 0]);
    expect(Array.from(await rt.readF32(bx)).every((v) => v === 0)).toBe(true);
    expect(Array.from(await rt.readF32(stats))).toEqual([0, 0, 0, 0]);
    const bx2 = rt.upload(x);
    crossEntropyForwardBackward(rt, { logits: bx2, labels: blab, rows: T, V, kernel, count: 0, losses });
    expect(Array.from(await rt.readF32(bx2)).every((v) => v === 0)).toBe(true);
    for (const b of [bx, bx2, blab, stats, losses]) b.destroy();
  });

  for (const kernel of ['workgroup', 'rows'] as const)
  it(`vocabulary of 151936 (Qwen2.5), ${kernel} kernel`, async () => {
    const T = 2;
    const V = 151936;
    const x = logitsFor(T, V, 77);
    const labels = Int32Array.from([12345, V - 1]);
    const bx = rt.upload(x);
    const blab = rt.upload(labels);
    const losses = crossEntropyForwardBackward(rt, { logits: bx, labels: blab, rows: T, V, kernel, count: 2 });
    expectClose('losses', await rt.readF32(losses), refForward(x, labels, T, V).losses);
    expectClose('dlogits', await rt.readF32(bx), refBackward(x, labels, T, V));
    for (const b of [bx, blab, losses]) b.destroy();
  });
});
