import type { ReactNode } from 'react';
import type { ErrorInfo } from '../errors.ts';

/** An error shown where it happened: what went wrong, the details, and the next step. */
export function ErrorCallout({ error, children, testId }: { error: ErrorInfo; children?: ReactNode; testId?: string }) {
  return (
    <div className="callout callout-bad" role="alert" data-testid={testId} data-error-kind={error.kind}>
      <p className="callout-title">{error.title}</p>
      <p className="callout-body">{error.message}</p>
      {children && <div className="actions">{children}</div>}
    </div>
  );
}
