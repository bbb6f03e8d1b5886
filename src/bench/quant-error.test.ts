// Quantization error on Gaussian weights (CPU only, fast): NF4 beats FP4 and plain absmax int4,
// and the report renders.
import { describe, expect, it } from 'vitest';
import { absmaxInt4RoundTrip, quantizationErrors } from './quant.bench.ts';
import { renderJson, renderTable } from './report.ts';
import { median } from './harness.ts';

describe('quantization error (Gaussian weights, block 64)', () => {
  it('NF4 has the lowest RMSE and mean relative error', () => {
    const errs = quantizationErrors(1 << 15, 7);
    const by = Object.fromEntries(errs.map((e) => [e.type, e]));
    expect(by['nf4']!.rmse).toBeLessThan(by['fp4']!.rmse);
    expect(by['nf4']!.rmse).toBeLessThan(by['int4-absmax']!.rmse);
    expect(by['nf4']!.meanRelError).toBeLessThan(by['fp4']!.meanRelError);
    expect(by['nf4']!.meanRelError).toBeLessThan(by['int4-absmax']!.meanRelError);
    // sanity: 4-bit errors are a few percent of the weights, not garbage
    for (const e of errs) expect(e.meanRelError).toBeGreaterThan(0.01);
    for (const e of errs) expect(e.meanRelError).toBeLessThan(0.3);
  });

  it('absmax int4 uses 15 symmetric levels and keeps the block maximum exact', () => {
    const w = new Float32Array([0.7, -0.35, 0.1, 0, -0.7, 0.05]);
    const r = absmaxInt4RoundTrip(w, 64);
    expect(r[0]).toBeCloseTo(0.7, 6);
    expect(r[4]).toBeCloseTo(-0.7, 6);
    expect(r[1]).toBeCloseTo(-0.3, 6); // -0.35 / 0.1 = -3.5 -> round -> -3 (Math.round rounds half up)
    expect(new Set([...r].map((v) => Math.round(v / 0.1))).size).toBeLessThanOrEqual(15);
    expect([...absmaxInt4RoundTrip(new Float32Array(3), 64)]).toEqual([0, 0, 0]);
  });
});

describe('bench report', () => {
  it('renders a text table and JSON', () => {
    const results = [
      { name: 'fused NF4 matmul', shape: '256x1024x1024', ms: 91.2, gflops: 5.89, ratio: 1.02, ratioOf: 'f32 / fused', goal: '>= 1x', met: true, timing: 'wall' as const, minMs: 90, maxMs: 95 },
      { name: 'quantization error nf4', shape: 'gaussian', ms: 0, extra: { rmse: 0.0012 } },
    ];
    const t = renderTable(results, { adapter: 'test adapter' });
    expect(t).toContain('fused NF4 matmul');
    expect(t).toContain('1.02x');
    expect(t).toContain('rmse=');
    expect(t.split('\n')[0]).toBe('adapter: test adapter');
    const j = JSON.parse(renderJson(results, { adapter: 'x' }));
    expect(j.results).toHaveLength(2);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
});
