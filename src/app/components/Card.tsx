import { useId, type ReactNode } from 'react';

export function Card({
  title,
  children,
  className = '',
  testId,
  aside,
}: {
  title: string;
  children: ReactNode;
  className?: string;
  testId?: string;
  /** Shown at the right of the title (a status, a small action). */
  aside?: ReactNode;
}) {
  const id = useId();
  return (
    <section className={`card ${className}`.trim()} aria-labelledby={id} data-testid={testId}>
      <div className="card-head">
        <h2 className="card-title" id={id}>
          {title}
        </h2>
        {aside && <div className="card-aside">{aside}</div>}
      </div>
      {children}
    </section>
  );
}
