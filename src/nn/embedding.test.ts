import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { embeddingForward } from './embedding.ts';
import { embeddingForward as refForward, randn } from './reference.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('embedding');
});
afterAll(() => rt?.destroy());

/** f32 → bf16 bits (round to nearest even) and back. */
function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}
function fromBf16(h: number): number {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
}
/** f32 → IEEE half bits (normal range, round to nearest even) and back. */
function f16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  let m = u & 0x7fffff;
  if (e <= 0) return sign; // flush tiny values (not in this test's range)
  const round = m & 0x1fff;
  m >>>= 13;
  let h = sign | (e << 10) | m;
  if (round > 0x1000 || (round === 0x1000 && (m & 1))) h++;
  return h;
}
function fromF16(h: number): number {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

describe('embedding', () => {
  for (const [T, V, D] of [
    [7, 11, 5],
    [33, 50, 129],
  ] as Array<[number, number, number]>) {
    it(`gathers rows (f32, f16, bf16 tables), T=${T}, V=${V}, D=${D}`, async () => {
      const table = randn(V * D, V + D);
      const ids = Uint32Array.from({ length: T }, (_, t) => (t * 7 + 3) % V);
      ids[1] = V + 5; // out of range: a zero row
      const bids = rt.upload(ids);
      const out = embeddingForward(rt, bids, rt.upload(table), T, V, D);
      expect(Array.from(await rt.readF32(out))).toEqual(Array.from(refForward(table, ids, T, V, D)));

      for (const [dtype, enc, dec] of [
        ['f16', f16, fromF16],
        ['bf16', bf16, fromBf16],
      ] as const) {
        const half = Uint16Array.from(table, (x) => enc(x));
        const decoded = Array.from(half, (h) => dec(h));
        const bt = rt.upload(half);
        const o = embeddingForward(rt, bids, bt, T, V, D, undefined, dtype);
        expect(Array.from(await rt.readF32(o)), dtype).toEqual(Array.from(refForward(decoded, ids, T, V, D)));
        bt.destroy();
        o.destroy();
      }
      bids.destroy();
      out.destroy();
    });
  }
});
