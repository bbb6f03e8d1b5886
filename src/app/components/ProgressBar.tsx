/** A determinate bar (value in [0, 1]) or, with value null, an indeterminate one. */
export function ProgressBar({ value, label, tone = 'accent', testId }: { value: number | null; label: string; tone?: 'accent' | 'warn' | 'bad'; testId?: string }) {
  const pct = value === null ? null : Math.max(0, Math.min(1, value)) * 100;
  return (
    <div
      className={`progress progress-${tone}${pct === null ? ' progress-indeterminate' : ''}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct === null ? undefined : Math.round(pct)}
      data-testid={testId}
    >
      <div className="progress-fill" style={pct === null ? undefined : { width: `${pct}%` }} />
    </div>
  );
}
