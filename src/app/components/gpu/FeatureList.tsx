import { ENGINE_FEATURES } from '../../format.ts';
import { Card } from '../Card.tsx';

export function FeatureList({ features }: { features: string[] }) {
  const has = new Set(features);
  return (
    <Card title={`Features (${features.length})`} testId="adapter-features">
      <ul className="engine-features">
        {ENGINE_FEATURES.map((f) => (
          <li key={f.name} className={has.has(f.name) ? 'yes' : 'no'}>
            <span className="feature-mark" aria-hidden="true">
              {has.has(f.name) ? '✓' : '–'}
            </span>
            <code>{f.name}</code>
            <span className="muted">
              {has.has(f.name) ? f.use : `not offered; the engine uses its f32 paths instead`}
            </span>
          </li>
        ))}
      </ul>
      {features.length > 0 ? (
        <ul className="chips" aria-label="All adapter features">
          {features.map((f) => (
            <li key={f} className="chip">
              {f}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">The adapter reports no optional features.</p>
      )}
    </Card>
  );
}
