// Hub access settings: the dataset viewer endpoint beside the Hub endpoint — checked with messages that
// name the field, remembered in localStorage only when not the default, and passed to the engine with
// Hub datasets (but never into demo links or model cards, which name the dataset only).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_DATASETS_ENDPOINT,
  DEFAULT_HUB_ENDPOINT,
  datasetsEndpointFor,
  datasetsEndpointProblem,
  endpointProblem,
  readHubSettings,
  saveHubSettings,
} from './hub-settings.ts';
import { dataKey, dataSpec } from './state/data.ts';
import { currentDatasetRef, trainingRecord } from './state/playground.ts';
import { createStudioStore } from './store.ts';

/** A Storage backed by a Map (Node has no localStorage/sessionStorage). */
function memoryStorage(): Storage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    get length() {
      return map.size;
    },
    clear: () => map.clear(),
    getItem: (k) => map.get(k) ?? null,
    key: (i) => [...map.keys()][i] ?? null,
    removeItem: (k) => void map.delete(k),
    setItem: (k, v) => void map.set(k, String(v)),
  };
}

let local: ReturnType<typeof memoryStorage>;
let session: ReturnType<typeof memoryStorage>;

beforeEach(() => {
  local = memoryStorage();
  session = memoryStorage();
  vi.stubGlobal('localStorage', local);
  vi.stubGlobal('sessionStorage', session);
});
afterEach(() => vi.unstubAllGlobals());

describe('dataset viewer endpoint', () => {
  it('defaults to the public datasets server', () => {
    expect(DEFAULT_DATASETS_ENDPOINT).toBe('https://datasets-server.huggingface.co');
    expect(readHubSettings()).toEqual({ endpoint: DEFAULT_HUB_ENDPOINT, datasetsEndpoint: DEFAULT_DATASETS_ENDPOINT, token: '', rememberToken: false });
  });

  it('is remembered on this device when not the default, and forgotten when set back', () => {
    saveHubSettings({ endpoint: DEFAULT_HUB_ENDPOINT, datasetsEndpoint: 'http://127.0.0.1:8123', token: 'hf_x', rememberToken: false });
    expect(local.map.get('qlora-studio.hub.datasets-endpoint')).toBe('http://127.0.0.1:8123');
    expect(local.map.has('qlora-studio.hub.endpoint')).toBe(false);
    expect([...local.map.values()].join()).not.toContain('hf_x'); // the token stays in this tab
    expect(readHubSettings()).toMatchObject({ endpoint: DEFAULT_HUB_ENDPOINT, datasetsEndpoint: 'http://127.0.0.1:8123', token: 'hf_x' });

    saveHubSettings({ ...readHubSettings(), datasetsEndpoint: DEFAULT_DATASETS_ENDPOINT });
    expect(local.map.has('qlora-studio.hub.datasets-endpoint')).toBe(false);
    expect(readHubSettings().datasetsEndpoint).toBe(DEFAULT_DATASETS_ENDPOINT);
  });

  it('the store reads it at start and saves it through setHubSettings', () => {
    local.setItem('qlora-studio.hub.datasets-endpoint', 'https://viewer.example.org/api');
    const store = createStudioStore();
    expect(store.getState().hub.datasetsEndpoint).toBe('https://viewer.example.org/api');
    store.getState().setHubSettings({ datasetsEndpoint: 'http://localhost:9000' });
    expect(local.getItem('qlora-studio.hub.datasets-endpoint')).toBe('http://localhost:9000');
    expect(createStudioStore().getState().hub.datasetsEndpoint).toBe('http://localhost:9000');
  });

  it('is checked with messages that name the field', () => {
    expect(datasetsEndpointProblem(DEFAULT_DATASETS_ENDPOINT)).toBeNull();
    expect(datasetsEndpointProblem('http://127.0.0.1:8123/')).toBeNull();
    expect(datasetsEndpointProblem('')).toBeNull(); // blank: back to the default
    expect(datasetsEndpointProblem('datasets-server.huggingface.co')).toBe(
      'The dataset viewer endpoint is not a URL: use e.g. https://datasets-server.huggingface.co or a local datasets server.',
    );
    expect(datasetsEndpointProblem('ftp://x')).toBe('The dataset viewer endpoint must be an http:// or https:// address.');
    expect(datasetsEndpointProblem('https://me:hf_x@example.org')).toMatch(/token field, not in the dataset viewer endpoint/);
    expect(datasetsEndpointProblem('https://example.org/?dataset=x')).toMatch(/^The dataset viewer endpoint should not have a query/);
    // The Hub endpoint's messages are unchanged.
    expect(endpointProblem('hf.co')).toMatch(/^Not a URL/);
  });

  it('goes to the engine only when not the default', () => {
    expect(datasetsEndpointFor({ datasetsEndpoint: DEFAULT_DATASETS_ENDPOINT })).toBeUndefined();
    expect(datasetsEndpointFor({ datasetsEndpoint: `${DEFAULT_DATASETS_ENDPOINT}/` })).toBeUndefined();
    expect(datasetsEndpointFor({ datasetsEndpoint: 'http://127.0.0.1:8123/' })).toBe('http://127.0.0.1:8123');
  });
});

describe('Hub datasets in the data spec', () => {
  function hfStore(datasetsEndpoint?: string) {
    const store = createStudioStore();
    if (datasetsEndpoint) store.getState().setHubSettings({ datasetsEndpoint });
    store.getState().setDataChoice('hf');
    store.getState().setHfDataset({ dataset: ' test/kite-chat ', split: 'train' });
    return store;
  }

  it('carries a custom dataset viewer endpoint (and the token), none for the default', () => {
    const plain = hfStore(); // before the custom one, which remembers its endpoint in localStorage
    const custom = hfStore('http://127.0.0.1:8123');
    custom.getState().setHubSettings({ token: 'hf_secret' });
    expect(dataSpec(custom.getState())).toEqual({ kind: 'hf', dataset: 'test/kite-chat', split: 'train', config: undefined, endpoint: 'http://127.0.0.1:8123', token: 'hf_secret' });
    expect(dataSpec(plain.getState())).not.toHaveProperty('endpoint');
    // Another server is other data: the prepared preview is stale when the endpoint changes.
    expect(dataKey(custom.getState())).not.toBe(dataKey(plain.getState()));
    expect(dataKey(custom.getState())).not.toContain('hf_secret');
  });

  it('demo links and model cards name the dataset only, never the endpoint', () => {
    const s = hfStore('http://127.0.0.1:8123').getState();
    expect(currentDatasetRef(s)).toEqual({ hub: ' test/kite-chat ', split: 'train' });
    expect(JSON.stringify(trainingRecord(s))).not.toContain('127.0.0.1');
  });
});
