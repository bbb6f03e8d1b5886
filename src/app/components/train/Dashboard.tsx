import { formatBytes } from '../../format.ts';
import { gpuBudget } from '../../state/train.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { ErrorCallout } from '../ErrorCallout.tsx';
import { LossChart, LrChart } from './Charts.tsx';
import { Metrics } from './Metrics.tsx';
import { RunControls } from './RunControls.tsx';

export function Dashboard() {
  const run = useStudio((s) => s.run);
  const budget = useStudio(gpuBudget);
  const resumeRun = useStudio((s) => s.resumeRun);
  const refreshRuns = useStudio((s) => s.refreshRuns);
  return (
    <Card
      title="Run"
      testId="dashboard"
      aside={run ? <span className="muted small run-label" title={run.runId}>{run.label}</span> : undefined}
    >
      <RunControls />
      {run?.error && (
        <ErrorCallout error={run.error} testId="run-error">
          {run.checkpoint || run.resumedFrom !== null || run.error.kind === 'device-lost' ? (
            <button
              type="button"
              className="button"
              onClick={async () => {
                await refreshRuns();
                await resumeRun(run.runId);
              }}
            >
              Resume from the last checkpoint{run.checkpoint ? ` (step ${run.checkpoint.step})` : ''}
            </button>
          ) : null}
        </ErrorCallout>
      )}
      <Metrics run={run} budget={budget} />
      <div className="charts">
        <LossChart run={run} />
        <LrChart run={run} />
      </div>
      <p className="muted small run-foot" data-testid="run-foot">
        {run?.resumedFrom ? `Resumed from the checkpoint at step ${run.resumedFrom}. ` : ''}
        {run?.checkpoint ? `Last checkpoint at step ${run.checkpoint.step} (${formatBytes(run.checkpoint.bytes)}), kept in this browser.` : 'Checkpoints are kept in this browser: a closed tab can resume.'}
      </p>
    </Card>
  );
}
