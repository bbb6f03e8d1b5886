// Tests for the dtype table and the f16/bf16/f32 conversions (known bit patterns, RNE ties,
// exhaustive round trips) and toFloat32 on unaligned little-endian bytes.
import { describe, it, expect } from 'vitest';
import {
  DTYPES, DTYPE_BITS, bf16BytesToF32, bf16ToF32, canConvertToFloat32, dtypeByteLength, dtypeRank,
  f16BytesToF32, f16ToF32, f32ToBf16, f32ToBf16Bytes, f32ToF16, f32ToF16Bytes, isDType, toFloat32,
  type DType,
} from './dtypes.ts';

/** The f32 value with bit pattern `b`. */
function fromBits(b: number): number {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setUint32(0, b >>> 0);
  return dv.getFloat32(0);
}

describe('dtype table', () => {
  it('lists all 22 dtype strings in alignment order with bit sizes', () => {
    expect(DTYPES).toEqual([
      'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F8_E4M3FNUZ',
      'F8_E5M2FNUZ', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'C64', 'F64', 'I64', 'U64',
    ]);
    expect(DTYPE_BITS.F4).toBe(4);
    expect(DTYPE_BITS.F6_E2M3).toBe(6);
    expect(DTYPE_BITS.F6_E3M2).toBe(6);
    expect(DTYPE_BITS.BOOL).toBe(8);
    expect(DTYPE_BITS.F8_E8M0).toBe(8);
    expect(DTYPE_BITS.BF16).toBe(16);
    expect(DTYPE_BITS.C64).toBe(64);
    expect(DTYPE_BITS.U64).toBe(64);
    expect(dtypeRank('U64')).toBe(21);
    expect(dtypeRank('BOOL')).toBe(0);
    expect(dtypeRank('F32')).toBeGreaterThan(dtypeRank('BF16'));
    expect(isDType('F32')).toBe(true);
    expect(isDType('f32')).toBe(false);
    expect(isDType(32)).toBe(false);
    expect(isDType('toString')).toBe(false);
  });

  it('computes byte lengths, rejecting fractional ones', () => {
    expect(dtypeByteLength('F32', 6)).toBe(24);
    expect(dtypeByteLength('F4', 6)).toBe(3);
    expect(dtypeByteLength('F6_E2M3', 4)).toBe(3);
    expect(dtypeByteLength('F16', 0)).toBe(0);
    expect(() => dtypeByteLength('F4', 3)).toThrow(/not a whole number of bytes/);
    expect(() => dtypeByteLength('F6_E3M2', 2)).toThrow(/not a whole number of bytes/);
  });
});

describe('f16', () => {
  it('decodes known bit patterns', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc100)).toBe(-2.5);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16ToF32(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16ToF32(0x8001)).toBe(-(2 ** -24));
    expect(f16ToF32(0x3555)).toBe(0.333251953125);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0x7c01)).toBeNaN();
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
  });

  it('encodes known values', () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2.5)).toBe(0xc100);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(2 ** -14)).toBe(0x0400);
    expect(f32ToF16(2 ** -24)).toBe(0x0001);
    expect(f32ToF16(-(2 ** -24))).toBe(0x8001);
    expect(f32ToF16(1023 * 2 ** -24)).toBe(0x03ff);
    expect(f32ToF16(0)).toBe(0);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(1e6)).toBe(0x7c00); // overflow
    expect(f32ToF16(-1e6)).toBe(0xfc00);
    expect(f32ToF16(1e-10)).toBe(0); // underflow
    expect(f32ToF16(-1e-10)).toBe(0x8000);
    expect(f32ToF16(2 ** -130)).toBe(0); // f32 subnormal input
  });

  it('keeps NaN as NaN, including NaNs whose payload sits in the low bits', () => {
    for (const bits of [0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000]) {
      const h = f32ToF16(fromBits(bits));
      expect(h & 0x7c00).toBe(0x7c00);
      expect(h & 0x3ff).not.toBe(0);
      expect(f16ToF32(h)).toBeNaN();
    }
  });

  it('rounds ties to even, also at the subnormal and overflow edges', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie, down to even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, up to even
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(f32ToF16(1 + 2 ** -11 - 2 ** -20)).toBe(0x3c00); // below the tie
    expect(f32ToF16(65519)).toBe(0x7bff); // below the overflow tie
    expect(f32ToF16(65520)).toBe(0x7c00); // tie rounds to even = inf
    expect(f32ToF16(2 ** -25)).toBe(0); // half the smallest subnormal: tie to 0
    expect(f32ToF16(2 ** -25 * 1.5)).toBe(1);
    expect(f32ToF16(3 * 2 ** -25)).toBe(2); // tie between 1 and 2 → 2
    expect(f32ToF16(5 * 2 ** -25)).toBe(2); // tie between 2 and 3 → 2
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // tie between 0x3ff and 0x400 → smallest normal
  });

  it('round-trips every non-NaN f16 bit pattern exactly', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToF32(h);
      if (Number.isNaN(v)) continue;
      if (f32ToF16(v) !== h) throw new Error(`f16 0x${h.toString(16)} → ${v} → 0x${f32ToF16(v).toString(16)}`);
    }
  });

  it('encodes halfway points between neighbouring f16 values to the even one', () => {
    for (let h = 0x0000; h < 0x7bff; h += 37) {
      const mid = (f16ToF32(h) + f16ToF32(h + 1)) / 2; // exact in f32
      expect(f32ToF16(mid)).toBe(h % 2 === 0 ? h : h + 1);
    }
  });

  it('converts arrays both ways, at unaligned offsets', () => {
    const buf = new Uint8Array(1 + 8);
    buf.set(f32ToF16Bytes([1, -2.5, 65504, Infinity]), 1);
    expect([...buf.subarray(1)]).toEqual([0x00, 0x3c, 0x00, 0xc1, 0xff, 0x7b, 0x00, 0x7c]);
    expect([...f16BytesToF32(buf.subarray(1))]).toEqual([1, -2.5, 65504, Infinity]);
    expect(() => f16BytesToF32(new Uint8Array(3))).toThrow(RangeError);
  });
});

describe('bf16', () => {
  it('decodes and encodes known bit patterns', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc020)).toBe(-2.5);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(bf16ToF32(0xff80)).toBe(-Infinity);
    expect(bf16ToF32(0x7fc0)).toBeNaN();
    expect(bf16ToF32(0x0001)).toBe(2 ** -133); // subnormal
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(-2.5)).toBe(0xc020);
    expect(f32ToBf16(65504)).toBe(0x4780); // rounds up to 65536
    expect(f32ToBf16(Infinity)).toBe(0x7f80);
    expect(f32ToBf16(-0)).toBe(0x8000);
    expect(f32ToBf16(2 ** -133)).toBe(0x0001);
    expect(f32ToBf16(fromBits(0x7f7fffff))).toBe(0x7f80); // max f32 rounds to inf
  });

  it('rounds ties to even', () => {
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even (down)
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16(fromBits(0x3f808000))).toBe(0x3f80);
    expect(f32ToBf16(fromBits(0x3f818000))).toBe(0x3f82);
    expect(f32ToBf16(fromBits(0x3f807fff))).toBe(0x3f80);
    expect(f32ToBf16(fromBits(0x3f808001))).toBe(0x3f81);
  });

  it('preserves NaN, even when only low mantissa bits are set', () => {
    for (const bits of [0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fa00000]) {
      const b = f32ToBf16(fromBits(bits));
      expect(b & 0x7f80).toBe(0x7f80);
      expect(b & 0x7f).not.toBe(0);
      expect((b & 0x8000) !== 0).toBe(bits >>> 31 === 1);
    }
  });

  it('round-trips every non-NaN bf16 bit pattern exactly', () => {
    for (let b = 0; b < 65536; b++) {
      const v = bf16ToF32(b);
      if (Number.isNaN(v)) continue;
      if (f32ToBf16(v) !== b) throw new Error(`bf16 0x${b.toString(16)} → ${v} → 0x${f32ToBf16(v).toString(16)}`);
    }
  });

  it('converts arrays both ways, at unaligned offsets', () => {
    const buf = new Uint8Array(3 + 6);
    buf.set(f32ToBf16Bytes([1, -2.5, 3]), 3);
    expect([...buf.subarray(3)]).toEqual([0x80, 0x3f, 0x20, 0xc0, 0x40, 0x40]);
    expect([...bf16BytesToF32(buf.subarray(3))]).toEqual([1, -2.5, 3]);
  });
});

describe('toFloat32', () => {
  type Case = [DType, number, (dv: DataView, o: number, v: number) => void, number[]];
  const cases: Case[] = [
    ['F32', 4, (dv, o, v) => dv.setFloat32(o, v, true), [1.5, -2.25, 3e38, -0]],
    ['F64', 8, (dv, o, v) => dv.setFloat64(o, v, true), [1.5, -1e-3, 2 ** 40]],
    ['F16', 2, (dv, o, v) => dv.setUint16(o, f32ToF16(v), true), [1, -2.5, 65504]],
    ['BF16', 2, (dv, o, v) => dv.setUint16(o, f32ToBf16(v), true), [1, -2.5, 3]],
    ['I8', 1, (dv, o, v) => dv.setInt8(o, v), [-128, 0, 127]],
    ['U8', 1, (dv, o, v) => dv.setUint8(o, v), [0, 200, 255]],
    ['BOOL', 1, (dv, o, v) => dv.setUint8(o, v), [0, 1, 1]],
    ['I16', 2, (dv, o, v) => dv.setInt16(o, v, true), [-32768, 5, 32767]],
    ['U16', 2, (dv, o, v) => dv.setUint16(o, v, true), [0, 65535, 258]],
    ['I32', 4, (dv, o, v) => dv.setInt32(o, v, true), [-(2 ** 31), 7, 2 ** 24]],
    ['U32', 4, (dv, o, v) => dv.setUint32(o, v, true), [2 ** 32 - 256, 1, 16777216]],
    ['I64', 8, (dv, o, v) => dv.setBigInt64(o, BigInt(v), true), [-(2 ** 40), -1, 123456]],
    ['U64', 8, (dv, o, v) => dv.setBigUint64(o, BigInt(v), true), [2 ** 50, 0, 99]],
  ];

  for (const [dtype, size, set, values] of cases) {
    it(`reads ${dtype} little-endian at every byte offset 0..7`, () => {
      for (let shift = 0; shift < 8; shift++) {
        const buf = new Uint8Array(shift + size * values.length);
        const dv = new DataView(buf.buffer);
        values.forEach((v, i) => set(dv, shift + i * size, v));
        const bytes = buf.subarray(shift);
        const out = toFloat32(dtype, bytes);
        expect(out).toBeInstanceOf(Float32Array);
        expect([...out]).toEqual(values.map((v) => Math.fround(v)));
        bytes.fill(0); // the result never aliases the input
        expect([...out]).toEqual(values.map((v) => Math.fround(v)));
      }
    });
  }

  it('rejects dtypes it cannot convert and ragged byte lengths', () => {
    expect(canConvertToFloat32('F8_E4M3')).toBe(false);
    expect(canConvertToFloat32('F4')).toBe(false);
    expect(canConvertToFloat32('C64')).toBe(false);
    expect(canConvertToFloat32('I64')).toBe(true);
    expect(() => toFloat32('F8_E4M3', new Uint8Array(4))).toThrow(/cannot convert F8_E4M3/);
    expect(() => toFloat32('F32', new Uint8Array(6))).toThrow(/not a multiple of 4/);
    expect(toFloat32('F32', new Uint8Array(0)).length).toBe(0);
  });
});

describe('Node Buffers (views into a shared pool)', () => {
  it('toFloat32 reads a Buffer at a non-zero pool offset correctly', () => {
    const f = new Float32Array([1.5, -2, 3.25]);
    const pooled = Buffer.from(new Uint8Array(f.buffer)); // small Buffers come from the pool
    const shifted = Buffer.concat([Buffer.from([9]), pooled]).subarray(1);
    for (const b of [pooled, shifted]) {
      expect([...toFloat32('F32', b)]).toEqual([1.5, -2, 3.25]);
      expect([...toFloat32('I8', Buffer.from([1, 255]))]).toEqual([1, -1]);
    }
  });
});
