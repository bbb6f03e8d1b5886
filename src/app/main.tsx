// Browser entry: starts the engine worker, begins the GPU check, and renders the studio.

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { EngineClient } from './engine-client.ts';
import { effectiveTheme, useStudio } from './store.ts';
import { hasDemoLink } from '../share/link.ts';
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
// A demo link (#demo=…) is decoded before anything else is loaded; a bad one loads nothing.
const demoUrl = hasDemoLink(location.hash) ? location.href : null;
void studio.checkGpu();
if (demoUrl) void studio.openDemoLink(demoUrl);
// The cache and the kept runs are read at once (no GPU needed): a reopened tab offers to resume.
void studio.refreshCache();
void studio.refreshRuns();

// The store, for the browser tests and for anyone curious in the console (read-only use).
Object.defineProperty(window, '__studio', { value: useStudio, configurable: true });

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
