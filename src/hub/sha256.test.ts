import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../util/random.ts';
import { Sha256, sha256Hex } from './sha256.ts';

const nodeHex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function randomBytes(n: number, rand: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

describe('sha256', () => {
  it('matches the FIPS test vectors', () => {
    expect(sha256Hex(new Uint8Array())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('equals node:crypto on random inputs fed in random pieces', () => {
    const rand = mulberry32(7);
    for (const n of [1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 4097, 100_003]) {
      const data = randomBytes(n, rand);
      const h = new Sha256();
      let o = 0;
      while (o < n) {
        const k = Math.min(n - o, 1 + Math.floor(rand() * 300));
        h.update(data.subarray(o, o + k));
        o += k;
      }
      expect(h.hex(), `length ${n}`).toBe(nodeHex(data));
      expect(h.bytes).toBe(n);
    }
  });

  it('hashes a few MB at a useful speed', () => {
    const data = randomBytes(8 << 20, mulberry32(3));
    const t = performance.now();
    const hex = sha256Hex(data);
    const ms = performance.now() - t;
    expect(hex).toBe(nodeHex(data));
    expect(ms).toBeLessThan(5000);
  });
});
