// Errors people meet, in words: what happened (a short title), the engine's own explanation, and
// what kind it is so the panel can offer the right next step (resume, set a token, free space).

import { EngineError } from './engine-client.ts';

export type ErrorKind =
  | 'no-webgpu'
  | 'device-lost'
  | 'quota'
  | 'auth'
  | 'not-found'
  | 'download'
  | 'data'
  | 'unsupported'
  | 'memory'
  | 'cancelled'
  | 'other';

export interface ErrorInfo {
  kind: ErrorKind;
  title: string;
  message: string;
}

const TITLES: Record<ErrorKind, string> = {
  'no-webgpu': 'WebGPU is not available',
  'device-lost': 'The GPU was lost',
  quota: 'Browser storage is full',
  auth: 'The Hub refused access',
  'not-found': 'Not found on the Hub',
  download: 'The download failed',
  data: 'The data could not be used',
  unsupported: 'This model is not supported',
  memory: 'Out of GPU memory',
  cancelled: 'Paused',
  other: 'Something went wrong',
};

export function errorInfo(err: unknown, fallback: ErrorKind = 'other'): ErrorInfo {
  const message = err instanceof Error ? err.message : String(err);
  const name = err instanceof EngineError ? err.remoteName : err instanceof Error ? err.name : '';
  const code = err instanceof EngineError ? err.code : ((err as { code?: unknown })?.code as string | undefined);
  const kind = classify(name, code, message, fallback);
  return { kind, title: TITLES[kind], message: tidy(message) };
}

function classify(name: string, code: string | undefined, message: string, fallback: ErrorKind): ErrorKind {
  if (code === 'aborted') return 'cancelled';
  if (code === 'quota' || name === 'QuotaExceededError' || /not enough storage|storage is full|QuotaExceeded/i.test(message)) return 'quota';
  if (code === 'auth' || code === 'forbidden') return 'auth';
  if (code === 'not-found') return 'not-found';
  if (name === 'HubError' || code === 'network' || code === 'server' || code === 'rate-limited' || code === 'size' || code === 'checksum') return 'download';
  if (/device (was )?lost|GPU device lost/i.test(message)) return 'device-lost';
  if (/out of memory|OutOfMemory/i.test(message)) return 'memory';
  if (name === 'UnsupportedModel' || name === 'ConfigError' || name === 'WeightError') return 'unsupported';
  if (name === 'DataError' || name === 'TrainConfigError' || name === 'LoraConfigError') return 'data';
  if (/WebGPU/i.test(message) && /not (available|expose)/i.test(message)) return 'no-webgpu';
  return fallback;
}

/** The engine's message with a capital first letter and a full stop. */
function tidy(message: string): string {
  const m = message.trim();
  if (!m) return 'No details were given.';
  const first = m[0]!.toUpperCase() + m.slice(1);
  return /[.!?)]$/.test(first) ? first : `${first}.`;
}
