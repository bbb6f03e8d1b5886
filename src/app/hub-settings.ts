// Hub endpoint, dataset viewer endpoint and access token, kept in the browser. The endpoints are
// remembered (when not the default); the token is kept for this tab only (sessionStorage) unless the
// user asks to remember it on this device (localStorage). The token is only ever sent to the worker,
// which sends it as an Authorization header (to the Hub, and to the dataset viewer for Hub
// datasets): never in a URL, a log line or an error message.

import { DEFAULT_HF_ENDPOINT } from '../data/hf.ts';

export interface HubSettings {
  endpoint: string;
  /** The datasets-server (dataset viewer) API that Hub datasets' rows are read from. */
  datasetsEndpoint: string;
  token: string;
  rememberToken: boolean;
}

const ENDPOINT_KEY = 'qlora-studio.hub.endpoint';
const DATASETS_ENDPOINT_KEY = 'qlora-studio.hub.datasets-endpoint';
const TOKEN_KEY = 'qlora-studio.hub.token';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_DATASETS_ENDPOINT = DEFAULT_HF_ENDPOINT;

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
    datasetsEndpoint: local?.getItem(DATASETS_ENDPOINT_KEY) || DEFAULT_DATASETS_ENDPOINT,
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
    if (s.datasetsEndpoint && s.datasetsEndpoint !== DEFAULT_DATASETS_ENDPOINT) local?.setItem(DATASETS_ENDPOINT_KEY, s.datasetsEndpoint);
    else local?.removeItem(DATASETS_ENDPOINT_KEY);
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

type AddressProblem = 'url' | 'protocol' | 'credentials' | 'query';

function addressProblem(endpoint: string): AddressProblem | null {
  if (!endpoint.trim()) return null;
  let u: URL;
  try {
    u = new URL(endpoint.trim());
  } catch {
    return 'url';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'protocol';
  if (u.username || u.password) return 'credentials';
  if (u.search || u.hash) return 'query';
  return null;
}

/** An endpoint the user typed, checked: an http(s) URL without credentials or a query. */
export function endpointProblem(endpoint: string): string | null {
  switch (addressProblem(endpoint)) {
    case null:
      return null;
    case 'url':
      return 'Not a URL: use e.g. https://huggingface.co or a mirror.';
    case 'protocol':
      return 'Use an http:// or https:// address.';
    case 'credentials':
      return 'Put the token in the token field, not in the address.';
    case 'query':
      return 'The address should not have a query (?…) or a fragment (#…).';
  }
}

/** The dataset viewer endpoint the user typed, checked like the Hub's; the message names the field. */
export function datasetsEndpointProblem(endpoint: string): string | null {
  const field = 'The dataset viewer endpoint';
  switch (addressProblem(endpoint)) {
    case null:
      return null;
    case 'url':
      return `${field} is not a URL: use e.g. ${DEFAULT_DATASETS_ENDPOINT} or a local datasets server.`;
    case 'protocol':
      return `${field} must be an http:// or https:// address.`;
    case 'credentials':
      return `Put the token in the token field, not in the dataset viewer endpoint.`;
    case 'query':
      return `${field} should not have a query (?…) or a fragment (#…).`;
  }
}

/** The dataset viewer endpoint as the engine takes it: absent for the default. */
export function datasetsEndpointFor(settings: Pick<HubSettings, 'datasetsEndpoint'>): string | undefined {
  const e = settings.datasetsEndpoint.trim().replace(/\/+$/, '');
  return e && e !== DEFAULT_DATASETS_ENDPOINT ? e : undefined;
}
