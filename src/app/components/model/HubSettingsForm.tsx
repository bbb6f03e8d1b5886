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
      <EndpointField
        label="Endpoint"
        help={`Default ${DEFAULT_HUB_ENDPOINT}; a mirror or a local test Hub works too.`}
        value={endpoint}
        problem={problem}
        testId="hub-endpoint"
        onChange={setEndpoint}
        onSave={saveEndpoint}
      />
      <EndpointField
        label="Dataset viewer endpoint"
        help={`Where Hub datasets’ rows are read from (the datasets-server API). Default ${DEFAULT_DATASETS_ENDPOINT}; the token is sent to it too.`}
        value={datasetsEndpoint}
        problem={datasetsProblem}
        testId="datasets-endpoint"
        onChange={setDatasetsEndpoint}
        onSave={saveDatasetsEndpoint}
      />
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

/** A URL setting: edited freely, checked as typed (`problem`), saved on blur when valid. */
function EndpointField(props: {
  label: string;
  help: string;
  value: string;
  problem: string | null;
  testId: string;
  onChange: (value: string) => void;
  onSave: () => void;
}) {
  return (
    <Field label={props.label} help={props.help} error={props.problem}>
      {({ id, describedBy }) => (
        <input
          id={id}
          className="input"
          value={props.value}
          spellCheck={false}
          autoComplete="off"
          aria-describedby={describedBy}
          data-testid={props.testId}
          onChange={(e) => props.onChange(e.target.value)}
          onBlur={props.onSave}
        />
      )}
    </Field>
  );
}
