import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { add, addInto, copy, fill, scale, zero } from './elementwise.ts';
import { grid } from '../gpu/runtime.ts';
import { randn } from './reference.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('elementwise');
});
afterAll(() => rt?.destroy());

const f = Math.fround;

describe('elementwise', () => {
  for (const n of [1037, 1036]) // 1036: add takes the vec4 kernel
  it(`add, addInto, scale, fill, zero, copy on an awkward size (n=${n})`, async () => {
    const a = randn(n, 1);
    const b = randn(n, 2);
    const ba = rt.upload(a);
    const bb = rt.upload(b);
    const out = rt.create(n * 4);
    addInto(rt, out, ba, bb, n);
    expect(Array.from(await rt.readF32(out))).toEqual(Array.from(a, (x, i) => f(x + b[i]!)));
    add(rt, ba, bb, n);
    expect(Array.from(await rt.readF32(ba))).toEqual(Array.from(a, (x, i) => f(x + b[i]!)));
    add(rt, out, bb, n, -1); // (a + b) − b with one rounding (FMA allowed): close to a
    const back = await rt.readF32(out);
    a.forEach((x, i) => expect(Math.abs(back[i]! - x)).toBeLessThanOrEqual(2e-7 * (Math.abs(b[i]!) + Math.abs(x))));
    scale(rt, bb, n, 0.5);
    expect(Array.from(await rt.readF32(bb))).toEqual(Array.from(b, (x) => f(x * 0.5)));
    fill(rt, bb, n - 1, 3.25);
    const filled = await rt.readF32(bb);
    expect(filled[0]).toBe(3.25);
    expect(filled[n - 2]).toBe(3.25);
    expect(filled[n - 1]).toBe(f(b[n - 1]! * 0.5)); // n − 1 elements only
    copy(rt, ba, bb, 10, 5, 100);
    const copied = await rt.readF32(bb);
    const sum = await rt.readF32(ba);
    for (let i = 0; i < 10; i++) expect(copied[100 + i]).toBe(sum[5 + i]);
    zero(rt, ba, n);
    expect((await rt.readF32(ba)).every((x) => x === 0)).toBe(true);
    for (const x of [ba, bb, out]) x.destroy();
  });

  it('spreads more than 65535 workgroups over a 2D grid', async () => {
    expect(grid(rt, 65535)).toEqual([65535, 1]);
    expect(grid(rt, 65536)).toEqual([32768, 2]); // balanced rows
    expect(grid(rt, 65535 * 2 + 1)).toEqual([43691, 3]);
    const n = 65536 * 256 + 3;
    const a = rt.create(n * 4);
    fill(rt, a, n, 1);
    const twos = rt.upload(new Float32Array(n).fill(2));
    add(rt, a, twos, n);
    const got = await rt.readF32(a);
    expect(got[0]).toBe(3);
    expect(got[n - 1]).toBe(3);
    expect(got.every((x) => x === 3)).toBe(true);
    a.destroy();
    twos.destroy();
  });
});
