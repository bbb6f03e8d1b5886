// Golden vectors from real bitsandbytes on CUDA: 0.50.2.dev0 (snapshot 95f9af30) built from source with its own
// CMake flags (including --use_fast_math) by nvcc 13.0 for sm_90, torch 2.11.0+cu130, one H100. Inputs are
// regenerated here from an integer LCG (the same generator ran in Python); outputs are compared by hex or by
// (truncated) sha256 of the raw little-endian bytes.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dequantize4bit, fp4Code, ftz, nf4Code, quantize4bit, reciprocalF32, roundToBf16, roundToF16 } from './blockwise4.ts';
import { FP4_CODE, FP4_THRESHOLDS, NF4_CODE, NF4_MIDPOINTS, NF4_THRESHOLDS, type QuantType, dynamicMap256 } from './codes.ts';
import { dQuantize8, doubleQuantize, meanF32, quantizeBlockwise8, rebuildAbsmax } from './double-quant.ts';
import { buildQuantStateJson } from './quant-state.ts';
import { pythonFloatRepr } from '../util/python.ts';

const SWEEP =
  '5282ff57b3faa5a1f4c293ab9b0d0be46dcf9432b34095f83fa8b9d2c61809a51659a512776a07aeef648d7afa6f82aa' +
  'a5672af8b1b65b7f27d3f20369aa1f95364600cdeada1d1e959ce887ed7307e3b17dd9e05c24fcb4ad0e43f4d396297b' +
  '74ca34a9b84ba25f5af0024acdd4618c929b295fca755399c00f52ac72a9d27c4a291d331ebfaf3332b15ccd88aa6569' +
  'c978148354347cca0aafb27ba78ee68714c0435c59e0045e8d0381025a16e53ac6ab4841238f19a29b36efef3dea06db' +
  '743121148c5aef1892d76948f3159c6687746e725a0cafc95c866a4a0ec99b21e8a76784ec51ec3598d9d9e259dafef9' +
  'c57a8e053a211eae734f7c62a4ff9832083e0b7cb2c9d623490db99427bc91b81281bc24209fcd40c8298d096d55c982' +
  'a004dca06d1fc09e9a1ebf9d99264216306e4c420c9d8e7b08314d5262d6f60781880b47681e9d82d937847c30ccce7f' +
  'dac22d7e231aacc558570e7bf7135331890daad80a3f36af3f510e4e6f3ed99e99fbbcea71894ddc4e1194d60e65f087' +
  '2801de4ad70c954160c8b474aab6db1299db4c8bc5926ff2d74d3d70bb284b0ca2ba4c463015633f132a7482c64cc110' +
  '2114a68edffe98b05a1eb16c5cfde16fe5192e8a6d5d77b9a86b28d8db1ca3ee3cea3e08b1cef4f37f6e111d4cae5899' +
  '67619e25342523876ad9d428e09e1357d102c5d0957c8f0d7e3fea91ca99d84522d1fdeb802fcd17b0b536594b2ce35d' +
  '22ec70f95cfded21a42795dcb1d02b3d8aca0d56163663cb34f969eba842339c8d0a291718ff806673598634904bd207' +
  '3d769d57429e14c051f30e58d7d7fb1af8658410c7c88ca239fb09c3e7c7ec05bf867cea1c833a1d801a550b0c2236a8' +
  'c5ad7d492a5f7caa0a0e7c89a5a6b72b02c8195e33b41ea29d3c9d462308f83560c6af42e1e19ed8d9d05208774c4b31' +
  '906ca573c395a38c563e7925944ebcc71889c6ebbf5cff7ad335234cfcfa19f522d5d52c1f74cb808701abbde284dc97' +
  '3c492a1f6d423d2814bf5d50b0aaa3f00cc9f418c77a7ff22883c2280d18afac74ee9cbf0daf5bd388b8a5de2db85c5a' +
  '17f5cc6e88e5466ff163f9d5eb6484236cff258c9454c1a529e117c1ffefe8dee103a006a7b8c850f4f9e1bbd0764882' +
  '9025cf9866a3f4b0f511be7c33d13eec604cdd0a069262efc22986f45be8e9ebd0b285081a58012c802dd6b59bc4e9aa' +
  'ba7a012db5ba20e12900c6097fbbf40def2125c3bdbda958981d4a06d50d9328ee5a266804580a38626d0f2b1de24b7c' +
  '30528d953a803c06f13f6c597666fb11ec4fb68f548a139ef2c270013edaed7eb6fbdb92771fe13b0e03b14b9cc45f12' +
  'c8572f6c728d0f5edc471f375b04f8334146b99e1b7b1394a618b64ac194fab1e69bad3512779f3bf6140b76fa0ba6c3' +
  '7b31b66cc02f71bb668793c45a6cdd8d';
const G = {
  ties_nf4: "f110eee121ddd232ccc343bbb454aaa5659996768887877778886669a9555abaf444bcb333ddc222ded111ffe000777777888666aaa555aaa444ccc333ddd222feee111000fff111eee222ddd333ccc444aaa555999666888777777888666999f555aaa444bbb444ccc333ddd222eee111fff000777777777777eee111fff000fbbb444ccc222999555aaa444777777777777111eee000fff444bbb222ccc555f999444aaa",
  ties_fp4: "3bbb333aaa222ddd555ccc444fff777eee666999111111999666eee666eee4443ccc444ccc555ddd222aaa333bbb0108981619e9676efe747fcf454cdc525dad3222aaabbb333aaa222ddd555ccc444fff777eee666eee6660000001119996663eee777fff444ccc555ddd555ddd222aaa333bbb000000111999222aaa333bbb3444ccc555ddd666eee777fff000000999111aaa222bbb333ccc444ddd555eee3666fff777",
  zeros_nf4: "000000000000000000000000000000000000000000000000000000000000000078458769667997765665666367768b5b4f9768132899574e2d964916d771c75b0000000000000000000000000000000000000000000000000000000000000000779577699a9582b577b8326a99438a882532e79d73423182e4e9f78cc7bc69350000000000000000000000000000000000000000000000",
  zeros_fp4: "000000000000000000000000000000000000000000000000000000000000000096ce10969e066919f9efe99d909e64f4c369e6acd166f0f2d56ef6ae511a51e40000000000000000000000000000000000000000000000000000000000000000106e1196676e6d4e1046cde766cd1711dfcd20629cfdca1d2c2631645044e6de0000000000000000000000000000000000000000000000",
  special_nf4: {"packed": "43576084d7647264798794b835a5576c75e690116e4bdadd37acbd88fe987e1e7777770777777777777777777777777777777777777777777777777777777777000000000000000000000000000000000000000000000000000000000000000077777777007777777777777777777777777777777777777777777777777777770000000000", "absmax": "f0d28d3d0000807fffff7fff0000807f00000000", "deq": "6de6a9633c93ce6a"},
  special_fp4: {"packed": "fcf9901c509f9dec96696f41de7ef0949f2e6baa92f45725d0754516326602b20000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", "absmax": "f0d28d3d0000807fffff7fff0000807f00000000", "deq": "9e457c154adaba64"},
  dq_nf4: {"offset": "0x405867f4", "packed": "90656edc3cd9c130", "qabsmax": "54127ad874a3ee38", "nested": "8da02e41dd621e418de72d41", "rebuilt": "6c1e3418ad0ce401", "deq": "5d84d52243775c2f", "json": "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [44877], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 3.381344795227051}"},
  dq_fp4: {"offset": "0x405867f4", "packed": "0a8845f5506164eb", "qabsmax": "54127ad874a3ee38", "nested": "8da02e41dd621e418de72d41", "rebuilt": "6c1e3418ad0ce401", "deq": "89587af2dc1d0cab", "json": "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [44877], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 3.381344795227051}"},
  dq_const: {"offset": "0x3f8775ea", "packed": "f64f2ff5bc3e165f", "qabsmax": "65f91e348096e138", "nested": "3bc8284053641a40", "rebuilt": "52c79678efd510f0", "deq": "da3ecbfe925b0b6e", "json": "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [32768], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 1.0582859516143799}"},
  zeros_nested_nf4: {"offset": "0x3f869893", "packed": "fe0eb1c2d5cdd7ff", "qabsmax": "c32e7376516dddac", "nested": "1e497540", "rebuilt": "8d539b24ac7fb5e0", "deq": "c745912620e2b342", "json": "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [301], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 1.051531195640564}"},
  zeros_nested_fp4: {"offset": "0x3f869893", "packed": "67ceec48297aeef5", "qabsmax": "c32e7376516dddac", "nested": "1e497540", "rebuilt": "8d539b24ac7fb5e0", "deq": "3de572ddb22c1309", "json": "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [301], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 1.051531195640564}"},
  kproj_bf16: {"offset": "0x3fc34342", "packed": "594238e80c2782e4", "qabsmax": "8373d05a4b3b5a76", "nested": "5f5e1e405f5e1e405f5e1e405f5e1e405f5e1e405f5e1e405f5e1e40", "rebuilt": "6e6b68661c6ee804", "deq": "5e97784d57679539", "json": "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [192, 576], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 1.5254900455474854}"},
  kproj_f16_fp4: {"offset": "0x4010e51d", "packed": "11224f4941178429", "qabsmax": "0486b1c656621762", "nested": "3a4ae63f3a4ae63f3a4ae63f3a4ae53f", "rebuilt": "f5061c18404fd91b", "deq": "5cad8d37df58b165", "json": "{\"quant_type\": \"fp4\", \"blocksize\": 128, \"dtype\": \"float16\", \"shape\": [192, 576], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 2.263983964920044}"},
  q8_ties: "6a3bbc6319b92f58",
  q8_rand_1: "6e340b9cffb37a98:a8ea733c",
  q8_rand_255: "e80933018000ef05:40f98140",
  q8_rand_256: "11725f663fbc2b6d:605eb640",
  q8_rand_257: "4f5948ecb077ba7b:aed2b14088416a40",
  q8_rand_5000: "71a85e4a652d9a41:543492400c5d2b413e735041209130413ca83441289106418cfb2141e421e3407c8f1a416a6a9e40f85c0c41e04b11416e503141e87b1741883d5d41da1425417cb30a41aef7034196eba1408e512141",
  q8_zero: "a3a89e89ff5cf5fc:043fb8400000000010422e41",
  repr: "5982:7d235197e06f7fa3",
  ftz_nf4_plain: {"packed": "f7777777777777777777777777777777677787677676787777877687777777760000000000000000000000000000000000000000000000000000000000000000f777777777777777777777777777777777717e77777777e7777777177277f7777777777777777777777777777777777777777777777777777777777777777777431eaea4b3c60893260702eed0af5eca777777777777777777777777777777770000", "deq": "5748b2b716eeb20b", "absmax": "0000803f00000000ddc7d900e6b1617f10d51b4100000000"},
  ftz_nf4_nested: {"packed": "f7777777777777777777777777777777677787677676787777877687777777760000000000000000000000000000000000000000000000000000000000000000f777777777777777777777777777777777717e77777777e7777777177277f7777777777777777777777777777777777777777777777777777777777777777777431eaea4b3c60893260702eed0af5eca777777777777777777777777777777770000", "deq": "e3087dc1c926828b", "qabsmax": "7f7f7f7f7f7f", "nested_absmax": "40143c7f", "offset": "9a76167e"},
  ftz_fp4_plain: {"packed": "30000000181999909911199999989100e91019e1191991989919891099911819000000000000000000000000000000000000000000000000000000000000000030000000000000000000000000000000000a020000000020000000a00a0030000000000000000000000000000000000000000000000000000000000000000000cca2727f4c5eb16ddeb0bd225b73e257881080008008818889910808010098800000", "deq": "b0c9d946eb32cf3f", "absmax": "0000803f00000000ddc7d900e6b1617f10d51b4100000000"},
  ftz_fp4_nested: {"packed": "30000000181999909911199999989100e91019e1191991989919891099911819000000000000000000000000000000000000000000000000000000000000000030000000000000000000000000000000000a020000000020000000a00a0030000000000000000000000000000000000000000000000000000000000000000000cca2727f4c5eb16ddeb0bd225b73e257881080008008818889910808010098800000", "deq": "33051ec5a6d7e69f", "qabsmax": "7f7f7f7f7f7f", "nested_absmax": "40143c7f", "offset": "9a76167e"},
  q8_ftz: {"q": "04eb9874f4099241", "absmax": "e6b1617f10d51b41", "deq": "6c545c7e3b8e7b16"},
  mufu: {"m4": [[1065374775, 1065310208], [1065380934, 1065297962]], "m8": [[1065364366, 1065330945]], "nf4": "f123457789bcde7786a5c3e1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaf135789cd7786a5a4c3d2e1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "fp4": "3badcf9166452308196e4c2a77777777777777777777777777777777777777773bdf9665208196e7f4c5d2a77777777777777777777777777777777777777777", "q8": "ff0102030405060708090a0b0d0e0f10121314151718191a1c1e1f212324252728292a2c2d2e2f323334363738393a3c3f40414243454647494a4d4e4f5051535557595a6162636465666768696b6c6d6e7172737475787a7b7c7e8082838486898a8b8c8d9091929395969798999a9b9c9da4a5a7a9abadaeafb0b1b4b5b7b8b9bbbcbdbebfc2c4c5c6c7c8cacbcccfd0d1d2d4d5d6d7d9dadbdddfe0e2e4e5e6e7e9eaebeceeeff0f1f3f4f5f6f7f8f9fafbfcfdfedbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdbdb"},
};

class Rng {
  s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next() {
    return (this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0);
  }
}
/** f32 values exact in f32: a zero or -0 one time in 16, else a sum of 4 uniforms scaled by 2^((i>>5)%9 - 4). */
function gen(seed: number, n: number): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = r.next() & 31;
    if (a < 2) {
      out[i] = a === 0 ? 0 : -0;
      continue;
    }
    let s = 0;
    for (let k = 0; k < 4; k++) s += r.next() >>> 10;
    out[i] = ((s - 2 ** 23) / 2 ** 23) * 2 ** (((i >> 5) % 9) - 4);
  }
  return out;
}
/** Values exact in bf16 and f16. */
function gen8(seed: number, n: number): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (((r.next() >>> 24) - 128) / 128) * 2 ** (((i >> 6) % 5) - 2);
  return out;
}

const f = Math.fround;
const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const sha = (a: ArrayBufferView | string) => createHash('sha256').update(typeof a === 'string' ? a : bytes(a)).digest('hex');
const sha16 = (a: ArrayBufferView) => sha(a).slice(0, 16);
const hex = (a: ArrayBufferView) => Buffer.from(bytes(a)).toString('hex');
const f32OfBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];
const bitsOfF32 = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];
const f32OfHex = (h: string) => f32OfBits(Buffer.from(h, 'hex').readUInt32LE(0));
const stepF = (x: number, k: number) => f32OfBits(bitsOfF32(x) + k);
const nextUp = (x: number) => (x === 0 ? f32OfBits(1) : stepF(x, x > 0 ? 1 : -1));
const nextDown = (x: number) => -nextUp(-x);
const bf16Bits = (a: Float32Array) => Uint16Array.from(new Uint32Array(roundToBf16(a).buffer), (u) => u >>> 16);
function f16Bits(a: Float32Array): Uint16Array {
  return Uint16Array.from(roundToF16(a), (v) => {
    const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
    const x = Math.abs(v);
    if (x === Infinity) return sign | 0x7c00;
    if (x < 2 ** -14) return sign | Math.round(x / 2 ** -24);
    let e = Math.floor(Math.log2(x));
    if (2 ** e > x) e--;
    return sign | ((e + 15) << 10) | Math.round((x / 2 ** e - 1) * 1024);
  });
}
const TYPES: QuantType[] = ['nf4', 'fp4'];

describe('bitsandbytes CUDA golden vectors', () => {
  it('random sweep: nf4/fp4 x n in {1..100003} x every blocksize: packed, absmax and dequantized bytes', () => {
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    let i = 0;
    for (const type of TYPES) {
      for (const n of [1, 2, 63, 64, 65, 1000, 4097, 100003]) {
        for (const bs of [32, 64, 128, 256, 512, 1024, 2048, 4096]) {
          const q = quantize4bit(gen(n * 31 + bs, n), { type, blocksize: bs });
          const d = dequantize4bit(q.packed, q.absmax, n, type, bs);
          const name = `${type} n=${n} bs=${bs}`;
          got[name] = sha(sha(q.packed) + sha(q.absmax) + sha(d)).slice(0, 16);
          want[name] = SWEEP.slice(16 * i, 16 * ++i);
        }
      }
    }
    expect(got).toEqual(want);
  });

  it('ties: values exactly at thresholds, midpoints, codes and their f32 neighbours (absmax 1)', () => {
    const vals: number[] = [];
    for (const g of [NF4_MIDPOINTS, FP4_THRESHOLDS, NF4_CODE, FP4_CODE]) {
      for (const t of g) vals.push(t, nextUp(t), nextDown(t), -t, -nextUp(t), -nextDown(t));
    }
    const x: number[] = [];
    for (let i = 0; i < vals.length; i += 63) x.push(1, ...vals.slice(i, i + 63));
    expect(x.length).toBe(330);
    for (const type of TYPES) expect(hex(quantize4bit(new Float32Array(x), { type }).packed)).toBe(G[`ties_${type}`]);
  });

  it('all-zero blocks (incl. -0 and the last partial block, odd n) encode as 0x00', () => {
    const z = gen(7, 301);
    for (const b of [0, 2, 4]) for (let i = b * 64; i < Math.min(301, b * 64 + 64); i++) z[i] = b === 2 && i % 2 ? -0 : 0;
    for (const type of TYPES) expect(hex(quantize4bit(z, { type }).packed)).toBe(G[`zeros_${type}`]);
  });

  it('NaN, ±inf, an all-NaN full block (absmax -FLT_MAX) and an all-NaN partial block (absmax 0)', () => {
    const s = gen(11, 266);
    s[5] = NaN;
    s[70] = Infinity;
    s.fill(NaN, 128, 192);
    s[200] = -Infinity;
    s[201] = NaN;
    s.fill(NaN, 256, 266);
    for (const type of TYPES) {
      const q = quantize4bit(s, { type });
      const g = G[`special_${type}`];
      expect([hex(q.packed), hex(q.absmax)]).toEqual([g.packed, g.absmax]);
      expect(sha16(dequantize4bit(q.packed, q.absmax, s.length, type, 64))).toBe(g.deq);
    }
  });

  it('flush-to-zero of subnormal inputs, products and reciprocals (--use_fast_math)', () => {
    const z = gen(21, 64 * 5 + 3);
    z.set([1.0, 1e-39, -1e-39, 1.1754943508222875e-38, -5e-39, 1.4e-45, -1.4e-45, 2e-38], 0);
    for (let i = 64; i < 128; i++) z[i] = ((i % 7) - 3) * 1e-39 + (i % 2 ? 1.4e-45 : -1.4e-45);
    for (let i = 128; i < 192; i++) z[i] = f(z[i] * 2e-38);
    z[128] = 2e-38;
    for (let i = 192; i < 256; i++) z[i] = f(z[i] * 3e37);
    z[192] = 3e38;
    z.set([1e-39, -3e-39, 0], 320);
    for (const type of TYPES) {
      const q = quantize4bit(z, { type });
      const g = G[`ftz_${type}_plain`];
      expect([hex(q.packed), hex(q.absmax)]).toEqual([g.packed, g.absmax]);
      expect(sha16(dequantize4bit(q.packed, q.absmax, z.length, type, 64))).toBe(g.deq);
      const n = G[`ftz_${type}_nested`];
      const dq = doubleQuantize(q.absmax, { offset: f32OfHex(n.offset) });
      expect([hex(dq.qabsmax), hex(dq.nestedAbsmax)]).toEqual([n.qabsmax, n.nested_absmax]);
      const ab = rebuildAbsmax(dq.qabsmax, dq.nestedAbsmax, dq.offset, dynamicMap256());
      expect(sha16(dequantize4bit(q.packed, ab, z.length, type, 64))).toBe(n.deq);
    }
    const q8 = quantizeBlockwise8(z);
    expect([sha16(q8.q), hex(q8.absmax)]).toEqual([G.q8_ftz.q, G.q8_ftz.absmax]);
    expect(sha16(rebuildAbsmax(q8.q, q8.absmax, 0, dynamicMap256()))).toBe(G.q8_ftz.deq);
  });

  it('double quantization: qabsmax, nested_absmax, rebuilt absmax, dequantized weights and the quant_state JSON', () => {
    const inputs: Record<string, [Float32Array, number, QuantType, 'f32' | 'bf16' | 'f16', number[]]> = {
      dq_nf4: [gen(99, 64 * 701 + 13), 64, 'nf4', 'f32', [44877]],
      dq_fp4: [gen(99, 64 * 701 + 13), 64, 'fp4', 'f32', [44877]],
      dq_const: [gen(5, 64 * 512).map((v, i) => (i % 64 ? f(v * 0.25) : 0.5)), 64, 'nf4', 'f32', [32768]],
      zeros_nested_nf4: [gen(7, 301), 64, 'nf4', 'f32', [301]],
      zeros_nested_fp4: [gen(7, 301), 64, 'fp4', 'f32', [301]],
      kproj_bf16: [gen8(3, 192 * 576), 64, 'nf4', 'bf16', [192, 576]],
      kproj_f16_fp4: [gen8(3, 192 * 576), 128, 'fp4', 'f16', [192, 576]],
    };
    for (const k of ['zeros_nested_nf4', 'zeros_nested_fp4']) {
      const z = inputs[k][0];
      for (const b of [0, 2, 4]) for (let i = b * 64; i < Math.min(301, b * 64 + 64); i++) z[i] = b === 2 && i % 2 ? -0 : 0;
    }
    for (const [name, [x, bs, type, dt, shape]] of Object.entries(inputs)) {
      const g = G[name as keyof typeof G] as { offset: string; packed: string; qabsmax: string; nested: string; rebuilt: string; deq: string; json: string };
      const q = quantize4bit(x, { type, blocksize: bs });
      expect(sha(q.packed).slice(0, 16), name).toBe(g.packed);
      const torchOffset = f32OfBits(parseInt(g.offset, 16));
      // torch's f32 mean may differ from the f64-summed mean by an ulp; the stored offset is what matters
      expect(Math.abs(bitsOfF32(meanF32(q.absmax)) - bitsOfF32(torchOffset)), name).toBeLessThanOrEqual(1);
      const dq = doubleQuantize(q.absmax, { offset: torchOffset });
      expect([sha16(dq.qabsmax), hex(dq.nestedAbsmax)], name).toEqual([g.qabsmax, g.nested]);
      const ab = rebuildAbsmax(dq.qabsmax, dq.nestedAbsmax, dq.offset, dynamicMap256());
      expect(sha16(ab), name).toBe(g.rebuilt);
      const d = dequantize4bit(q.packed, ab, x.length, type, bs);
      expect(sha16(dt === 'bf16' ? bf16Bits(d) : dt === 'f16' ? f16Bits(d) : d), name).toBe(g.deq);
      const dtype = dt === 'bf16' ? 'bfloat16' : dt === 'f16' ? 'float16' : 'float32';
      const json = buildQuantStateJson({ quantType: type, blocksize: bs, dtype, shape, nested: { blocksize: 256, dtype: 'float32', offset: torchOffset } });
      expect(json, name).toBe(g.json);
    }
    expect(new TextEncoder().encode(G.kproj_bf16.json).length).toBe(169); // = the SmolLM2 k_proj quant_state
  });

  it('8-bit dQuantize<0>: exact midpoint ties, map ends, random and zero blocks', () => {
    const map = dynamicMap256();
    const v: number[] = [];
    for (let k = 0; k < 255; k++) {
      const mid = f(f(map[k] + map[k + 1]) * 0.5);
      v.push(mid, nextUp(mid), nextDown(mid), map[k]);
    }
    v.push(1, -1, f(-0.995), map[0], nextDown(map[0]), nextUp(map[0]), f(0.9965), 0, -0);
    const x: number[] = [];
    for (let i = 0; i < v.length; i += 255) x.push(1, ...v.slice(i, i + 255));
    expect(sha16(quantizeBlockwise8(new Float32Array(x)).q)).toBe(G.q8_ties);
    for (const n of [1, 255, 256, 257, 5000] as const) {
      const q = quantizeBlockwise8(gen(n + 1000, n));
      expect(`${sha16(q.q)}:${hex(q.absmax)}`).toBe(G[`q8_rand_${n}`]);
    }
    const zz = gen(17, 700);
    zz.fill(0, 256, 512);
    const qz = quantizeBlockwise8(zz);
    expect(`${sha16(qz.q)}:${hex(qz.absmax)}`).toBe(G.q8_zero);
  });

  it('pythonFloatRepr equals CPython repr() on 5982 random doubles and f32 values', () => {
    const r = new Rng(12345);
    const dv = new DataView(new ArrayBuffer(8));
    const out: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const hi = r.next();
      dv.setUint32(0, hi);
      dv.setUint32(4, r.next());
      const x = dv.getFloat64(0);
      if (Number.isFinite(x)) out.push(pythonFloatRepr(x));
      const xf = dv.getFloat32(0);
      if (Number.isFinite(xf)) out.push(pythonFloatRepr(xf));
    }
    expect(`${out.length}:${sha(out.join('\n')).slice(0, 16)}`).toBe(G.repr);
  });

  it('MUFU.RCP: CUDA normalizes with an approximate reciprocal; the reciprocal hook reproduces it', () => {
    // blocks crafted so that IEEE and MUFU reciprocals of the absmax m give different codes
    const mufu = new Map<number, number>();
    for (const [m, r] of [...G.mufu.m4, ...G.mufu.m8]) mufu.set(f32OfBits(m), f32OfBits(r));
    const reciprocal = (m: number) => mufu.get(m) ?? reciprocalF32(m);
    const x4: number[] = [];
    for (const [mb, rb] of G.mufu.m4) {
      const m = f32OfBits(mb);
      const [r1, r2] = [reciprocalF32(m), f32OfBits(rb)];
      const block = [m];
      const flips = (a: number, both: boolean) =>
        fp4Code(f(a * r1)) !== fp4Code(f(a * r2)) || (both && nf4Code(f(a * r1)) !== nf4Code(f(a * r2)));
      for (const t of NF4_THRESHOLDS) {
        for (let k = -3; k <= 3 && block.length < 64; k++) {
          const a = stepF(f(t * m), k);
          if (Math.abs(a) < m && flips(a, true)) block.push(a);
        }
      }
      for (const t of FP4_THRESHOLDS) {
        for (const sg of [1, -1]) for (let k = -3; k <= 3 && block.length < 64; k++) {
          const a = stepF(f(sg * t * m), k);
          if (flips(a, false)) block.push(a);
        }
      }
      while (block.length < 64) block.push(0.25);
      x4.push(...block);
    }
    for (const type of TYPES) {
      expect(hex(quantize4bit(new Float32Array(x4), { type, reciprocal }).packed)).toBe(G.mufu[type]);
      expect(hex(quantize4bit(new Float32Array(x4), { type }).packed)).not.toBe(G.mufu[type]);
    }
    const map = dynamicMap256();
    const [mb, rb] = G.mufu.m8[0];
    const m = f32OfBits(mb);
    const block = [m];
    for (let k = 0; k < 255 && block.length < 256; k++) {
      const mid = f(f(map[k] + map[k + 1]) * 0.5);
      for (let j = -2; j <= 2 && block.length < 256; j++) {
        const a = stepF(f(mid * m), j);
        if (Math.abs(a) < m && dQuantize8(map, ftz(f(a * reciprocalF32(m)))) !== dQuantize8(map, ftz(f(a * f32OfBits(rb))))) block.push(a);
      }
    }
    while (block.length < 256) block.push(0.5);
    expect(hex(quantizeBlockwise8(new Float32Array(block), { reciprocal }).q)).toBe(G.mufu.q8);
  });
});
