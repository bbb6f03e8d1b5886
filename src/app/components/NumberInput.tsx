import { useEffect, useState } from 'react';

/**
 * A number input that keeps what the user types (so "0." or "3e-" can be finished) and commits
 * parsed numbers; an empty or malformed entry shows as invalid without changing the setting.
 */
export function NumberInput({
  id,
  describedBy,
  value,
  onChange,
  step = 'any',
  min,
  max,
  integer = false,
  disabled,
  label,
}: {
  id: string;
  describedBy?: string;
  value: number;
  onChange: (v: number) => void;
  step?: number | 'any';
  min?: number;
  max?: number;
  integer?: boolean;
  disabled?: boolean;
  label?: string;
}) {
  const [text, setText] = useState(String(value));
  useEffect(() => {
    if (Number(text) !== value) setText(String(value));
  }, [value]);
  const parsed = text.trim() === '' ? NaN : Number(text);
  const bad = !Number.isFinite(parsed) || (integer && !Number.isInteger(parsed)) || (min !== undefined && parsed < min) || (max !== undefined && parsed > max);
  return (
    <input
      id={id}
      className="input input-number"
      type="text"
      inputMode={integer ? 'numeric' : 'decimal'}
      value={text}
      aria-describedby={describedBy}
      aria-invalid={bad || undefined}
      aria-label={label}
      data-step={step}
      disabled={disabled}
      spellCheck={false}
      onChange={(e) => {
        setText(e.target.value);
        const v = Number(e.target.value);
        if (e.target.value.trim() !== '' && Number.isFinite(v) && (!integer || Number.isInteger(v))) onChange(v);
      }}
      onBlur={() => {
        if (bad) setText(String(value));
      }}
    />
  );
}
