import { Header } from './components/Header.tsx';
import { Nav } from './components/Nav.tsx';
import { GpuBanner } from './components/GpuBanner.tsx';
import { Notices } from './components/Notices.tsx';
import { ResumeBanner } from './components/ResumeBanner.tsx';
import { DemoBanner } from './components/DemoBanner.tsx';
import { ActivePanel } from './panels/ActivePanel.tsx';
import { useTheme } from './hooks/useTheme.ts';

export function App() {
  useTheme();
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Header />
      <div className="app-body">
        <Nav />
        <main id="main" className="app-main" tabIndex={-1}>
          <GpuBanner />
          <DemoBanner />
          <Notices />
          <ResumeBanner />
          <ActivePanel />
        </main>
      </div>
    </div>
  );
}
