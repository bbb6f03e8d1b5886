import { VERDICT_LABELS, WEIGHT_FORMAT_LABELS, type MemoryEstimate } from '../../../llm/memory-estimate.ts';
import { formatBytes, formatParams } from '../../format.ts';
import { useShallow } from 'zustand/react/shallow';
import { useEstimate } from '../../hooks/useEstimate.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { ProgressBar } from '../ProgressBar.tsx';

const TONE = { fits: 'ok', paging: 'warn', 'too-large': 'bad' } as const;

/** The memory estimate for the selected model and settings, with a plain verdict and its numbers. */
export function MemoryCard() {
  const est = useEstimate();
  const s = useStudio(useShallow((st) => ({ r: st.lora.r, modules: st.lora.targetModules.length, batch: st.train.batchSize, seq: st.train.seqLen, budgetSet: st.budget !== null })));
  const setPanel = useStudio((st) => st.setPanel);
  const configState = useStudio((st) => (st.modelOrigin === 'hub' ? st.hubConfigs[st.hubRepo]?.status : undefined));
  return (
    <Card
      title="Memory"
      testId="memory-card"
      aside={
        est && (
          <span className={`verdict verdict-${TONE[est.verdict]}`} data-testid="verdict" data-verdict={est.verdict}>
            {VERDICT_LABELS[est.verdict]}
          </span>
        )
      }
    >
      {!est ? (
        <p className="muted">
          {configState === 'loading' ? 'Reading the model’s config.json…' : 'Pick a model to see how much GPU memory training it needs.'}
        </p>
      ) : (
        <>
          <p className="verdict-reason" data-testid="verdict-reason">
            {capital(est.reason)}.
          </p>
          <MemoryBar est={est} />
          <dl className="facts facts-num">
            <dt>Base weights ({est.base.format === 'fp32' ? 'f32' : WEIGHT_FORMAT_LABELS[est.base.format]})</dt>
            <dd>{formatBytes(est.base.total)}</dd>
            <dt>
              LoRA: {formatParams(est.training.loraParams)} parameters + gradients
            </dt>
            <dd>{formatBytes(est.training.params + est.training.grads)}</dd>
            <dt>AdamW moments (m, v)</dt>
            <dd>{formatBytes(est.training.adam)}</dd>
            <dt>
              Activations, {s.batch} × {s.seq} tokens
            </dt>
            <dd>{formatBytes(est.training.activations)}</dd>
            <dt>Scratch</dt>
            <dd>{formatBytes(est.training.scratch)}</dd>
            <dt className="facts-total">Total for a step</dt>
            <dd className="facts-total" data-testid="estimate-total" data-bytes={est.total}>
              {formatBytes(est.total)}
            </dd>
            <dt>GPU budget {s.budgetSet ? '(yours)' : '(default)'}</dt>
            <dd>{formatBytes(est.budget)}</dd>
            <dt>Largest buffer: {est.largestBuffer.what}</dt>
            <dd>
              {formatBytes(est.largestBuffer.bytes)}
              {est.limits.maxStorageBufferBindingSize ? <span className="muted"> of {formatBytes(est.limits.maxStorageBufferBindingSize)}</span> : null}
            </dd>
          </dl>
          <details className="disclosure">
            <summary>Base weights in other formats</summary>
            <table className="limits">
              <thead>
                <tr>
                  <th scope="col">Format</th>
                  <th scope="col" className="num">
                    Linear layers
                  </th>
                  <th scope="col" className="num">
                    Whole model
                  </th>
                </tr>
              </thead>
              <tbody>
                {est.weights.map((w) => (
                  <tr key={w.format}>
                    <th scope="row">
                      {WEIGHT_FORMAT_LABELS[w.format]}
                      {!w.engine && <span className="muted small"> (for comparison)</span>}
                    </th>
                    <td className="num">{formatBytes(w.linear)}</td>
                    <td className="num">{formatBytes(w.total)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
          <p className="muted small">
            At LoRA rank {s.r} on {s.modules} module{s.modules === 1 ? '' : 's'} per layer.{' '}
            <button type="button" className="link-button" onClick={() => setPanel('train')}>
              Change in Train
            </button>
          </p>
        </>
      )}
    </Card>
  );
}

function MemoryBar({ est }: { est: MemoryEstimate }) {
  const parts = [
    { key: 'base', bytes: est.base.total, label: 'weights' },
    { key: 'lora', bytes: est.training.params + est.training.grads, label: 'LoRA' },
    { key: 'adam', bytes: est.training.adam, label: 'AdamW' },
    { key: 'act', bytes: est.training.activations + est.training.scratch, label: 'activations' },
  ];
  const share = est.total / est.budget;
  return (
    <div className="membar">
      <div className="membar-track" aria-hidden="true">
        {parts.map((p) => (
          <div key={p.key} className={`membar-part membar-${p.key}`} style={{ width: `${(p.bytes / est.total) * 100}%` }} title={`${p.label}: ${formatBytes(p.bytes)}`} />
        ))}
      </div>
      <div className="membar-legend" aria-hidden="true">
        {parts.map((p) => (
          <span key={p.key}>
            <i className={`membar-swatch membar-${p.key}`} />
            {p.label}
          </span>
        ))}
      </div>
      <div className="membar-use">
        <ProgressBar value={Math.min(1, share)} label="Share of the GPU budget a step needs" tone={share > 1 ? (est.verdict === 'too-large' ? 'bad' : 'warn') : 'accent'} />
        <span className="muted small">{share < 0.001 ? '< 0.1' : (share * 100).toFixed(share < 0.1 ? 1 : 0)}% of the budget</span>
      </div>
    </div>
  );
}

function capital(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}
