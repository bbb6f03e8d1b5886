import { useShallow } from 'zustand/react/shallow';
import { PANELS, type PanelId } from '../panels.ts';
import { isRunActive } from '../state/train.ts';
import { useStudio, type StudioState } from '../store.ts';

/** One short line under each panel's name: where that step stands. */
function notes(s: StudioState): Partial<Record<PanelId, string>> {
  const run = s.run;
  const model =
    s.load.status === 'ready' && s.load.info
      ? s.load.info.name
      : s.load.status === 'fetching'
        ? s.download?.status === 'paused'
          ? 'download paused'
          : 'downloading…'
        : s.load.status === 'loading'
          ? 'loading…'
          : s.load.status === 'error'
            ? 'needs attention'
            : 'not loaded';
  const data =
    s.data.status === 'ready' && s.data.summary
      ? `${s.data.summary.stats.examples} examples`
      : s.data.status === 'preparing'
        ? 'preparing…'
        : s.data.status === 'error'
          ? 'needs attention'
          : s.dataChoice === 'sample'
            ? 'sample chosen'
            : 'not ready';
  const train = run
    ? isRunActive(run)
      ? run.state === 'paused'
        ? `paused at ${run.last?.step ?? run.resumedFrom ?? 0}`
        : `step ${run.last?.step ?? run.resumedFrom ?? 0}${run.totalSteps ? ` / ${run.totalSteps}` : ''}`
      : run.state === 'done'
        ? 'finished'
        : run.state === 'error'
          ? 'needs attention'
          : 'stopped'
    : 'not started';
  const adapter = s.linkedAdapter || run?.state === 'paused' || run?.state === 'done' || run?.state === 'stopped';
  const ready = s.load.status === 'ready';
  const playground = !ready ? 'load a model' : adapter ? 'base vs fine-tuned' : 'base model';
  const exp = adapter ? 'adapter ready' : 'train first';
  return { model, data, train, playground, export: exp };
}

export function Nav() {
  const panel = useStudio((s) => s.panel);
  const setPanel = useStudio((s) => s.setPanel);
  const n = useStudio(useShallow(notes));
  return (
    <nav className="app-nav" aria-label="Studio panels">
      <ul>
        {PANELS.map((p, i) => (
          <li key={p.id}>
            <button
              type="button"
              className={`nav-item${p.built ? '' : ' is-planned'}`}
              aria-current={panel === p.id ? 'page' : undefined}
              onClick={() => setPanel(p.id)}
              data-testid={`nav-${p.id}`}
            >
              <span className="nav-title">
                {p.id !== 'gpu' && i < 5 ? (
                  <span className="nav-num" aria-hidden="true">
                    {i + 1}
                  </span>
                ) : null}
                {p.title}
              </span>
              {n[p.id] && <span className="nav-note">{n[p.id]}</span>}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
