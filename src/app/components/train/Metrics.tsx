import type { ReactNode } from 'react';
import { formatBytes, formatDuration, formatLoss, formatLr } from '../../format.ts';
import type { RunView } from '../../state/train.ts';
import { ProgressBar } from '../ProgressBar.tsx';

/** The run's numbers in fixed-size tiles (tabular digits, so nothing moves as they change). */
export function Metrics({ run, budget }: { run: RunView | null; budget: number }) {
  const last = run?.last ?? null;
  const total = run?.totalSteps ?? null;
  const step = last?.step ?? run?.resumedFrom ?? 0;
  const stepsHere = last ? last.step - (run?.resumedFrom ?? 0) : 0;
  const eta = last && total && stepsHere > 0 ? ((total - last.step) * last.elapsedMs) / stepsHere / 1000 : null;
  const lastEval = run?.evals.length ? run.evals[run.evals.length - 1]! : null;
  const mem = last?.memory.live ?? null;
  const paging = last?.paging;
  const runBudget = run?.budget ?? budget;
  return (
    <div className="metrics" data-testid="metrics">
      <Tile label="Step" testId="metric-step">
        {total ? `${step} / ${total}` : step ? String(step) : '—'}
      </Tile>
      <Tile label="Loss" testId="metric-loss">
        {formatLoss(last?.loss)}
      </Tile>
      <Tile label={lastEval ? `Eval loss (step ${lastEval.step})` : 'Eval loss'} testId="metric-eval">
        {formatLoss(lastEval?.loss)}
      </Tile>
      <Tile label="Learning rate">{formatLr(last?.lr)}</Tile>
      <Tile label="Grad norm">{last ? last.gradNorm.toFixed(3) : '—'}</Tile>
      <Tile label="Tokens / s" testId="metric-tps">
        {last ? last.tokensPerSecond.toFixed(last.tokensPerSecond < 100 ? 1 : 0) : '—'}
      </Tile>
      <Tile label="Time left">{run && ['done', 'stopped'].includes(run.state) ? 'finished' : formatDuration(eta)}</Tile>
      <Tile label="GPU memory" testId="metric-memory" wide>
        <span>
          {mem !== null ? formatBytes(mem) : '—'} <span className="muted">of {formatBytes(runBudget)}</span>
        </span>
        <ProgressBar value={mem !== null ? mem / runBudget : 0} label="GPU memory in use of the budget" tone={mem !== null && mem > runBudget ? 'bad' : 'accent'} />
      </Tile>
      <Tile label="AdamW paging in · out">
        {run?.optimizerBudget ? (
          paging ? (
            <span>
              {formatBytes(paging.bytesIn)} · {formatBytes(paging.bytesOut)}
            </span>
          ) : (
            <span>on, {formatBytes(run.optimizerBudget)} on GPU</span>
          )
        ) : (
          <span className="muted">off</span>
        )}
      </Tile>
    </div>
  );
}

function Tile({ label, children, wide = false, testId }: { label: string; children: ReactNode; wide?: boolean; testId?: string }) {
  return (
    <div className={`tile${wide ? ' tile-wide' : ''}`}>
      <span className="tile-label">{label}</span>
      <span className="tile-value" data-testid={testId}>
        {children}
      </span>
    </div>
  );
}
