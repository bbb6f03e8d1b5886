import { formatCount, formatMs, formatPercent } from '../../format.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { ErrorCallout } from '../ErrorCallout.tsx';
import { Histogram } from './Histogram.tsx';

export function DataStatsCard() {
  const data = useStudio((s) => s.data);
  const modelReady = useStudio((s) => s.load.status === 'ready');
  const setPanel = useStudio((s) => s.setPanel);
  const summary = data.summary;
  const st = summary?.stats;
  const dropped = st ? Object.entries(st.dropped) : [];
  const droppedTotal = dropped.reduce((n, [, v]) => n + v, 0);
  return (
    <Card
      title="Statistics"
      testId="data-stats"
      aside={data.status === 'preparing' ? <span className="muted small">Preparing…</span> : summary ? <span className="muted small">{formatMs(summary.ms)}</span> : undefined}
    >
      {!modelReady && (
        <p className="muted">
          The model’s tokenizer and chat template shape the data: <button type="button" className="link-button" onClick={() => setPanel('model')}>load a model</button> first.
        </p>
      )}
      {data.error && <ErrorCallout error={data.error} testId="data-error" />}
      {st && (
        <div className={data.status === 'preparing' ? 'is-stale' : ''}>
          <dl className="facts facts-num" data-testid="data-facts">
            <dt>Rows read</dt>
            <dd data-testid="data-rows">{formatCount(st.rows)}</dd>
            <dt>Examples</dt>
            <dd>
              {formatCount(st.train.examples)} train · {formatCount(st.eval.examples)} eval
            </dd>
            <dt>Skipped rows</dt>
            <dd data-testid="data-skipped">{formatCount(st.skipped.total)}</dd>
            <dt>Tokens</dt>
            <dd>
              {formatCount(st.tokens)} ({formatPercent(st.tokens ? st.trainedTokens / st.tokens : 0)} trained)
            </dd>
            <dt>Length</dt>
            <dd>
              median {st.lengths.p50}, p95 {st.lengths.p95}, max {st.lengths.max}
            </dd>
            <dt>&gt; {st.maxLength} tokens</dt>
            <dd>{droppedTotal ? `${droppedTotal} dropped` : st.truncated ? `${st.truncated} truncated` : st.split ? `${st.split} split` : 'none'}</dd>
            <dt>Template</dt>
            <dd>{st.template}</dd>
          </dl>
          {(st.skipped.total > 0 || droppedTotal > 0) && (
            <details className="disclosure" open={st.skipped.total > 0 && st.skipped.total <= 5}>
              <summary>Why rows were left out</summary>
              <ul className="reasons">
                {Object.entries(st.skipped.byReason).map(([k, v]) => (
                  <li key={k}>
                    <strong>{v}</strong> {k}
                  </li>
                ))}
                {dropped.map(([k, v]) => (
                  <li key={k}>
                    <strong>{v}</strong> {k}
                  </li>
                ))}
                {st.skipped.samples.slice(0, 5).map((x, i) => (
                  <li key={i} className="muted small">
                    {x.where}: {x.reason}
                  </li>
                ))}
              </ul>
            </details>
          )}
          <Histogram h={st.histogram} maxLength={st.maxLength} />
        </div>
      )}
      {!st && modelReady && !data.error && <p className="muted">{data.status === 'preparing' ? 'Reading, templating and tokenizing…' : 'Choose data to see its statistics.'}</p>}
    </Card>
  );
}
