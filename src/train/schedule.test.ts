import { describe, expect, it } from 'vitest';
import { learningRate, lrLambda } from './schedule.ts';
import { makeTrainConfig, totalSteps, warmupStepsFor } from './train-config.ts';

const lr = 2e-4;
const at = (schedule: 'constant' | 'linear' | 'cosine', w: number, total: number, steps: number[]) =>
  steps.map((s) => learningRate(s, total, { lr, schedule, warmupSteps: w }) / lr);

describe('learning-rate schedules (transformers optimization.py)', () => {
  it('constant with warmup: step/W during warmup, then 1', () => {
    const got = at('constant', 3, 10, [0, 1, 2, 3, 9, 50]);
    [0, 1 / 3, 2 / 3, 1, 1, 1].forEach((w, i) => expect(got[i]).toBeCloseTo(w, 15));
  });

  it('linear with warmup: (T − step)/(T − W) after warmup, clamped at 0', () => {
    const got = at('linear', 2, 10, [0, 1, 2, 6, 9, 10, 11]);
    [0, 0.5, 1, 0.5, 0.125, 0, 0].forEach((w, i) => expect(got[i]).toBeCloseTo(w, 15));
  });

  it('cosine with warmup: half a cosine from 1 to 0 (and back up past T, as in HF)', () => {
    const got = at('cosine', 2, 10, [0, 1, 2, 4, 6, 8, 10, 12]);
    const want = [0, 0.5, 1, 0.5 + Math.SQRT2 / 4, 0.5, 0.5 - Math.SQRT2 / 4, 0, 0.5 - Math.SQRT2 / 4];
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 15));
  });

  it('no warmup: the first step already uses the full rate (linear: T/T)', () => {
    expect(at('constant', 0, 10, [0])).toEqual([1]);
    expect(at('linear', 0, 4, [0, 1, 2, 3])).toEqual([1, 0.75, 0.5, 0.25]);
    expect(at('cosine', 0, 4, [0])).toEqual([1]);
  });

  it('max(1, ·) guards like HF: W = T and T = 0 do not divide by zero', () => {
    expect(lrLambda(5, 5, { schedule: 'linear', warmupSteps: 5 })).toBe(0);
    expect(lrLambda(0, 0, { schedule: 'cosine', warmupSteps: 0 })).toBe(1);
  });

  it('resolves warmup from a TrainConfig: ceil(total × ratio) unless warmupSteps > 0', () => {
    const cfg = makeTrainConfig();
    expect(warmupStepsFor(cfg, 1875)).toBe(57); // ceil(56.25)
    expect(learningRate(0, 1875, cfg)).toBe(0);
    expect(learningRate(19, 1875, cfg)).toBeCloseTo((2e-4 * 19) / 57, 18);
    expect(learningRate(57, 1875, cfg)).toBe(2e-4);
    expect(warmupStepsFor({ warmupSteps: 10, warmupRatio: 0.5 }, 100)).toBe(10);
    expect(totalSteps(makeTrainConfig({ maxSteps: 0, epochs: 2, batchSize: 2, gradAccum: 4 }), 33)).toBe(2 * 5); // 17 batches → ceil(17 / 4) = 5 steps per epoch
  });
});
