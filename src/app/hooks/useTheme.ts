import { useEffect, useLayoutEffect } from 'react';
import { effectiveTheme, useStudio } from '../store.ts';
import { applyTheme, DARK_QUERY, saveThemeChoice } from '../theme.ts';

/** Applies the theme to <html>, follows prefers-color-scheme, and saves an explicit choice. */
export function useTheme(): void {
  const theme = useStudio(effectiveTheme);
  const choice = useStudio((s) => s.themeChoice);
  const setSystemTheme = useStudio((s) => s.setSystemTheme);

  // Before any passive effect, so components that read the theme's CSS variables (charts) see the new ones.
  useLayoutEffect(() => applyTheme(theme), [theme]);
  useEffect(() => saveThemeChoice(choice), [choice]);
  useEffect(() => {
    const mq = matchMedia(DARK_QUERY);
    const onChange = () => setSystemTheme(mq.matches ? 'dark' : 'light');
    mq.addEventListener('change', onChange);
    return () => mq.removeEventListener('change', onChange);
  }, [setSystemTheme]);
}
