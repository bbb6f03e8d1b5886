// The worker protocol end to end, in one process: EngineClient (UI side) talks to EngineHost
// (worker side) through a fake Worker that structured-clones every message, as postMessage does.

import { describe, expect, it } from 'vitest';
import { EngineClient, EngineError, type WorkerLike } from '../app/engine-client.ts';
import type { AdapterReport, GpuRuntime } from '../gpu/runtime.ts';
import { EngineHost, NO_ADAPTER_REASON, type EngineHostDeps } from './engine-host.ts';
import type { EngineReply } from './protocol.ts';

const report: AdapterReport = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: '',
  description: '',
  backend: 'test',
  isFallbackAdapter: true,
  features: [],
  limits: { maxStorageBufferBindingSize: 2 ** 30 },
};

type Listener = (ev: Event) => void;

/** A Worker stand-in: page → host and host → page, asynchronously, through structuredClone. */
class LoopbackWorker implements WorkerLike {
  readonly host: EngineHost;
  private listeners = new Map<string, Listener[]>();
  terminated = false;
  sent: unknown[] = [];

  constructor(deps: EngineHostDeps) {
    this.host = new EngineHost((reply: EngineReply) => this.deliver(reply), deps);
  }
  postMessage(message: unknown): void {
    this.sent.push(message);
    const copy = structuredClone(message);
    queueMicrotask(() => void this.host.receive(copy));
  }
  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  terminate(): void {
    this.terminated = true;
  }
  dispatch(type: string, ev: object): void {
    for (const l of this.listeners.get(type) ?? []) l(ev as Event);
  }
  deliver(reply: unknown): void {
    if (this.terminated) return;
    const data = structuredClone(reply);
    queueMicrotask(() => this.dispatch('message', { data }));
  }
}

function fakeRuntime(onLost?: (lose: (m: string) => void) => void): GpuRuntime {
  let lose!: (m: string) => void;
  const lost = new Promise<string>((r) => (lose = r));
  onLost?.(lose);
  return { adapter: report, lost } as unknown as GpuRuntime;
}

const gpuWith = (adapter: object | null) => ({ requestAdapter: async () => adapter }) as unknown as GPU;

describe('engine protocol (client ↔ host)', () => {
  it('probes: the adapter report when there is one', async () => {
    let created = 0;
    const w = new LoopbackWorker({
      gpu: () => gpuWith({}),
      missingReason: () => null,
      createRuntime: async () => (created++, fakeRuntime()),
    });
    const client = new EngineClient(w);
    expect(await client.probe()).toEqual({ available: true, adapter: report });
    expect(await client.probe()).toEqual({ available: true, adapter: report });
    expect(created).toBe(1); // one runtime, kept for later commands
    expect(w.sent[0]).toEqual({ id: 1, command: 'probe', args: {} });
    expect(client.inFlight).toBe(0);
  });

  it('probes: no WebGPU in the worker, or no adapter, are answers, not errors', async () => {
    const none = new EngineClient(
      new LoopbackWorker({ gpu: () => undefined, missingReason: () => 'no api here', createRuntime: async () => fakeRuntime() }),
    );
    expect(await none.probe()).toEqual({ available: false, cause: 'no-webgpu', reason: 'no api here' });

    const noAdapter = new EngineClient(
      new LoopbackWorker({ gpu: () => gpuWith(null), missingReason: () => null, createRuntime: async () => fakeRuntime() }),
    );
    const r = await noAdapter.probe();
    expect(r).toEqual({ available: false, cause: 'no-adapter', reason: NO_ADAPTER_REASON });
    expect(NO_ADAPTER_REASON).toMatch(/--enable-unsafe-webgpu/);
  });

  it('rejects with the worker-side error, name and command included', async () => {
    const client = new EngineClient(
      new LoopbackWorker({
        gpu: () => gpuWith({}),
        missingReason: () => null,
        createRuntime: async () => {
          throw new RangeError('requestDevice: limit too high');
        },
      }),
    );
    const err = await client.selftest().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ message: 'requestDevice: limit too high', remoteName: 'RangeError', command: 'selftest' });
    // A failed runtime is not cached: the next call tries again (and fails again here).
    await expect(client.probe()).rejects.toThrow('requestDevice: limit too high');
  });

  it('reports device loss and uncaught worker errors to onError listeners', async () => {
    let lose!: (m: string) => void;
    let reportError!: (m: string) => void;
    const w = new LoopbackWorker({
      gpu: () => gpuWith({}),
      missingReason: () => null,
      createRuntime: async (onError) => ((reportError = onError), fakeRuntime((l) => (lose = l))),
    });
    const client = new EngineClient(w);
    const seen: EngineError[] = [];
    client.onError((e) => seen.push(e));
    await client.probe();
    reportError('GPU device lost (unknown): gone');
    w.host.reportUnattached(new TypeError('boom'));
    lose('gone');
    await new Promise((r) => setTimeout(r, 0));
    expect(seen.map((e) => [e.message, e.remoteName, e.command])).toEqual([
      ['GPU device lost (unknown): gone', 'GpuError', null],
      ['boom', 'TypeError', null],
    ]);
  });

  it('answers malformed requests with a ProtocolError', async () => {
    const replies: EngineReply[] = [];
    const host = new EngineHost((r) => replies.push(r), {
      gpu: () => undefined,
      missingReason: () => 'none',
      createRuntime: async () => fakeRuntime(),
    });
    await host.receive({ id: 7, command: 'teleport' });
    await host.receive('hello');
    expect(replies).toEqual([
      { id: 7, type: 'error', command: null, error: { name: 'ProtocolError', message: 'malformed engine request: {"id":7,"command":"teleport"}' } },
      { id: null, type: 'error', command: null, error: { name: 'ProtocolError', message: 'malformed engine request: "hello"' } },
    ]);
  });

  it('rejects pending and later calls when the worker dies', async () => {
    const w = new LoopbackWorker({
      gpu: () => gpuWith({}),
      missingReason: () => null,
      createRuntime: () => new Promise(() => {}), // never answers
    });
    const client = new EngineClient(w);
    const pending = client.probe();
    w.dispatch('error', { message: 'SyntaxError: bad module', filename: 'engine.worker.ts', lineno: 3, preventDefault() {} });
    await expect(pending).rejects.toThrow(/the engine worker failed: SyntaxError: bad module \(engine.worker.ts:3\)/);
    await expect(client.selftest()).rejects.toThrow(/the engine worker failed/);
  });

  it('reports stray or unknown replies instead of dropping them', async () => {
    const w = new LoopbackWorker({ gpu: () => undefined, missingReason: () => 'x', createRuntime: async () => fakeRuntime() });
    const client = new EngineClient(w);
    const seen: string[] = [];
    client.onError((e) => seen.push(`${e.remoteName}: ${e.message}`));
    w.dispatch('message', { data: { id: 99, type: 'result', command: 'probe', result: {} } });
    w.dispatch('message', { data: { nonsense: true } });
    expect(seen).toEqual([
      'ProtocolError: the engine answered request 99, which is not pending',
      'ProtocolError: unexpected message from the engine worker: {"nonsense":true}',
    ]);
  });

  it('streams events to onEvent listeners while a request runs, and keeps error codes', async () => {
    const w = new LoopbackWorker({ gpu: () => undefined, missingReason: () => 'x', createRuntime: async () => fakeRuntime() });
    const client = new EngineClient(w);
    const seen: string[] = [];
    client.onEvent((e) => seen.push(e.kind));
    (await w.host.getSession())['deps'].emit({ kind: 'load-progress', done: 1, total: 2, name: 'a' });
    w.deliver({ id: null, type: 'event', event: { kind: 'token', requestId: 'g', text: 'hi' } });
    await new Promise((r) => setTimeout(r, 0));
    expect(seen).toEqual(['load-progress', 'token']);
    // a command that needs a model says so, by name, as an error reply
    const err = await client.call('prepareData', { spec: { kind: 'text', name: 'x', text: 'a' }, options: {} as never }).catch((e: unknown) => e);
    expect(err).toMatchObject({ remoteName: 'NoModel', command: 'prepareData' });
    expect((err as Error).message).toMatch(/Pick a model first/);
    // HubError codes travel with the error
    const cached = await client.call('inspectModel', { source: { kind: 'cache', repo: 'a/b' } }).catch((e: unknown) => e);
    expect((cached as Error).message).toMatch(/not in the cache/);
  });
});
