import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime, SHADER_DIR } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { usesCpuKernels } from '../gpu/runtime.ts';
import { generateAttentionRegisterWgsl, generateAttentionWgsl, REGISTER_DH, REGISTER_ROWS, registerEntry } from './attention-gen.ts';
import {
  attentionBackward,
  attentionDecode,
  attentionForward,
  pickKernel,
  pickTiles,
  tileBytes,
  type AttentionKernel,
  type AttentionTiles,
} from './attention.ts';
import {
  attentionBackward as refBackward,
  attentionDecode as refDecode,
  attentionForward as refForward,
  compare,
  dot,
  numericalGradient,
  randn,
  type AttentionShape,
} from './reference.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('attention');
});
afterAll(() => rt?.destroy());

function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5): void {
  const r = compare(got, want, rtol);
  expect(r.ok, `${label}: ${r.message}`).toBe(true);
}

interface Case {
  name: string;
  sh: AttentionShape;
  seg: number[];
  tiles?: { fwd?: AttentionTiles; dq?: AttentionTiles; dkdv?: AttentionTiles };
}

/** Both kernel families run on every adapter (each is the default on some). */
const KERNELS: AttentionKernel[] = ['flash', 'register'];

async function runCase(c: Case, seed: number): Promise<void> {
  for (const kernel of KERNELS) await runCaseWith({ ...c, name: `${c.name} [${kernel}]` }, seed, kernel);
}

async function runCaseWith(c: Case, seed: number, kernel: AttentionKernel): Promise<void> {
  const { B, S, Hq, Hkv, Dh } = c.sh;
  const T = B * S;
  const q = randn(T * Hq * Dh, seed);
  const k = randn(T * Hkv * Dh, seed + 1);
  const v = randn(T * Hkv * Dh, seed + 2);
  const dout = randn(T * Hq * Dh, seed + 3);
  const seg = Uint32Array.from(c.seg);
  expect(seg.length).toBe(T);

  const bq = rt.upload(q);
  const bk = rt.upload(k);
  const bv = rt.upload(v);
  const bseg = rt.upload(seg);
  const bdo = rt.upload(dout);
  const opts = { tiles: c.tiles, kernel };
  const { out: o, lse } = attentionForward(rt, c.sh, { q: bq, k: bk, v: bv, segments: bseg }, opts);
  const { dq, dk, dv } = attentionBackward(rt, c.sh, { q: bq, k: bk, v: bv, segments: bseg, out: o, lse, dout: bdo }, opts);
  const [go, glse, gdq, gdk, gdv] = [
    await rt.readF32(o),
    await rt.readF32(lse),
    await rt.readF32(dq),
    await rt.readF32(dk),
    await rt.readF32(dv),
  ];

  const ref = refForward(q, k, v, seg, c.sh);
  const grads = refBackward(q, k, v, seg, dout, c.sh);
  expectClose(`${c.name} o`, go, ref.o);
  expectClose(`${c.name} lse`, glse, ref.lse);
  expectClose(`${c.name} dq`, gdq, grads.dq);
  expectClose(`${c.name} dk`, gdk, grads.dk);
  expectClose(`${c.name} dv`, gdv, grads.dv);

  // Padding: padded queries output exactly 0 and get dq = 0; padded keys get dk = dv = 0.
  for (let t = 0; t < T; t++) {
    if (seg[t] !== 0) continue;
    for (let i = 0; i < Hq * Dh; i++) {
      expect(go[t * Hq * Dh + i]).toBe(0);
      expect(gdq[t * Hq * Dh + i]).toBe(0);
    }
    for (let i = 0; i < Hkv * Dh; i++) {
      expect(gdk[t * Hkv * Dh + i]).toBe(0);
      expect(gdv[t * Hkv * Dh + i]).toBe(0);
    }
  }
  for (const b of [bq, bk, bv, bseg, bdo, o, lse, dq, dk, dv]) b.destroy();
}

describe('attention (causal GQA, segment masks)', () => {
  it('float64 reference backward matches finite differences (packed + padded)', () => {
    const sh: AttentionShape = { B: 2, S: 5, Hq: 2, Hkv: 1, Dh: 4 };
    const T = sh.B * sh.S;
    const seg = [1, 1, 2, 2, 2, 0, 3, 3, 3, 0];
    const q = Float64Array.from(randn(T * sh.Hq * sh.Dh, 11));
    const k = Float64Array.from(randn(T * sh.Hkv * sh.Dh, 12));
    const v = Float64Array.from(randn(T * sh.Hkv * sh.Dh, 13));
    const R = randn(T * sh.Hq * sh.Dh, 14);
    const g = refBackward(q, k, v, seg, R, sh);
    const nq = numericalGradient((x) => dot(refForward(x, k, v, seg, sh).o, R), q);
    const nk = numericalGradient((x) => dot(refForward(q, x, v, seg, sh).o, R), k);
    const nv = numericalGradient((x) => dot(refForward(q, k, x, seg, sh).o, R), v);
    expectClose('ref dq', g.dq, nq, 1e-6);
    expectClose('ref dk', g.dk, nk, 1e-6);
    expectClose('ref dv', g.dv, nv, 1e-6);
    // Padded tokens (5 and 9) neither attend nor are attended: zero gradients, numerically too.
    for (const t of [5, 9]) {
      expect(nv.slice(t * sh.Dh, (t + 1) * sh.Dh).every((x) => x === 0)).toBe(true);
      expect(nq.slice(t * sh.Hq * sh.Dh, (t + 1) * sh.Hq * sh.Dh).every((x) => x === 0)).toBe(true);
    }
  });

  it('Hq=4/Hkv=2, Dh=16, B=2, S=33: packed + padded, small tiles (many tiles)', async () => {
    const seg = [
      ...Array(33).fill(1),
      ...Array(10).fill(5),
      ...Array(15).fill(6),
      ...Array(8).fill(0),
    ];
    await runCase(
      {
        name: 'gqa16',
        sh: { B: 2, S: 33, Hq: 4, Hkv: 2, Dh: 16 },
        seg,
        tiles: { fwd: { BR: 4, BC: 8, NC: 4 }, dq: { BR: 8, BC: 4, NC: 4 }, dkdv: { BR: 4, BC: 4, NC: 2 } },
      },
      100,
    );
  });

  it('Hq=3/Hkv=1, Dh=8, S=7 (left padding) and S=1, default tiles', async () => {
    await runCase({ name: 'mqa8', sh: { B: 2, S: 7, Hq: 3, Hkv: 1, Dh: 8 }, seg: [0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0] }, 200);
    await runCase({ name: 's1', sh: { B: 2, S: 1, Hq: 3, Hkv: 1, Dh: 8 }, seg: [1, 0] }, 300);
  });

  it('Dh=64, S=33, interleaved (non-contiguous) segments, default tiles', async () => {
    const seg: number[] = [];
    for (let s = 0; s < 33; s++) seg.push([1, 2, 1, 0, 2][s % 5]!);
    await runCase({ name: 'dh64', sh: { B: 1, S: 33, Hq: 2, Hkv: 1, Dh: 64 }, seg }, 400);
  });

  it('Dh=8, S=40: a segment interrupted by another, so a block of rows in one segment has unattended keys inside its range', async () => {
    // Blocks of rows that sit in one segment but whose key range holds another segment's keys.
    const seg = [...Array(5).fill(1), ...Array(3).fill(2), ...Array(32).fill(1), ...Array(30).fill(4), ...Array(10).fill(0)];
    await runCase({ name: 'split8', sh: { B: 2, S: 40, Hq: 4, Hkv: 2, Dh: 8 }, seg }, 800);
  });

  it('Dh=128, Hq=Hkv (no grouping), S=20 with right padding, default tiles', async () => {
    const seg = [...Array(17).fill(3), 0, 0, 0];
    await runCase({ name: 'dh128', sh: { B: 1, S: 20, Hq: 2, Hkv: 2, Dh: 128 }, seg }, 600);
  });

  it('Dh=32, Hq=8/Hkv=2, S=19: left padding, three packed examples, a padded tail', async () => {
    const seg = [0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 0, 0, 0, 0];
    await runCase({ name: 'dh32', sh: { B: 2, S: 19, Hq: 8, Hkv: 2, Dh: 32 }, seg }, 700);
  });

  it('decode: one query per sequence against a KV cache (per-sequence lengths and one length)', async () => {
    for (const [B, maxS, Hq, Hkv, Dh, lens] of [
      [3, 40, 4, 2, 16, [1, 17, 40]],
      [1, 300, 3, 1, 64, [257]],
    ] as Array<[number, number, number, number, number, number[]]>) {
      const q = randn(B * Hq * Dh, 500 + Dh);
      const kc = randn(B * maxS * Hkv * Dh, 501 + Dh);
      const vc = randn(B * maxS * Hkv * Dh, 502 + Dh);
      const bq = rt.upload(q);
      const bk = rt.upload(kc);
      const bv = rt.upload(vc);
      const blens = rt.upload(Uint32Array.from(lens));
      for (const kernel of KERNELS) {
        const args = { q: bq, kCache: bk, vCache: bv, B, maxS, Hq, Hkv, Dh, kernel };
        const o1 = attentionDecode(rt, { ...args, len: blens });
        const o2 = attentionDecode(rt, { ...args, len: lens[0]! });
        const label = `decode [${kernel}] Dh=${Dh}`;
        expectClose(`${label} lens`, await rt.readF32(o1), refDecode(q, kc, vc, lens, B, maxS, Hq, Hkv, Dh));
        const same = lens.map(() => lens[0]!);
        expectClose(`${label} L`, await rt.readF32(o2), refDecode(q, kc, vc, same, B, maxS, Hq, Hkv, Dh));
        for (const b of [o1, o2]) b.destroy();
      }
      for (const b of [bq, bk, bv, blens]) b.destroy();
    }
  });

  it('kernel family per adapter: register kernels on CPU adapters for the generated head dims', () => {
    const cpu = usesCpuKernels(rt);
    for (const Dh of REGISTER_DH) expect(pickKernel(rt, Dh)).toBe(cpu ? 'register' : 'flash');
    expect(pickKernel(rt, 12)).toBe('flash');
    expect(() => attentionForward(rt, { B: 1, S: 2, Hq: 1, Hkv: 1, Dh: 12 }, { q: rt.create(96), k: rt.create(96), v: rt.create(96), segments: rt.create(8) }, { kernel: 'register' })).toThrow(/no register kernels/);
  });
});

describe('generated WGSL', () => {
  it('shaders/attention.wgsl is up to date with src/nn/attention-gen.ts (npx tsx scripts/gen-wgsl.ts)', () => {
    expect(readFileSync(join(SHADER_DIR, 'attention.wgsl'), 'utf8')).toBe(generateAttentionWgsl());
    expect(readFileSync(join(SHADER_DIR, 'attention_register.wgsl'), 'utf8')).toBe(generateAttentionRegisterWgsl());
  });

  it('has an entry point for every register kernel the host can pick', () => {
    const src = generateAttentionRegisterWgsl();
    for (const kind of ['fwd', 'dq', 'dkdv', 'decode'] as const) {
      for (const Dh of REGISTER_DH) {
        expect(REGISTER_ROWS[kind][Dh]?.length, `${kind} Dh=${Dh}`).toBeGreaterThan(0);
        for (const n of REGISTER_ROWS[kind][Dh]!) expect(src).toContain(`fn ${registerEntry(kind, Dh, n)}(`);
      }
    }
  });
});

describe('attention tile sizing', () => {
  it('tileBytes matches what the device counts, and picked tiles fit its limit', async () => {
    const limit = rt.device.limits.maxComputeWorkgroupStorageSize;
    for (const [kind, entry] of [
      ['fwd', 'attn_fwd'],
      ['dq', 'attn_bwd_dq'],
      ['dkdv', 'attn_bwd_dkdv'],
    ] as const) {
      // Tiles just over this device's workgroup memory at Dh = 64 (32 KiB on SwiftShader, 48 KiB on
      // NVIDIA), so the pipeline is rejected before compiling and the error says what Dawn counted.
      let big = { BR: 32, BC: 32, NC: 8 };
      while (tileBytes(kind, big, 64) <= limit) big = { BR: big.BR * 2, BC: big.BC * 2, NC: 4 };
      rt.device.pushErrorScope('validation');
      rt.device.createComputePipeline({
        layout: 'auto',
        compute: { module: rt.kernels.module('attention'), entryPoint: entry, constants: { ...big, DH: 64 } },
      });
      const err = await rt.device.popErrorScope();
      const counted = Number(/workgroup storage \((\d+) bytes\)/.exec(err?.message ?? '')?.[1]);
      expect(counted, `${entry}: ${err?.message}`).toBeGreaterThan(0);
      const mine = tileBytes(kind, big, 64);
      expect(mine).toBeGreaterThanOrEqual(counted);
      expect(mine - counted).toBeLessThanOrEqual(64);
      for (const Dh of [64, 128, 256]) expect(tileBytes(kind, pickTiles(rt, kind, Dh), Dh)).toBeLessThanOrEqual(limit);
    }
  });
});
