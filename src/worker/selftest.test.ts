// The self-test and the engine host on a real GPU runtime (Node, Dawn; SwiftShader without a GPU).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime, nodeGpu } from '../gpu/node.ts';
import type { GpuRuntime } from '../gpu/runtime.ts';
import { EngineHost } from './engine-host.ts';
import type { EngineReply } from './protocol.ts';
import { runSelfTest, SELFTEST_DEFAULTS } from './selftest.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

describe('GPU self-test (Dawn)', () => {
  it('matches the CPU on 100003 elements', async () => {
    const r = await runSelfTest(rt);
    expect(r.n).toBe(SELFTEST_DEFAULTS.n);
    expect(r.mismatches).toBe(0);
    expect(r.maxAbsError).toBeLessThanOrEqual(1e-6);
    expect(r.ms).toBeGreaterThan(0);
  });

  it('handles tiny and odd sizes, and rejects bad ones', async () => {
    for (const n of [1, 255, 257]) {
      const r = await runSelfTest(rt, { n, seed: n, a: -1.5 });
      expect(r.mismatches).toBe(0);
    }
    await expect(runSelfTest(rt, { n: 0 })).rejects.toThrow(RangeError);
  });

  it('runs through the engine host: probe, then selftest', async () => {
    const gpu = await nodeGpu();
    const replies: EngineReply[] = [];
    const host = new EngineHost((r) => replies.push(r), {
      gpu: () => gpu,
      missingReason: () => null,
      createRuntime: async () => rt,
    });
    await host.receive({ id: 1, command: 'probe', args: {} });
    await host.receive({ id: 2, command: 'selftest', args: { n: 4097 } });
    expect(replies[0]).toMatchObject({ id: 1, type: 'result', command: 'probe', result: { available: true } });
    expect(replies[1]).toMatchObject({ id: 2, type: 'result', command: 'selftest', result: { n: 4097, mismatches: 0 } });
  });
});
