import { PANELS } from '../panels.ts';
import { useStudio } from '../store.ts';

export function Nav() {
  const panel = useStudio((s) => s.panel);
  const setPanel = useStudio((s) => s.setPanel);
  return (
    <nav className="app-nav" aria-label="Studio panels">
      <ul>
        {PANELS.map((p) => (
          <li key={p.id}>
            <button
              type="button"
              className="nav-item"
              aria-current={panel === p.id ? 'page' : undefined}
              onClick={() => setPanel(p.id)}
            >
              <span className="nav-title">{p.title}</span>
              {p.id !== 'gpu' && <span className="nav-note">planned</span>}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
