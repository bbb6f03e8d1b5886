import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { effectiveTheme, useStudio } from '../../store.ts';

/** Tick labels that stay readable for learning rates (3e-4) as well as losses (2.5). */
function tickFormat(_u: uPlot, splits: number[]): string[] {
  const max = Math.max(...splits.map((v) => Math.abs(v)));
  return splits.map((v) => (v === 0 ? '0' : max < 0.01 ? v.toExponential(0) : String(Number(v.toPrecision(3)))));
}

export interface ChartSeries {
  label: string;
  /** CSS variable of the colour, e.g. '--chart-1'. */
  color: string;
  scale?: string;
  points?: boolean;
  dash?: number[];
  width?: number;
}

/**
 * A uPlot line chart of fixed height that fills its container's width. The chart is made once
 * (and again when the theme or the series change); new data only calls setData, so a step never
 * re-lays out the page.
 */
export function Chart({
  data,
  series,
  height,
  yLabel,
  y2Label,
  xLabel = '',
  testId,
  ariaLabel,
  logY2 = false,
  empty,
}: {
  data: uPlot.AlignedData;
  series: ChartSeries[];
  height: number;
  yLabel: string;
  y2Label?: string;
  xLabel?: string;
  testId?: string;
  ariaLabel: string;
  logY2?: boolean;
  /** Shown over the chart while it has no points. */
  empty?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const dataRef = useRef(data);
  dataRef.current = data;
  const theme = useStudio(effectiveTheme);
  const key = JSON.stringify(series) + yLabel + (y2Label ?? '') + logY2;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const css = getComputedStyle(document.documentElement);
    const v = (name: string) => css.getPropertyValue(name).trim() || '#888';
    // uPlot merges options with Object.assign: a key set to undefined would erase its default.
    const axis = (label: string, scale: string, side: 1 | 2 | 3, values?: uPlot.Axis['values']): uPlot.Axis => ({
      ...(label ? { label } : {}),
      scale,
      side,
      ...(values ? { values } : {}),
      // steps are whole numbers
      ...(scale === 'x' ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000], values: (_u: uPlot, v: number[]) => v.map(String) } : {}),
      stroke: v('--muted'),
      grid: { stroke: v('--chart-grid'), width: 1, show: side !== 1 },
      ticks: { stroke: v('--chart-grid'), width: 1 },
      font: '12px system-ui, sans-serif',
      labelFont: '12px system-ui, sans-serif',
      size: side === 2 ? 26 : 48,
      labelSize: label ? (side === 2 ? 16 : 18) : 0,
      gap: 4,
    });
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: false },
      // Without a right axis, leave its room empty so stacked charts share their x positions.
      padding: [10, y2Label ? 4 : 70, 0, 0],
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { x: { time: false }, ...(logY2 ? { y2: { distr: 3 } } : {}) },
      axes: [axis(xLabel, 'x', 2), axis(yLabel, 'y', 3, tickFormat), ...(y2Label ? [axis(y2Label, 'y2', 1, tickFormat)] : [])],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          scale: s.scale ?? 'y',
          stroke: v(s.color),
          width: s.width ?? 1.75,
          ...(s.dash ? { dash: s.dash } : {}),
          spanGaps: true,
          points: { show: s.points ?? false, size: 5, stroke: v(s.color), fill: v('--surface') },
        })),
      ],
    };
    const u = new uPlot(opts, dataRef.current, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [key, theme, height, xLabel, yLabel, y2Label, logY2]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  const points = (data[0]?.length ?? 0) as number;
  return (
    <div className="chart-frame" style={{ height }}>
      <div ref={host} className="chart" style={{ height }} role="img" aria-label={ariaLabel} data-testid={testId} data-points={points} />
      {points === 0 && empty && <p className="chart-empty muted small">{empty}</p>}
    </div>
  );
}
