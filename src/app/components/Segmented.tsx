import type { ReactNode } from 'react';

/** A row of mutually exclusive choices (a radio group that looks like tabs). */
export function Segmented<T extends string>({
  label,
  value,
  options,
  onChange,
  disabled,
  testId,
}: {
  label: string;
  value: T;
  options: ReadonlyArray<{ value: T; label: ReactNode; disabled?: boolean }>;
  onChange: (v: T) => void;
  disabled?: boolean;
  testId?: string;
}) {
  return (
    <div className="segmented" role="radiogroup" aria-label={label} data-testid={testId}>
      {options.map((o) => (
        <button
          key={o.value}
          type="button"
          role="radio"
          aria-checked={value === o.value}
          className="segmented-item"
          disabled={disabled || o.disabled}
          onClick={() => onChange(o.value)}
          onKeyDown={(e) => {
            if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
            e.preventDefault();
            const enabled = options.filter((x) => !x.disabled);
            const i = enabled.findIndex((x) => x.value === value);
            const next = enabled[(i + (e.key === 'ArrowRight' ? 1 : enabled.length - 1)) % enabled.length];
            if (next) {
              onChange(next.value);
              const group = (e.currentTarget.parentElement?.querySelectorAll('[role="radio"]') ?? []) as NodeListOf<HTMLElement>;
              group[options.indexOf(next)]?.focus();
            }
          }}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}
