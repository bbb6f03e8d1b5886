import { useEffect } from 'react';
import { formatLoss } from '../../format.ts';
import { isRunActive } from '../../state/train.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';

/** Runs kept in this browser: finished ones, and unfinished ones a reopened tab can resume. */
export function RunsCard() {
  const runs = useStudio((s) => s.runs);
  const engine = useStudio((s) => s.engine);
  const current = useStudio((s) => s.run);
  const refresh = useStudio((s) => s.refreshRuns);
  const resume = useStudio((s) => s.resumeRun);
  const remove = useStudio((s) => s.deleteRun);
  const gpuReady = useStudio((s) => s.gpu.status === 'ready');
  const active = isRunActive(current);
  useEffect(() => {
    if (engine) void refresh();
  }, [engine, refresh]);
  if (runs.list.length === 0) return null;
  return (
    <Card title="Runs in this browser" testId="runs-card">
      <ul className="runs-list">
        {runs.list.map((r) => {
          const isCurrent = current?.runId === r.record.runId;
          const unfinished = !r.finished && r.step !== null;
          const when = new Date(r.record.created).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
          return (
            <li key={r.record.runId} className="run-row" data-testid={`run-${r.record.runId}`} data-finished={r.finished}>
              <span className="run-main">
                <span className="run-name">{r.record.label}</span>
                <span className="muted small">
                  {when} · {r.step ?? 0} / {r.totalSteps ?? r.record.train.maxSteps} steps
                  {r.evalLoss !== null ? ` · eval loss ${formatLoss(r.evalLoss)}` : ''}
                  {isCurrent && active ? ' · running now' : r.finished ? ' · finished' : unfinished ? ' · can resume' : ' · no checkpoint yet'}
                </span>
              </span>
              {unfinished && !(isCurrent && active) && (
                <button type="button" className="button button-small" disabled={active || !gpuReady} onClick={() => void resume(r.record.runId)} data-testid="resume-run">
                  Resume
                </button>
              )}
              <button type="button" className="button button-small button-quiet" disabled={isCurrent && active} aria-label={`Delete run ${r.record.label}`} onClick={() => void remove(r.record.runId)}>
                Delete
              </button>
            </li>
          );
        })}
      </ul>
      {runs.error && <p className="field-error">{runs.error}</p>}
    </Card>
  );
}
