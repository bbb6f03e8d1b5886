import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { ropeBackward, ropeForward } from './rope.ts';
import { ropeInvFreq, ropeTable } from './rope-table.ts';
import { compare, dot, numericalGradient, randn, ropeApply } from './reference.ts';
import { mulberry32 } from '../util/random.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
  await rt.kernels.validate('rope');
});
afterAll(() => rt?.destroy());

function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-5): void {
  const r = compare(got, want, rtol);
  expect(r.ok, `${label}: ${r.message}`).toBe(true);
}

const LLAMA32 = {
  rope_type: 'llama3',
  factor: 32.0,
  high_freq_factor: 4.0,
  low_freq_factor: 1.0,
  original_max_position_embeddings: 8192,
};

// Golden values from torch 2.11 (CPU), running the lines of transformers' _compute_default_rope_parameters
// / _compute_llama3_parameters and LlamaRotaryEmbedding.forward in f32.
// inv_freq for Llama-3.2-1B (head_dim 64, θ 500000, llama3 scaling):
const TORCH_LLAMA32_INV_FREQ = [
  1.0, 0.663601279258728, 0.44036662578582764, 0.2922278344631195, 0.193922758102417, 0.12868738174438477,
  0.08539710193872452, 0.05666961893439293, 0.03760603070259094, 0.02495540864765644, 0.016560440883040428,
  0.010989529080688953, 0.00729266507551074, 0.00483942124992609, 0.0032114461064338684, 0.0012905480107292533,
  0.000429556705057621, 9.708286233944818e-5, 1.9461638657958247e-5, 1.291476746700937e-5, 8.570255886297673e-6,
  5.687232260243036e-6, 3.7740544485131977e-6, 2.504467147446121e-6, 1.6619674170215148e-6, 1.1028836297555245e-6,
  7.318749339901842e-7, 4.856731266045244e-7, 3.2229328894572973e-7, 2.1387423032592778e-7, 1.4192720243499934e-7,
  9.418306490260875e-8,
];
// inv_freq for SmolLM2 (head_dim 64, θ 100000, no scaling):
const TORCH_SMOL_INV_FREQ = [
  1.0, 0.6978305578231812, 0.486967533826828, 0.33982083201408386, 0.23713736236095428, 0.16548170149326324,
  0.11547820270061493, 0.08058421313762665, 0.05623412877321243, 0.03924189880490303, 0.0273841954767704,
  0.019109530374407768, 0.01333521492779255, 0.009305720217525959, 0.006493816617876291, 0.004531583748757839,
  0.003162277862429619, 0.002206734148785472, 0.0015399265103042126, 0.00107460783328861, 0.0007498941849917173,
  0.0005232990952208638, 0.00036517411353997886, 0.00025482967612333596, 0.00017782794020604342,
  0.00012409377086441964, 8.6596432083752e-5, 6.042963650543243e-5, 4.216965317027643e-5, 2.9427272238535807e-5,
  2.0535249859676696e-5, 1.4330126759887207e-5,
];
// cos/sin of the Llama-3.2 angles at position 100000, pairs 0..7:
const TORCH_COS_100000 = [
  -0.9993607997894287, -0.9655159711837769, -0.5736533999443054, 0.9518256783485413, -0.7136789560317993,
  0.7145804762840271, 0.6515818238258362, 0.8910092115402222,
];
const TORCH_SIN_100000 = [
  0.03574879840016365, -0.2603437602519989, -0.819098174571991, -0.3066396415233612, 0.7004729509353638,
  0.6995532512664795, 0.758578360080719, -0.4539852738380432,
];

describe('RoPE table (HF f32 arithmetic)', () => {
  it('default inv_freq = 1/θ^(2j/d) in f32', () => {
    const inv = ropeInvFreq(128, 1e6);
    for (let j = 0; j < 64; j++) {
      const exact = 1 / Math.pow(1e6, (2 * j) / 128);
      expect(Math.abs(inv[j]! - exact) / exact).toBeLessThan(2e-7);
    }
    // Qwen2.5 (θ 1e6, head_dim 128) vs torch: equal except j = 37, where torch's powf is 1 ulp
    // off the correctly rounded power (ours 0.00033982081, torch 0.00033982084).
    expect(inv[1]).toBe(Math.fround(0.8058422207832336));
    expect(inv[3]).toBe(Math.fround(0.5232991576194763));
    expect(inv[32]).toBe(Math.fround(0.0010000000474974513));
    expect(inv[63]).toBe(Math.fround(1.2409377632138785e-6));
    expect(Math.abs(inv[37]! - 0.0003398208355065435) / inv[37]!).toBeLessThan(1.2e-7);
    expect(Array.from(ropeInvFreq(64, 100000))).toEqual(TORCH_SMOL_INV_FREQ.map(Math.fround));
    expect(Array.from(ropeInvFreq(4, 10000))).toEqual([1, Math.fround(0.01)]);
  });

  it('llama3 scaling matches torch running _compute_llama3_parameters bit for bit', () => {
    const inv = ropeInvFreq(64, 500000, LLAMA32);
    expect(Array.from(inv)).toEqual(TORCH_LLAMA32_INV_FREQ.map(Math.fround));
    // Regions: short wavelengths unchanged, long ones divided by the factor, smooth in between.
    const base = ropeInvFreq(64, 500000);
    for (let j = 0; j < 32; j++) {
      const wavelen = (2 * Math.PI) / base[j]!;
      if (wavelen < 8192 / 4) expect(inv[j]).toBe(base[j]);
      else if (wavelen > 8192) expect(inv[j]).toBe(Math.fround(base[j]! / 32));
      else {
        const s = (8192 / wavelen - 1) / 3;
        const want = (1 - s) * (base[j]! / 32) + s * base[j]!;
        expect(Math.abs(inv[j]! - want) / want).toBeLessThan(1e-6);
      }
    }
  });

  it('linear scaling divides inv_freq by the factor; unknown types are rejected', () => {
    const base = ropeInvFreq(16, 10000);
    const lin = ropeInvFreq(16, 10000, { type: 'linear', factor: 4 });
    expect(Array.from(lin)).toEqual(Array.from(base, (x) => Math.fround(x / 4)));
    expect(Array.from(ropeInvFreq(16, 10000, null))).toEqual(Array.from(base));
    expect(Array.from(ropeInvFreq(16, 10000, { rope_type: 'default' }))).toEqual(Array.from(base));
    expect(() => ropeInvFreq(16, 10000, { rope_type: 'yarn', factor: 4 })).toThrow(/not supported/);
    expect(() => ropeInvFreq(15, 10000)).toThrow(/even/);
  });

  it('table holds (cos, sin) of fround(pos·inv_freq) as [maxPos, Dh/2, 2]', () => {
    const Dh = 64;
    const table = ropeTable(Dh, 500000, 3, LLAMA32);
    const inv = ropeInvFreq(Dh, 500000, LLAMA32);
    for (let pos = 0; pos < 3; pos++) {
      for (let j = 0; j < Dh / 2; j++) {
        const a = Math.fround(pos * inv[j]!);
        expect(table[(pos * 32 + j) * 2]).toBe(Math.fround(Math.cos(a)));
        expect(table[(pos * 32 + j) * 2 + 1]).toBe(Math.fround(Math.sin(a)));
      }
    }
    // Far positions use HF's f32 angle fround(pos·inv), not the exact one (they differ by up to
    // ~pos·2⁻²⁴ rad): torch's values at position 100000, to its f32 cos/sin's last ulp.
    const far = ropeTable(Dh, 500000, 100001, LLAMA32).subarray(100000 * 64);
    for (let j = 0; j < 8; j++) {
      expect(Math.abs(far[j * 2]! - TORCH_COS_100000[j]!)).toBeLessThanOrEqual(6e-8);
      expect(Math.abs(far[j * 2 + 1]! - TORCH_SIN_100000[j]!)).toBeLessThanOrEqual(6e-8);
    }
  });
});

describe('RoPE kernel', () => {
  it('float64 reference backward (rotation by −angle) matches finite differences', () => {
    const T = 3;
    const H = 2;
    const Dh = 6;
    const table = ropeTable(Dh, 10000, 5);
    const pos = [4, 0, 2];
    const x = Float64Array.from(randn(T * H * Dh, 1));
    const R = randn(T * H * Dh, 2);
    const g = ropeApply(R, pos, table, T, H, Dh, true);
    const num = numericalGradient((xx) => dot(ropeApply(xx, pos, table, T, H, Dh), R), x);
    expectClose('ref d', g, num, 1e-6);
  });

  for (const [T, H, Dh] of [
    [7, 3, 8],
    [33, 2, 64],
  ] as Array<[number, number, number]>) {
    it(`forward / backward, in place and out of place, T=${T}, H=${H}, Dh=${Dh}`, async () => {
      const maxPos = 50;
      const table = ropeTable(Dh, 500000, maxPos, LLAMA32);
      const rand = mulberry32(T + Dh);
      const pos = Uint32Array.from({ length: T }, () => Math.floor(rand() * maxPos));
      const x = randn(T * H * Dh, 3 + Dh);
      const bx = rt.upload(x);
      const bpos = rt.upload(pos);
      const btab = rt.upload(table);
      const out = rt.create(x.byteLength);
      const args = { pos: bpos, table: btab, T, H, Dh, maxPos };
      ropeForward(rt, { ...args, x: bx, out });
      const want = ropeApply(x, pos, table, T, H, Dh);
      expectClose('out of place', await rt.readF32(out), want);
      ropeForward(rt, { ...args, x: bx });
      expectClose('in place', await rt.readF32(bx), want);
      // Backward: rotating by −angle gives dx = Rᵀ dy; applied to y it recovers x.
      const dx = rt.create(x.byteLength);
      ropeBackward(rt, { ...args, x: out, out: dx });
      expectClose('backward (out of place)', await rt.readF32(dx), ropeApply(want, pos, table, T, H, Dh, true));
      expectClose('backward recovers x', await rt.readF32(dx), x);
      ropeBackward(rt, { ...args, x: bx });
      expectClose('backward (in place)', await rt.readF32(bx), x);
      for (const b of [bx, bpos, btab, out, dx]) b.destroy();
    });
  }

  it('rotates q and k inside a fused QKV buffer in place (strides), leaving v alone', async () => {
    const T = 5;
    const Hq = 4;
    const Hkv = 2;
    const Dh = 16;
    const W = (Hq + 2 * Hkv) * Dh;
    const maxPos = 8;
    const table = ropeTable(Dh, 10000, maxPos);
    const pos = Uint32Array.from([0, 1, 2, 0, 7]);
    const qkv = randn(T * W, 9);
    const q = new Float32Array(T * Hq * Dh);
    const k = new Float32Array(T * Hkv * Dh);
    for (let t = 0; t < T; t++) {
      q.set(qkv.subarray(t * W, t * W + Hq * Dh), t * Hq * Dh);
      k.set(qkv.subarray(t * W + Hq * Dh, t * W + (Hq + Hkv) * Dh), t * Hkv * Dh);
    }
    const b = rt.upload(qkv);
    const bpos = rt.upload(pos);
    const btab = rt.upload(table);
    const common = { x: b, pos: bpos, table: btab, T, Dh, maxPos, rowStride: W };
    ropeForward(rt, { ...common, H: Hq, offset: 0 });
    ropeForward(rt, { ...common, H: Hkv, offset: Hq * Dh });
    const got = await rt.readF32(b);
    const rq = ropeApply(q, pos, table, T, Hq, Dh);
    const rk = ropeApply(k, pos, table, T, Hkv, Dh);
    const want = Float64Array.from(qkv);
    for (let t = 0; t < T; t++) {
      want.set(rq.subarray(t * Hq * Dh, (t + 1) * Hq * Dh), t * W);
      want.set(rk.subarray(t * Hkv * Dh, (t + 1) * Hkv * Dh), t * W + Hq * Dh);
    }
    expectClose('fused qkv', got, want);
    for (let t = 0; t < T; t++) {
      for (let i = (Hq + Hkv) * Dh; i < W; i++) expect(got[t * W + i]).toBe(qkv[t * W + i]);
    }
    for (const x of [b, bpos, btab]) x.destroy();
  });
});
