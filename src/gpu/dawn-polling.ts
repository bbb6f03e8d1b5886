// Dawn's Node binding waits for GPU work (onSubmittedWorkDone, mapAsync) by calling
// wgpuInstanceProcessEvents from a native callback it re-queues with `setImmediate` for as long as a
// promise is pending: a busy loop that holds one CPU core for the whole wait. On a CPU adapter
// (SwiftShader) that core is one the shaders need: on 2 vCPUs a 32-workgroup dispatch took 1.6–1.8×
// as long with the loop spinning beside it (scratch measurement, BENCHMARKS.md "Waiting for the GPU").
//
// `throttleDawnPolling` wraps the global `setImmediate` once: native callbacks (Dawn's, and bound
// functions, which print the same; plain JavaScript callbacks are never touched) run immediately
// for the first SPIN_MS of a wait, so short waits stay short, and after that every POLL_MS with
// `setTimeout`, which lets the thread sleep between polls. node.ts installs it for CPU adapters
// only: on a real GPU the spaced-out polls cost more waiting than the spinning costs CPU.

const SPIN_MS = 2;
const POLL_MS = 1;
/** A native poll later than this after the previous one starts a new wait. */
const NEW_WAIT_MS = 5;

let installed = false;

/** Whether f is a native function (Dawn's poll callback), not JavaScript. */
function isNative(f: unknown): boolean {
  return typeof f === 'function' && Function.prototype.toString.call(f).endsWith('{ [native code] }');
}

/**
 * The polling policy on its own (tests): given the time of a native poll, whether to run it at
 * once (true) or after POLL_MS (false).
 */
export function pollPolicy(): (now: number) => boolean {
  let waitStart = -Infinity;
  let last = -Infinity;
  return (now) => {
    if (now - last > NEW_WAIT_MS) waitStart = now;
    last = now;
    return now - waitStart < SPIN_MS;
  };
}

/** Installs the throttled `setImmediate` (idempotent; Node only). */
export function throttleDawnPolling(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as { setImmediate: (f: (...a: unknown[]) => void, ...a: unknown[]) => unknown };
  const immediate = g.setImmediate;
  const timeout = globalThis.setTimeout;
  const spin = pollPolicy();
  g.setImmediate = (f, ...args) => {
    if (!isNative(f) || spin(performance.now())) return immediate(f, ...args);
    return timeout(f, POLL_MS, ...args);
  };
}
