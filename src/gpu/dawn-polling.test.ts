import { describe, expect, it } from 'vitest';
import { pollPolicy, throttleDawnPolling } from './dawn-polling.ts';

describe('Dawn polling throttle', () => {
  it('runs the first 2 ms of a wait at once, then spaces the polls, and starts over after a pause', () => {
    const spin = pollPolicy();
    expect([0, 0.5, 1.9].map(spin)).toEqual([true, true, true]);
    expect([2.1, 3.2, 4.3, 50].map(spin)).toEqual([false, false, false, true]);
    expect([50.5, 52.5].map(spin)).toEqual([true, false]);
  });

  it('leaves JavaScript callbacks of setImmediate immediate', async () => {
    throttleDawnPolling();
    throttleDawnPolling();
    const order: string[] = [];
    await new Promise<void>((done) => {
      setTimeout(() => {
        order.push('timeout');
        done();
      }, 0);
      const h = setImmediate(() => order.push('immediate'));
      expect(h.constructor.name).toBe('Immediate');
    });
    expect(order[0]).toBe('immediate');
  });

  it('delays native callbacks once a wait has spun for 2 ms', async () => {
    throttleDawnPolling();
    const native = Math.random.bind(null) as unknown as () => void; // a bound function prints as native code
    const start = performance.now();
    while (performance.now() - start < 3) setImmediate(native); // the spin phase passes
    const h = setImmediate(native);
    expect(h.constructor.name).toBe('Timeout');
  });
});
