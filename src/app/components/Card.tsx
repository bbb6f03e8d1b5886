import { useId, type ReactNode } from 'react';

export function Card({
  title,
  children,
  className = '',
  testId,
}: {
  title: string;
  children: ReactNode;
  className?: string;
  testId?: string;
}) {
  const id = useId();
  return (
    <section className={`card ${className}`.trim()} aria-labelledby={id} data-testid={testId}>
      <h2 className="card-title" id={id}>
        {title}
      </h2>
      {children}
    </section>
  );
}
