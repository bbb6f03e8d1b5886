import { useId, type ReactNode } from 'react';

/** A labelled control with a one-line explanation and, when invalid, the problem in words. */
export function Field({
  label,
  help,
  error,
  children,
  wide = false,
  testId,
}: {
  label: string;
  help?: ReactNode;
  error?: string | null;
  /** Receives the ids to wire: the control's id and its description id. */
  children: (ids: { id: string; describedBy: string }) => ReactNode;
  wide?: boolean;
  testId?: string;
}) {
  const id = useId();
  const helpId = `${id}-help`;
  return (
    <div className={`field${wide ? ' field-wide' : ''}${error ? ' field-invalid' : ''}`} data-testid={testId}>
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {children({ id, describedBy: helpId })}
      <p className={error ? 'field-error' : 'field-help'} id={helpId}>
        {error ?? help}
      </p>
    </div>
  );
}
