import { useState } from 'react';
import { approxDownloadBytes, CATALOG, catalogModel, isRepoId } from '../../catalog.ts';
import { formatBytes, formatParams } from '../../format.ts';
import { paramCounts } from '../../../llm/memory-estimate.ts';
import { useStudio } from '../../store.ts';

/** The curated list (plain or pre-quantized 4-bit), any repo id, and the Hub settings. */
export function HubModelPicker({ disabled }: { disabled: boolean }) {
  const repo = useStudio((s) => s.hubRepo);
  const select = useStudio((s) => s.selectHubRepo);
  const configs = useStudio((s) => s.hubConfigs);
  const cached = useStudio((s) => s.cache.models);
  const current = catalogModel(repo);
  const [bnb, setBnb] = useState(current?.bnb4bit ?? false);
  const [typed, setTyped] = useState(current ? '' : repo);
  const shown = CATALOG.filter((m) => m.bnb4bit === bnb);
  const typedState = typed && !catalogModel(typed) ? configs[typed.trim()] : undefined;
  const isCached = (r: string) => cached.some((c) => c.repo === r && c.complete);

  return (
    <div className="hub-picker">
      <div className="hub-list-head">
        <span className="muted small">Small instruct models that fit a browser tab</span>
        <label className="check small">
          <input type="checkbox" checked={bnb} disabled={disabled} onChange={(e) => setBnb(e.target.checked)} />
          pre-quantized 4-bit (unsloth)
        </label>
      </div>
      <div className="model-list" role="radiogroup" aria-label="Hub models">
        {shown.map((m) => {
          const checked = repo === m.repo;
          return (
            <label key={m.repo} className={`model-row${checked ? ' is-checked' : ''}`} data-testid={`catalog-${m.repo}`}>
              <input type="radio" name="hub-model" value={m.repo} checked={checked} disabled={disabled} onChange={() => (setTyped(''), select(m.repo))} />
              <span className="model-row-main">
                <span className="model-row-name">
                  {m.name}
                  {m.gated && <span className="tag tag-warn">token</span>}
                  {isCached(m.repo) && <span className="tag tag-ok">cached</span>}
                </span>
                <span className="model-row-repo">{m.repo}</span>
              </span>
              <span className="model-row-num" title="parameters">
                {formatParams(paramCounts(m.dims).total)}
              </span>
              <span className="model-row-num muted" title="about this much to download">
                ≈ {formatBytes(approxDownloadBytes(m))}
              </span>
            </label>
          );
        })}
      </div>
      <form
        className="repo-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (isRepoId(typed)) select(typed.trim());
        }}
      >
        <label className="field-label" htmlFor="repo-id">
          Or any Hub repo id
        </label>
        <div className="input-row">
          <input
            id="repo-id"
            className="input"
            placeholder="owner/model-name"
            value={typed}
            disabled={disabled}
            spellCheck={false}
            autoComplete="off"
            onChange={(e) => setTyped(e.target.value)}
            aria-describedby="repo-id-help"
          />
          <button type="submit" className="button" disabled={disabled || !isRepoId(typed)}>
            Use
          </button>
        </div>
        <p className={typedState?.status === 'error' ? 'field-error' : 'field-help'} id="repo-id-help">
          {typed && !isRepoId(typed)
            ? 'A repo id looks like owner/name.'
            : typedState?.status === 'loading'
              ? 'Reading config.json…'
              : typedState?.status === 'error'
                ? typedState.error?.message
                : typedState?.status === 'ready'
                  ? `${typedState.config!.modelType}, ${typedState.config!.dims.numLayers} layers${typedState.config!.prequantized ? ', bitsandbytes 4-bit' : ''}`
                  : 'Llama, Mistral and Qwen2 architectures in safetensors.'}
        </p>
      </form>
    </div>
  );
}
