import { useState } from 'react';
import { isRunActive } from '../state/train.ts';
import { useStudio } from '../store.ts';

/** On a reopened tab: the newest unfinished run, with an offer to resume it. */
export function ResumeBanner() {
  const runs = useStudio((s) => s.runs.list);
  const current = useStudio((s) => s.run);
  const gpuReady = useStudio((s) => s.gpu.status === 'ready');
  const resume = useStudio((s) => s.resumeRun);
  const setPanel = useStudio((s) => s.setPanel);
  const [dismissed, setDismissed] = useState<string | null>(null);
  const r = runs.find((x) => !x.finished && x.step !== null);
  if (!r || current || dismissed === r.record.runId) return null;
  return (
    <div className="callout callout-info banner" role="status" data-testid="resume-banner">
      <p>
        <strong>An unfinished run is kept in this browser.</strong> {r.record.label} stopped at step {r.step} of {r.totalSteps}; it can
        continue exactly where it left off.
      </p>
      <div className="actions">
        <button
          type="button"
          className="button button-primary"
          disabled={!gpuReady || isRunActive(current)}
          onClick={() => {
            setPanel('train');
            void resume(r.record.runId);
          }}
          data-testid="resume-banner-button"
        >
          Resume run
        </button>
        <button type="button" className="button button-quiet" onClick={() => setDismissed(r.record.runId)}>
          Not now
        </button>
      </div>
    </div>
  );
}
