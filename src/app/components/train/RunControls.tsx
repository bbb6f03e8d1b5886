import { useShallow } from 'zustand/react/shallow';
import { validateLoraConfig } from '../../../train/lora-config.ts';
import { validateTrainConfig } from '../../../train/train-config.ts';
import { useEstimate } from '../../hooks/useEstimate.ts';
import { dataSpec } from '../../state/data.ts';
import { isRunActive } from '../../state/train.ts';
import { useStudio } from '../../store.ts';
import type { TrainState } from '../../../worker/protocol.ts';

const STATE_TEXT: Record<TrainState, string> = {
  preparing: 'Preparing the data and the adapter…',
  running: 'Training',
  pausing: 'Pausing after this step…',
  paused: 'Paused — a checkpoint is saved',
  stopping: 'Stopping after this step…',
  done: 'Finished',
  stopped: 'Stopped — a checkpoint is saved',
  error: 'Stopped by an error',
};

/** Why the run cannot start, in words, or null when it can. */
function useStartProblem(): string | null {
  const est = useEstimate();
  const s = useStudio(
    useShallow((st) => ({
      gpu: st.gpu.status,
      model: st.load.status,
      hasData: dataSpec(st) !== null,
      dataStatus: st.data.status,
      train: st.train,
      lora: st.lora,
    })),
  );
  if (s.gpu !== 'ready') return 'Training needs WebGPU (see the GPU panel).';
  if (s.model !== 'ready') return 'Load a model first (Model panel).';
  if (!s.hasData) return 'Choose a dataset first (Data panel).';
  if (s.dataStatus === 'error') return 'The dataset has a problem (Data panel).';
  try {
    validateTrainConfig(s.train);
    validateLoraConfig(s.lora);
  } catch {
    return 'Fix the settings marked below.';
  }
  if (est?.verdict === 'too-large') return 'Too large for this GPU: see the memory estimate.';
  return null;
}

export function RunControls() {
  const run = useStudio((s) => s.run);
  const start = useStudio((s) => s.startTraining);
  const pause = useStudio((s) => s.pauseTraining);
  const resume = useStudio((s) => s.resumeTraining);
  const stop = useStudio((s) => s.stopTraining);
  const problem = useStartProblem();
  const active = isRunActive(run);
  const state = run?.state ?? null;
  const total = run?.totalSteps ?? null;
  const step = run?.last?.step ?? run?.resumedFrom ?? 0;

  return (
    <div className="run-controls">
      <div className="actions">
        <span className="run-buttons">
          {!active && (
            <button type="button" className="button button-primary" disabled={problem !== null} onClick={() => void start()} data-testid="start-training">
              {run ? 'Start a new run' : 'Start training'}
            </button>
          )}
          {active && state !== 'paused' && (
            <button type="button" className="button" disabled={state !== 'running' && state !== 'preparing'} onClick={() => void pause()} data-testid="pause-training">
              Pause
            </button>
          )}
          {active && (state === 'paused' || state === 'pausing') && (
            <button type="button" className="button button-primary" onClick={() => void resume()} data-testid="resume-training">
              Resume
            </button>
          )}
          {active && (
            <button type="button" className="button button-quiet" disabled={state === 'stopping'} onClick={() => void stop()} data-testid="stop-training">
              Stop
            </button>
          )}
        </span>
        <span className="run-state" data-testid="run-state" data-state={state ?? 'idle'}>
          {state ? STATE_TEXT[state] : problem ?? 'Ready.'}
          {run?.message && state !== 'error' ? <span className="muted"> · {run.message}</span> : null}
        </span>
      </div>
      <div className="run-progress">
        <div className="progress" role="progressbar" aria-label="Steps done" aria-valuemin={0} aria-valuemax={100} aria-valuenow={total ? Math.round((step / total) * 100) : 0}>
          <div className="progress-fill" style={{ width: `${total ? (step / total) * 100 : 0}%` }} />
        </div>
        {!active && problem && run && <p className="muted small">{problem}</p>}
      </div>
    </div>
  );
}
