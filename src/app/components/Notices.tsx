import { useStudio } from '../store.ts';

/** Errors from the engine that belong to no request (device lost, a crash in the worker). */
export function Notices() {
  const notices = useStudio((s) => s.notices);
  const dismiss = useStudio((s) => s.dismissNotice);
  if (notices.length === 0) return null;
  return (
    <div className="notices" role="alert">
      {notices.map((text, i) => (
        <div className="callout callout-bad notice" key={`${i}:${text}`}>
          <p>
            <strong>Engine error.</strong> {text}
          </p>
          <button type="button" className="button button-quiet" onClick={() => dismiss(i)}>
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}
