// The engine side of the worker protocol, without the worker itself: decodes requests, runs
// them against one lazily created GpuRuntime, and posts exactly one reply per request.
// engine.worker.ts wires it to the worker's global scope; tests can drive it directly.

import type { GpuRuntime } from '../gpu/runtime.ts';
import {
  isCommandName,
  serializeError,
  type CommandName,
  type EngineCommands,
  type EngineReply,
  type ProbeResult,
} from './protocol.ts';
import { runSelfTest } from './selftest.ts';

export interface EngineHostDeps {
  /** The WebGPU entry point, or null/undefined when this context has none. */
  gpu: () => GPU | null | undefined;
  /** Why WebGPU is missing here (null when present). */
  missingReason: () => string | null;
  /** Creates the runtime; `onError` reports device loss and uncaptured GPU errors. */
  createRuntime: (onError: (message: string) => void) => Promise<GpuRuntime>;
}

export const NO_ADAPTER_REASON =
  'WebGPU is present but the browser offered no GPU adapter: the GPU may be blocklisted or WebGPU ' +
  'disabled. In Chrome or Edge, open chrome://gpu to see why; on Linux, start the browser with ' +
  '--enable-unsafe-webgpu --enable-features=Vulkan.';

type Handlers = { [K in CommandName]: (args: EngineCommands[K]['args']) => Promise<EngineCommands[K]['result']> };

export class EngineHost {
  private runtime: Promise<GpuRuntime> | null = null;
  private readonly handlers: Handlers;

  constructor(
    private readonly post: (reply: EngineReply) => void,
    private readonly deps: EngineHostDeps,
  ) {
    this.handlers = {
      probe: () => this.probe(),
      selftest: async (args) => runSelfTest(await this.getRuntime(), args ?? {}),
    };
  }

  /** Handles one incoming message; never throws, always replies. */
  async receive(data: unknown): Promise<void> {
    const msg = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
    const id = typeof msg.id === 'number' ? msg.id : null;
    const command = isCommandName(msg.command) ? msg.command : null;
    if (id === null || command === null) {
      const error = { name: 'ProtocolError', message: `malformed engine request: ${safeJson(data)}` };
      this.post(id === null ? { id: null, type: 'error', command: null, error } : { id, type: 'error', command, error });
      return;
    }
    try {
      const handler = this.handlers[command] as (args: unknown) => Promise<unknown>;
      const result = await handler(msg.args ?? {});
      this.post({ id, type: 'result', command, result } as EngineReply);
    } catch (err) {
      this.post({ id, type: 'error', command, error: serializeError(err) });
    }
  }

  /** Reports an error that belongs to no request (uncaught exception, device lost). */
  reportUnattached(err: unknown): void {
    this.post({ id: null, type: 'error', command: null, error: serializeError(err) });
  }

  private async probe(): Promise<ProbeResult> {
    const reason = this.deps.missingReason();
    const gpu = this.deps.gpu();
    if (reason || !gpu) return { available: false, cause: 'no-webgpu', reason: reason ?? 'WebGPU is not available here.' };
    if (!this.runtime) {
      // Ask for an adapter first, so "no adapter" is an answer rather than an error.
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return { available: false, cause: 'no-adapter', reason: NO_ADAPTER_REASON };
    }
    const rt = await this.getRuntime();
    return { available: true, adapter: rt.adapter };
  }

  private getRuntime(): Promise<GpuRuntime> {
    if (!this.runtime) {
      const pending = this.deps.createRuntime((message) => {
        this.post({ id: null, type: 'error', command: null, error: { name: 'GpuError', message } });
      });
      this.runtime = pending;
      pending.then(
        (rt) => void rt.lost.then(() => this.runtime === pending && (this.runtime = null)),
        () => this.runtime === pending && (this.runtime = null),
      );
    }
    return this.runtime;
  }
}

function safeJson(x: unknown): string {
  try {
    const s = JSON.stringify(x);
    return s === undefined ? String(x) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(x);
  }
}
