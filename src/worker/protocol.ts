// The typed message protocol between the studio (UI thread) and the engine worker.
//
//   UI → worker: EngineRequest   { id, command, args }
//   worker → UI: EngineReply     { id, type: 'result', command, result }   answers request `id`
//                                { id, type: 'error', command, error }     request `id` failed
//                                { id: null, type: 'error', error }        an error not tied to a
//                                                                          request (device lost,
//                                                                          uncaught exception)
// Every request gets exactly one reply; errors always come back as messages, never swallowed.
// Add a command by adding an entry to `EngineCommands` and a handler in engine-host.ts.

import type { AdapterReport } from '../gpu/runtime.ts';

/** Why the engine has no GPU: no WebGPU API in the worker, or an API with no adapter. */
export type ProbeResult =
  | { available: true; adapter: AdapterReport }
  | { available: false; cause: 'no-webgpu' | 'no-adapter'; reason: string };

export interface SelfTestArgs {
  /** Element count (default 100003: not a multiple of the workgroup size). */
  n?: number;
  /** mulberry32 seed of the random input (default 1234). */
  seed?: number;
  /** The `a` of y = a*x + y (default 0.75). */
  a?: number;
}

export interface SelfTestResult {
  n: number;
  seed: number;
  a: number;
  /** max |gpu - cpu| over all elements. */
  maxAbsError: number;
  /** Elements whose error is above `tolerance`. */
  mismatches: number;
  tolerance: number;
  /** Wall time of upload + kernel + readback, in milliseconds. */
  ms: number;
}

/** Command name → its arguments and its result. */
export interface EngineCommands {
  probe: { args: Record<string, never>; result: ProbeResult };
  selftest: { args: SelfTestArgs; result: SelfTestResult };
}

export type CommandName = keyof EngineCommands;
export type CommandArgs<K extends CommandName> = EngineCommands[K]['args'];
export type CommandResult<K extends CommandName> = EngineCommands[K]['result'];

export type EngineRequest<K extends CommandName = CommandName> = K extends CommandName
  ? { id: number; command: K; args: CommandArgs<K> }
  : never;

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

export type ResultReply<K extends CommandName = CommandName> = K extends CommandName
  ? { id: number; type: 'result'; command: K; result: CommandResult<K> }
  : never;

export type ErrorReply =
  | { id: number; type: 'error'; command: CommandName | null; error: SerializedError }
  | { id: null; type: 'error'; command: null; error: SerializedError };

export type EngineReply = ResultReply | ErrorReply;

export const COMMANDS: readonly CommandName[] = ['probe', 'selftest'];

export function isCommandName(x: unknown): x is CommandName {
  return typeof x === 'string' && (COMMANDS as readonly string[]).includes(x);
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: 'Error', message: typeof err === 'string' ? err : String(err) };
}

/** A structurally valid reply from the worker (anything else is a protocol bug, reported as such). */
export function isEngineReply(x: unknown): x is EngineReply {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  if (m.type === 'result') return typeof m.id === 'number' && isCommandName(m.command);
  if (m.type === 'error') {
    const e = m.error as Record<string, unknown> | null | undefined;
    return (typeof m.id === 'number' || m.id === null) && typeof e?.message === 'string';
  }
  return false;
}
