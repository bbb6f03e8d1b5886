// The UI's handle on the engine worker: promise-returning calls over the protocol in
// src/worker/protocol.ts. Every request settles: with its result, with the worker's error, or
// with an EngineError when the worker dies. Errors not tied to a request go to `onError` listeners;
// progress events (load progress, training steps, generated tokens) go to `onEvent` listeners.

import {
  isEngineReply,
  type CommandArgs,
  type CommandName,
  type CommandResult,
  type EngineEvent,
  type EngineReply,
  type EngineRequest,
  type ProbeResult,
  type SelfTestArgs,
  type SelfTestResult,
  type SerializedError,
} from '../worker/protocol.ts';

/** What the store needs from the engine (the client, or a fake in tests). */
export interface EngineApi {
  probe(): Promise<ProbeResult>;
  selftest(args?: SelfTestArgs): Promise<SelfTestResult>;
  /** Any command of the protocol. */
  call<K extends CommandName>(command: K, args: CommandArgs<K>): Promise<CommandResult<K>>;
  onError(listener: (err: EngineError) => void): () => void;
  onEvent(listener: (event: EngineEvent) => void): () => void;
}

/** The part of a Worker the client uses. */
export interface WorkerLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message' | 'messageerror' | 'error', listener: (ev: Event) => void): void;
  terminate(): void;
}

export class EngineError extends Error {
  constructor(
    message: string,
    /** The error's name on the worker side (GpuError, RangeError, ProtocolError, ...). */
    readonly remoteName = 'Error',
    readonly command: CommandName | null = null,
    readonly remoteStack?: string,
    /** The worker-side error's code, when it has one (HubError: 'auth', 'quota', ...). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }

  static from(err: SerializedError, command: CommandName | null): EngineError {
    return new EngineError(err.message, err.name, command, err.stack, err.code);
  }
}

interface Pending {
  command: CommandName;
  resolve: (value: unknown) => void;
  reject: (err: EngineError) => void;
}

export class EngineClient implements EngineApi {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(err: EngineError) => void>();
  private readonly eventListeners = new Set<(event: EngineEvent) => void>();
  private dead: EngineError | null = null;

  /** Starts the engine worker (a module worker, bundled by Vite). */
  static create(): EngineClient {
    const worker = new Worker(new URL('../worker/engine.worker.ts', import.meta.url), {
      type: 'module',
      name: 'qlora-engine',
    });
    return new EngineClient(worker);
  }

  constructor(private readonly worker: WorkerLike) {
    worker.addEventListener('message', (ev) => this.receive((ev as MessageEvent).data));
    worker.addEventListener('messageerror', () =>
      this.emit(new EngineError('a message from the engine worker could not be decoded', 'ProtocolError')),
    );
    worker.addEventListener('error', (ev) => {
      // Reaches the page only when the worker failed to load or threw before its handlers ran.
      const e = ev as ErrorEvent;
      ev.preventDefault?.();
      const where = e.filename ? ` (${e.filename}:${e.lineno})` : '';
      this.fail(new EngineError(`the engine worker failed: ${e.message || 'it could not be started'}${where}`, 'WorkerError'));
    });
  }

  probe(): Promise<ProbeResult> {
    return this.call('probe', {});
  }

  selftest(args: SelfTestArgs = {}): Promise<SelfTestResult> {
    return this.call('selftest', args);
  }

  /** Sends one command; resolves with its result or rejects with an EngineError. */
  call<K extends CommandName>(command: K, args: CommandArgs<K>): Promise<CommandResult<K>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<CommandResult<K>>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      try {
        this.worker.postMessage({ id, command, args } as EngineRequest);
      } catch (err) {
        this.pending.delete(id);
        reject(new EngineError(`could not send "${command}" to the engine: ${String(err)}`, 'DataCloneError', command));
      }
    });
  }

  /** Listens for errors that belong to no request (device lost, a crash in the worker). */
  onError(listener: (err: EngineError) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Listens for progress events of running requests. */
  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  terminate(): void {
    this.worker.terminate();
    this.fail(new EngineError('the engine worker was stopped', 'Terminated'), false);
  }

  private receive(data: unknown): void {
    if (!isEngineReply(data)) {
      this.emit(new EngineError(`unexpected message from the engine worker: ${String(JSON.stringify(data)).slice(0, 200)}`, 'ProtocolError'));
      return;
    }
    const reply: EngineReply = data;
    if (reply.type === 'event') {
      for (const l of this.eventListeners) {
        try {
          l(reply.event);
        } catch (err) {
          console.error(err); // a broken listener must not stop the others
        }
      }
      return;
    }
    if (reply.id === null) {
      this.emit(EngineError.from(reply.error, null));
      return;
    }
    const p = this.pending.get(reply.id);
    if (!p) {
      this.emit(new EngineError(`the engine answered request ${reply.id}, which is not pending`, 'ProtocolError'));
      return;
    }
    this.pending.delete(reply.id);
    if (reply.type === 'result') p.resolve(reply.result);
    else p.reject(EngineError.from(reply.error, p.command));
  }

  /** The worker is gone: every pending and future call rejects with `err`. */
  private fail(err: EngineError, notify = true): void {
    this.dead ??= err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new EngineError(err.message, err.remoteName, p.command));
    if (notify && pending.length === 0) this.emit(err);
  }

  private emit(err: EngineError): void {
    if (this.listeners.size === 0) console.error(err); // never swallowed
    for (const l of this.listeners) l(err);
  }
}
