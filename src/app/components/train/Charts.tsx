import { useMemo } from 'react';
import type uPlot from 'uplot';
import type { RunView } from '../../state/train.ts';
import { Chart, type ChartSeries } from './Chart.tsx';

const LOSS_SERIES: ChartSeries[] = [
  { label: 'train loss', color: '--chart-1' },
  { label: 'eval loss', color: '--chart-2', points: true, width: 1.5 },
];
const LR_SERIES: ChartSeries[] = [
  { label: 'learning rate', color: '--chart-3' },
  { label: 'grad norm', color: '--chart-4', scale: 'y2', width: 1.25 },
];

/** Train loss per step and eval loss where evaluated (step 0: before training). */
/** Every step either chart shows (eval at step 0 included), so both share their x axis. */
function useSteps(run: RunView | null): number[] {
  return useMemo(() => (run ? [...new Set([...run.points.map((p) => p.step), ...run.evals.map((e) => e.step)])].sort((a, b) => a - b) : []), [run?.points, run?.evals]);
}

export function LossChart({ run }: { run: RunView | null }) {
  const steps = useSteps(run);
  const data = useMemo<uPlot.AlignedData>(() => {
    if (!run) return [[], [], []];
    const loss = new Map(run.points.map((p) => [p.step, p.loss]));
    const ev = new Map(run.evals.map((e) => [e.step, e.loss]));
    return [steps, steps.map((s) => loss.get(s) ?? null), steps.map((s) => ev.get(s) ?? null)];
  }, [steps]);
  return (
    <div className="chart-box">
      <div className="chart-legend small">
        <span>
          <i className="swatch" style={{ background: 'var(--chart-1)' }} /> train loss
        </span>
        <span>
          <i className="swatch swatch-dot" style={{ background: 'var(--chart-2)' }} /> eval loss
        </span>
      </div>
      <Chart data={data} series={LOSS_SERIES} height={240} yLabel="loss" xLabel="step" testId="loss-chart" ariaLabel="Training and evaluation loss by step" empty="The loss curve draws here as the run trains." />
    </div>
  );
}

/** Learning rate (left axis) and gradient norm before clipping (right axis). */
export function LrChart({ run }: { run: RunView | null }) {
  const steps = useSteps(run);
  const data = useMemo<uPlot.AlignedData>(() => {
    const by = new Map((run?.points ?? []).map((p) => [p.step, p]));
    return [steps, steps.map((s) => by.get(s)?.lr ?? null), steps.map((s) => by.get(s)?.gradNorm ?? null)];
  }, [steps]);
  return (
    <div className="chart-box">
      <div className="chart-legend small">
        <span>
          <i className="swatch" style={{ background: 'var(--chart-3)' }} /> learning rate
        </span>
        <span>
          <i className="swatch" style={{ background: 'var(--chart-4)' }} /> grad norm
        </span>
      </div>
      <Chart data={data} series={LR_SERIES} height={140} yLabel="lr" y2Label="grad norm" testId="lr-chart" ariaLabel="Learning rate and gradient norm by step" empty="Learning rate and gradient norm per step." />
    </div>
  );
}
