import { formatCount, formatError, formatMs } from '../../format.ts';
import { useStudio } from '../../store.ts';
import { SELFTEST_DEFAULTS, SELFTEST_TOLERANCE } from '../../../worker/selftest.ts';
import { Card } from '../Card.tsx';

export function SelfTestCard() {
  const selftest = useStudio((s) => s.selftest);
  const run = useStudio((s) => s.runSelfTest);
  const r = selftest.result;
  const passed = r !== null && r.mismatches === 0 && r.maxAbsError <= r.tolerance;
  return (
    <Card title="Self-test" testId="selftest">
      <p className="muted">
        Runs <code>y = a·x + y</code> on {formatCount(SELFTEST_DEFAULTS.n)} seeded random floats in the engine’s worker
        and compares every element with the CPU (tolerance {formatError(SELFTEST_TOLERANCE)}).
      </p>
      <div className="actions">
        <button type="button" className="button button-primary" onClick={() => void run()} disabled={selftest.running}>
          {selftest.running ? 'Running…' : 'Run GPU self-test'}
        </button>
        <span aria-live="polite" className="selftest-live">
          {selftest.running && (
            <span className="status-line">
              <span className="spinner" aria-hidden="true" /> Running on the GPU…
            </span>
          )}
        </span>
      </div>
      {r && (
        <dl
          className="facts selftest-result"
          data-testid="selftest-result"
          data-max-abs-error={r.maxAbsError}
          data-passed={passed}
        >
          <dt>Result</dt>
          <dd className={passed ? 'text-ok' : 'text-bad'}>{passed ? 'Passed' : `Failed: ${formatCount(r.mismatches)} elements off`}</dd>
          <dt>Max |error|</dt>
          <dd data-testid="selftest-max-error">{formatError(r.maxAbsError)}</dd>
          <dt>Elements</dt>
          <dd>{formatCount(r.n)}</dd>
          <dt>Time</dt>
          <dd>
            {formatMs(r.ms)} <span className="muted">end to end, from upload to readback</span>
          </dd>
        </dl>
      )}
      {selftest.error && (
        <p className="callout callout-bad" role="alert" data-testid="selftest-error">
          {selftest.error}
        </p>
      )}
    </Card>
  );
}
