import type { ReactNode } from 'react';
import { panelInfo, type PanelId } from '../panels.ts';

/** A panel: its title and one-line summary, then its content. */
export function PanelSection({ id, children }: { id: PanelId; children?: ReactNode }) {
  const info = panelInfo(id);
  return (
    <section className="panel" aria-labelledby={`panel-${id}-title`} data-panel={id}>
      <header className="panel-header">
        <h1 id={`panel-${id}-title`}>{info.title}</h1>
        <p className="panel-summary">{info.summary}</p>
      </header>
      {children}
    </section>
  );
}
