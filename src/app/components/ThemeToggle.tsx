import { effectiveTheme, useStudio } from '../store.ts';

export function ThemeToggle() {
  const theme = useStudio(effectiveTheme);
  const toggle = useStudio((s) => s.toggleTheme);
  const next = theme === 'dark' ? 'light' : 'dark';
  return (
    <button type="button" className="button button-quiet theme-toggle" onClick={toggle} aria-label={`Switch to ${next} theme`}>
      <span aria-hidden="true" className="theme-icon">
        {theme === 'dark' ? '☀' : '☾'}
      </span>
      {next === 'dark' ? 'Dark' : 'Light'}
    </button>
  );
}
