// Hub endpoint and access token, kept in the browser. The endpoint is remembered; the token is
// kept for this tab only (sessionStorage) unless the user asks to remember it on this device
// (localStorage). The token is only ever sent to the worker, which sends it as an Authorization
// header: never in a URL, a log line or an error message.

export interface HubSettings {
  endpoint: string;
  token: string;
  rememberToken: boolean;
}

const ENDPOINT_KEY = 'qlora-studio.hub.endpoint';
const TOKEN_KEY = 'qlora-studio.hub.token';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

function storage(kind: 'local' | 'session'): Storage | null {
  try {
    return kind === 'local' ? globalThis.localStorage ?? null : globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

export function readHubSettings(): HubSettings {
  const local = storage('local');
  const session = storage('session');
  const remembered = local?.getItem(TOKEN_KEY) ?? null;
  return {
    endpoint: local?.getItem(ENDPOINT_KEY) || DEFAULT_HUB_ENDPOINT,
    token: remembered ?? session?.getItem(TOKEN_KEY) ?? '',
    rememberToken: remembered !== null,
  };
}

export function saveHubSettings(s: HubSettings): void {
  const local = storage('local');
  const session = storage('session');
  try {
    if (s.endpoint && s.endpoint !== DEFAULT_HUB_ENDPOINT) local?.setItem(ENDPOINT_KEY, s.endpoint);
    else local?.removeItem(ENDPOINT_KEY);
    if (s.token && s.rememberToken) {
      local?.setItem(TOKEN_KEY, s.token);
      session?.removeItem(TOKEN_KEY);
    } else {
      local?.removeItem(TOKEN_KEY);
      if (s.token) session?.setItem(TOKEN_KEY, s.token);
      else session?.removeItem(TOKEN_KEY);
    }
  } catch {
    // storage disabled (private mode): the settings last for this visit
  }
}

/** An endpoint the user typed, checked: an http(s) URL without credentials or a query. */
export function endpointProblem(endpoint: string): string | null {
  if (!endpoint.trim()) return null;
  let u: URL;
  try {
    u = new URL(endpoint.trim());
  } catch {
    return 'Not a URL: use e.g. https://huggingface.co or a mirror.';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'Use an http:// or https:// address.';
  if (u.username || u.password) return 'Put the token in the token field, not in the address.';
  if (u.search || u.hash) return 'The address should not have a query (?…) or a fragment (#…).';
  return null;
}
