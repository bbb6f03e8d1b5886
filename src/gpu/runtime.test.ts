import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from './node.ts';
import { CPU_MIN_WORKGROUPS, spreadWorkgroup, type GpuRuntime } from './runtime.ts';
import { RECYCLE_AFTER } from './uniforms.ts';
import { mulberry32 } from '../util/random.ts';

let rt: GpuRuntime;
beforeAll(async () => {
  rt = await createNodeRuntime();
});
afterAll(() => rt?.destroy());

describe('GPU runtime (Node, Dawn)', () => {
  it('reports the adapter with raised limits', () => {
    expect(rt.adapter.limits.maxBufferSize).toBeGreaterThanOrEqual(256 * 1024 * 1024);
    expect(rt.device.limits.maxStorageBufferBindingSize).toBe(rt.adapter.limits.maxStorageBufferBindingSize);
    expect(rt.device.limits.maxBufferSize).toBe(rt.adapter.limits.maxBufferSize);
    console.log(`adapter: ${rt.adapter.vendor} ${rt.adapter.architecture} ${rt.adapter.description} (${rt.adapter.backend})`);
  });

  it('runs a WGSL kernel on random input of an awkward size (smoke test)', async () => {
    const n = 1_000_003;
    const rand = mulberry32(7);
    const x = new Float32Array(n).map(() => rand() * 2 - 1);
    const y = new Float32Array(n).map(() => rand() * 2 - 1);
    const a = 0.75;
    await rt.kernels.validate('smoke');
    const px = rt.upload(x);
    const py = rt.upload(y);
    const groups = Math.ceil(n / 256);
    rt.dispatch('smoke', 'axpy', [rt.uniform([n, a], 'uf'), px, py], [Math.min(groups, 65535), Math.ceil(groups / 65535)]);
    const out = await rt.readF32(py, n);
    for (let i = 0; i < n; i++) {
      const want = Math.fround(Math.fround(a * x[i]!) + y[i]!);
      // a*x+y may be contracted to an FMA by the driver: allow one rounding of difference.
      if (Math.abs(out[i]! - want) > 1e-6) throw new Error(`axpy[${i}] = ${out[i]}, want ${want}`);
    }
    px.destroy();
    py.destroy();
  });

  it('names the kernel file and line when WGSL does not compile', async () => {
    const bad = await createNodeRuntimeWithShader('fn main( {');
    await expect(bad.kernels.validate('broken')).rejects.toThrow(/shaders\/broken\.wgsl:1:/);
    bad.destroy();
  });

  it('reports a validation error instead of hanging', async () => {
    const buf = rt.create(16);
    // Binding a too-small uniform is a validation error surfaced by sync().
    rt.dispatch('smoke', 'axpy', [buf, buf, buf], [1]);
    await expect(rt.sync()).rejects.toThrow(/GPU error/);
  });

  it('tracks live and peak GPU bytes of its buffers', () => {
    const before = rt.memory.live;
    rt.resetPeak();
    const a = rt.create(1000);
    const b = rt.upload(new Float32Array(300));
    expect(rt.memory.live - before).toBe(1000 + 1200);
    a.destroy();
    a.destroy();
    expect(rt.memory.live - before).toBe(1200);
    expect(rt.memory.peak - before).toBe(2200);
    b.destroy();
    expect(rt.memory.live).toBe(before);
  });

  it('shares a parameter block by content, and recycles one unused for RECYCLE_AFTER submits in queue order', async () => {
    const own = await createNodeRuntime();
    try {
      const n = 8;
      const x = own.upload(new Float32Array(n).fill(1));
      const y = own.upload(new Float32Array(n));
      const scratch = own.upload(new Float32Array(1));
      const p2 = own.uniform([n, 2], 'uf');
      expect(own.uniform([n, 2], 'uf')).toBe(p2);
      own.dispatch('smoke', 'axpy', [p2, x, y], [1]); // y = 2
      for (let i = 0; i < RECYCLE_AFTER; i++) {
        own.copy(x, 0, scratch, 0, 4);
        own.flush();
      }
      // [n, 2] went unused for RECYCLE_AFTER submits: [n, 5] takes its buffer, rewritten after the
      // first dispatch read it and before the second.
      const p5 = own.uniform([n, 5], 'uf');
      expect(p5).toBe(p2);
      own.dispatch('smoke', 'axpy', [p5, x, y], [1]); // y = 7
      expect([...(await own.readF32(y))]).toEqual(new Array(n).fill(7));
      expect([...new Float32Array(await own.read(p5, 8), 4, 1)]).toEqual([5]);
      expect(own.uniform([n, 2], 'uf')).not.toBe(p5);
    } finally {
      own.destroy();
    }
  });

  it('keeps one buffer per slot, rewritten in queue order once the words it holds were submitted', async () => {
    const own = await createNodeRuntime();
    try {
      const n = 6;
      const x = own.upload(new Float32Array(n).fill(1));
      const y = own.upload(new Float32Array(n));
      const p2 = own.uniform([n, 2], 'uf', 'site');
      own.dispatch('smoke', 'axpy', [p2, x, y], [1]); // y = 2
      // Same command buffer, new words: the slot's words are still to be read, so another buffer.
      const p3 = own.uniform([n, 3], 'uf', 'site');
      expect(p3).not.toBe(p2);
      own.dispatch('smoke', 'axpy', [p3, x, y], [1]); // y = 5
      own.flush();
      const p4 = own.uniform([n, 4], 'uf', 'site');
      expect(p4).toBe(p2); // rewritten in place after the submit that read 2
      own.dispatch('smoke', 'axpy', [p4, x, y], [1]); // y = 9
      expect(own.uniform([n, 4], 'uf', 'site')).toBe(p2);
      expect([...(await own.readF32(y))]).toEqual(new Array(n).fill(9));
    } finally {
      own.destroy();
    }
  });

  it('submits every submitEvery dispatches on its own, except inside holdSubmits', async () => {
    const own = await createNodeRuntime({ submitEvery: 2 });
    try {
      const n = 5;
      const x = own.upload(new Float32Array(n).fill(1));
      const y = own.upload(new Float32Array(n));
      const p = own.uniform([n, 3], 'uf');
      own.flush();
      const before = own.submits;
      for (let i = 0; i < 5; i++) own.dispatch('smoke', 'axpy', [p, x, y], [1]);
      expect(own.submits - before).toBe(2); // after the 2nd and 4th; the 5th waits for a flush
      own.holdSubmits(() => {
        for (let i = 0; i < 5; i++) own.dispatch('smoke', 'axpy', [p, x, y], [1]);
      });
      expect(own.submits - before).toBe(2);
      expect([...(await own.readF32(y))]).toEqual(new Array(n).fill(30));
      expect(own.submits - before).toBe(3);
    } finally {
      own.destroy();
    }
  });

  it('pools buffers by size class', () => {
    const a = rt.pool.acquire(1000);
    rt.pool.release(a);
    const b = rt.pool.acquire(900);
    expect(b).toBe(a);
    rt.pool.release(b);
  });
});

async function createNodeRuntimeWithShader(code: string): Promise<GpuRuntime> {
  const { nodeGpu } = await import('./node.ts');
  const { createRuntime } = await import('./runtime.ts');
  return createRuntime(await nodeGpu(), () => code);
}

describe('spreadWorkgroup', () => {
  const cpu = { kernelStyle: 'cpu' } as GpuRuntime;
  const gpu = { kernelStyle: 'gpu' } as GpuRuntime;
  it('keeps the size on GPUs and on CPU adapters when there are workgroups enough', () => {
    expect(spreadWorkgroup(gpu, 16)).toBe(64);
    expect(spreadWorkgroup(cpu, 64 * CPU_MIN_WORKGROUPS)).toBe(64);
    expect(spreadWorkgroup(cpu, 10_000, 32)).toBe(32);
  });
  it('halves it on CPU adapters until the dispatch has CPU_MIN_WORKGROUPS workgroups, down to 4', () => {
    expect(spreadWorkgroup(cpu, 128)).toBe(16);
    expect(Math.ceil(128 / spreadWorkgroup(cpu, 128))).toBe(CPU_MIN_WORKGROUPS);
    expect(spreadWorkgroup(cpu, 16)).toBe(4);
    expect(spreadWorkgroup(cpu, 1)).toBe(4);
  });
});
