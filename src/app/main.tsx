// Browser entry: starts the engine worker, begins the GPU check, and renders the studio.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { EngineClient } from './engine-client.ts';
import { effectiveTheme, useStudio } from './store.ts';
import { applyTheme, readThemeChoice, systemTheme } from './theme.ts';
import './styles.css';

const studio = useStudio.getState();
studio.setSystemTheme(systemTheme());
studio.setThemeChoice(readThemeChoice());
applyTheme(effectiveTheme(useStudio.getState())); // before the first paint: no flash of the wrong theme
try {
  studio.attachEngine(EngineClient.create());
} catch (err) {
  console.error(err); // checkGpu reports "engine not running" in the GPU panel
}
void studio.checkGpu();

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
