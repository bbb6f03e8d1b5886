import { describe, expect, it, vi } from 'vitest';
import type { AdapterReport } from '../gpu/runtime.ts';
import type { ProbeResult, SelfTestResult } from '../worker/protocol.ts';
import { EngineError, type EngineApi } from './engine-client.ts';
import { formatBytes, formatError } from './format.ts';
import { createStudioStore, effectiveTheme, gpuFromProbe, isSoftwareAdapter, WORKER_WITHOUT_WEBGPU } from './store.ts';

const swiftshader: AdapterReport = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: '',
  description: '',
  backend: 'browser',
  isFallbackAdapter: true,
  features: ['subgroups'],
  limits: { maxStorageBufferBindingSize: 2 ** 30 },
};

const passed: SelfTestResult = { n: 100_003, seed: 1, a: 0.75, maxAbsError: 0, mismatches: 0, tolerance: 1e-6, ms: 3 };

function fakeEngine(probe: () => Promise<ProbeResult>, selftest = () => Promise.resolve(passed)) {
  const listeners = new Set<(e: EngineError) => void>();
  const engine: EngineApi & { fail(msg: string): void } = {
    probe: vi.fn(probe),
    selftest: vi.fn(selftest),
    call: vi.fn(() => Promise.reject(new Error('not in this test'))) as EngineApi['call'],
    onError: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    onEvent: () => () => {},
    fail: (msg) => listeners.forEach((l) => l(new EngineError(msg))),
  };
  return engine;
}

describe('gpuFromProbe', () => {
  it('is ready with the adapter', () => {
    expect(gpuFromProbe({ available: true, adapter: swiftshader }, true)).toEqual({ status: 'ready', adapter: swiftshader, message: null });
  });
  it('says plainly when only the worker lacks WebGPU', () => {
    const s = gpuFromProbe({ available: false, cause: 'no-webgpu', reason: 'no api' }, true);
    expect(s.status).toBe('missing');
    expect(s.message).toBe(WORKER_WITHOUT_WEBGPU);
    expect(s.message).toMatch(/page but not to Web Workers/);
  });
  it('passes the reason through otherwise', () => {
    expect(gpuFromProbe({ available: false, cause: 'no-adapter', reason: 'blocklisted' }, true).message).toBe('blocklisted');
    expect(gpuFromProbe({ available: false, cause: 'no-webgpu', reason: 'no api' }, false).message).toBe('no api');
  });
});

describe('studio store', () => {
  it('starts on the Model panel, checking the GPU', () => {
    const s = createStudioStore().getState();
    expect(s.panel).toBe('model');
    expect(s.gpu.status).toBe('checking');
  });

  it('reports the page missing WebGPU without asking the worker', async () => {
    const store = createStudioStore();
    const engine = fakeEngine(() => Promise.reject(new Error('must not be called')));
    store.getState().attachEngine(engine);
    await store.getState().checkGpu('Use Chrome 113+');
    expect(store.getState().gpu).toEqual({ status: 'missing', adapter: null, message: 'Use Chrome 113+' });
    expect(engine.probe).not.toHaveBeenCalled();
  });

  it('becomes ready with the adapter the worker reports, then runs the self-test', async () => {
    const store = createStudioStore();
    store.getState().attachEngine(fakeEngine(() => Promise.resolve({ available: true, adapter: swiftshader })));
    const checking = store.getState().checkGpu(null);
    expect(store.getState().gpu.status).toBe('checking');
    await checking;
    expect(store.getState().gpu.status).toBe('ready');
    expect(store.getState().gpu.adapter?.architecture).toBe('swiftshader');

    const running = store.getState().runSelfTest();
    expect(store.getState().selftest.running).toBe(true);
    await running;
    expect(store.getState().selftest).toEqual({ running: false, result: passed, error: null });
  });

  it('shows the worker-only gap when the page has WebGPU and the worker does not', async () => {
    const store = createStudioStore();
    store.getState().attachEngine(fakeEngine(() => Promise.resolve({ available: false, cause: 'no-webgpu', reason: 'x' })));
    await store.getState().checkGpu(null);
    expect(store.getState().gpu).toMatchObject({ status: 'missing', message: WORKER_WITHOUT_WEBGPU });
  });

  it('turns engine failures into an error status and a self-test error, never silence', async () => {
    const store = createStudioStore();
    store.getState().attachEngine(fakeEngine(() => Promise.reject(new EngineError('device lost'))));
    await store.getState().checkGpu(null);
    expect(store.getState().gpu).toEqual({ status: 'error', adapter: null, message: 'device lost' });

    await store.getState().runSelfTest();
    expect(store.getState().selftest.error).toMatch(/needs a working WebGPU adapter/);

    const ok = createStudioStore();
    ok.getState().attachEngine(
      fakeEngine(
        () => Promise.resolve({ available: true, adapter: swiftshader }),
        () => Promise.reject(new EngineError('GPU error: validation')),
      ),
    );
    await ok.getState().checkGpu(null);
    await ok.getState().runSelfTest();
    expect(ok.getState().selftest).toEqual({ running: false, result: null, error: 'GPU error: validation' });
  });

  it('reports a missing engine as an error', async () => {
    const store = createStudioStore();
    await store.getState().checkGpu(null);
    expect(store.getState().gpu.status).toBe('error');
  });

  it('collects engine errors that belong to no request, and dismisses them', () => {
    const store = createStudioStore();
    const engine = fakeEngine(() => new Promise(() => {}));
    store.getState().attachEngine(engine);
    engine.fail('GPU device lost (unknown): gone');
    engine.fail('second');
    expect(store.getState().notices).toEqual(['GPU device lost (unknown): gone', 'second']);
    store.getState().dismissNotice(0);
    expect(store.getState().notices).toEqual(['second']);
  });

  it('follows the system theme until toggled', () => {
    const store = createStudioStore({ systemTheme: 'dark' });
    expect(effectiveTheme(store.getState())).toBe('dark');
    store.getState().setSystemTheme('light');
    expect(effectiveTheme(store.getState())).toBe('light');
    store.getState().toggleTheme();
    expect(store.getState().themeChoice).toBe('dark');
    store.getState().setSystemTheme('light');
    expect(effectiveTheme(store.getState())).toBe('dark');
    store.getState().toggleTheme();
    expect(effectiveTheme(store.getState())).toBe('light');
  });

  it('switches panels', () => {
    const store = createStudioStore();
    store.getState().setPanel('train');
    expect(store.getState().panel).toBe('train');
  });
});

describe('display helpers', () => {
  it('formats byte sizes', () => {
    expect(formatBytes(2 ** 30)).toBe('1 GiB');
    expect(formatBytes(128 * 2 ** 20)).toBe('128 MiB');
    expect(formatBytes(65_536)).toBe('64 KiB');
    expect(formatBytes(4_294_967_292)).toBe('4 GiB');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.5 GiB');
    expect(formatBytes(1000)).toBe('1000 B');
  });
  it('formats errors', () => {
    expect(formatError(0)).toBe('0');
    expect(formatError(1e-6)).toBe('1e-6');
    expect(formatError(1.1920929e-7)).toBe('1.19e-7');
    expect(formatError(Number.NaN)).toBe('NaN');
  });
  it('recognises software adapters', () => {
    expect(isSoftwareAdapter(swiftshader)).toBe(true);
    expect(isSoftwareAdapter({ ...swiftshader, isFallbackAdapter: false })).toBe(true);
    expect(isSoftwareAdapter({ ...swiftshader, vendor: 'nvidia', architecture: 'ampere', isFallbackAdapter: false })).toBe(false);
  });
});
