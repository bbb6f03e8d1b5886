import { useStudio } from '../store.ts';

/** What a demo link is loading and from where, or why it was refused. */
export function DemoBanner() {
  const demo = useStudio((s) => s.demo);
  const dismiss = useStudio((s) => s.dismissDemo);
  if (demo.status === 'idle') return null;
  if (demo.status === 'error') {
    return (
      <div className="callout callout-bad banner" role="alert" data-testid="demo-banner" data-status="error">
        <p>
          <strong>This demo link cannot be opened.</strong> {demo.error} Nothing from it was loaded.
        </p>
        <div className="actions">
          <button type="button" className="button button-quiet" onClick={dismiss}>
            Dismiss
          </button>
        </div>
      </div>
    );
  }
  return (
    <div className="callout callout-info banner" role="status" data-testid="demo-banner" data-status={demo.status}>
      <p>
        <strong>{demo.status === 'loading' ? 'Opening a demo link.' : 'Demo link loaded.'}</strong>
        {demo.link?.title ? ` “${demo.link.title}”. ` : ' '}
        {demo.message}
      </p>
      {demo.status === 'ready' && (
        <div className="actions">
          <button type="button" className="button button-quiet" onClick={dismiss}>
            Dismiss
          </button>
        </div>
      )}
    </div>
  );
}
