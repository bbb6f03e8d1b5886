import { useState } from 'react';
import { DEFAULT_DATASETS_ENDPOINT, DEFAULT_HUB_ENDPOINT, datasetsEndpointProblem, endpointProblem } from '../../hub-settings.ts';
import { useStudio } from '../../store.ts';
import { Field } from '../Field.tsx';

/**
 * Endpoint (a mirror or a local test Hub), the dataset viewer endpoint that Hub datasets' rows come
 * from, and the token; the token is never shown back.
 */
export function HubSettingsForm() {
  const hub = useStudio((s) => s.hub);
  const save = useStudio((s) => s.setHubSettings);
  const [endpoint, setEndpoint] = useState(hub.endpoint);
  const [token, setToken] = useState('');
  const [datasetsEndpoint, setDatasetsEndpoint] = useState(hub.datasetsEndpoint);
  const problem = endpointProblem(endpoint);
  const datasetsProblem = datasetsEndpointProblem(datasetsEndpoint);
  const saveEndpoint = () => !problem && save({ endpoint: endpoint.trim() || DEFAULT_HUB_ENDPOINT });
  const saveDatasetsEndpoint = () => !datasetsProblem && save({ datasetsEndpoint: datasetsEndpoint.trim() || DEFAULT_DATASETS_ENDPOINT });
  return (
    <form
      className="hub-settings"
      autoComplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        saveEndpoint();
        saveDatasetsEndpoint();
      }}
    >
      <Field label="Endpoint" help={`Default ${DEFAULT_HUB_ENDPOINT}; a mirror or a local test Hub works too.`} error={problem}>
        {({ id, describedBy }) => (
          <input
            id={id}
            className="input"
            value={endpoint}
            spellCheck={false}
            autoComplete="off"
            aria-describedby={describedBy}
            data-testid="hub-endpoint"
            onChange={(e) => setEndpoint(e.target.value)}
            onBlur={saveEndpoint}
          />
        )}
      </Field>
      <Field
        label="Dataset viewer endpoint"
        help={`Where Hub datasets’ rows are read from (the datasets-server API). Default ${DEFAULT_DATASETS_ENDPOINT}; the token is sent to it too.`}
        error={datasetsProblem}
      >
        {({ id, describedBy }) => (
          <input
            id={id}
            className="input"
            value={datasetsEndpoint}
            spellCheck={false}
            autoComplete="off"
            aria-describedby={describedBy}
            data-testid="datasets-endpoint"
            onChange={(e) => setDatasetsEndpoint(e.target.value)}
            onBlur={saveDatasetsEndpoint}
          />
        )}
      </Field>
      <Field
        label="Access token"
        help={hub.token ? `A token is set${hub.rememberToken ? ' and remembered on this device' : ' for this tab'}. It is sent only as a header, to the endpoints above.` : 'For gated or private models and datasets. Sent only as a header, never in a URL or a log.'}
      >
        {({ id, describedBy }) => (
          <div className="input-row">
            <input
              id={id}
              className="input"
              type="password"
              value={token}
              placeholder={hub.token ? '•••••••• (set)' : 'hf_…'}
              autoComplete="off"
              spellCheck={false}
              aria-describedby={describedBy}
              onChange={(e) => setToken(e.target.value)}
            />
            <button type="button" className="button" disabled={!token.trim()} onClick={() => (save({ token: token.trim() }), setToken(''))}>
              Save
            </button>
            {hub.token && (
              <button type="button" className="button button-quiet" onClick={() => save({ token: '' })}>
                Clear
              </button>
            )}
          </div>
        )}
      </Field>
      <label className="check small">
        <input type="checkbox" checked={hub.rememberToken} onChange={(e) => save({ rememberToken: e.target.checked })} />
        Remember the token on this device
      </label>
    </form>
  );
}
