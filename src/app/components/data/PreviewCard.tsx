import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';

/** Rendered examples as the model sees them, trained tokens highlighted. */
export function PreviewCard() {
  const summary = useStudio((s) => s.data.summary);
  if (!summary || summary.previews.length === 0) return null;
  return (
    <Card title="Preview" testId="data-preview" aside={<span className="legend small"><mark className="trained">trained</mark> tokens carry the loss</span>}>
      {summary.previews.map((p, i) => (
        <article key={i} className="preview">
          <p className="preview-head muted small">
            {p.where} · {p.tokens} tokens, {p.trainedTokens} trained
          </p>
          <pre className="preview-text" data-testid="preview-text">
            {p.runs.map((r, j) => (r.trained ? <mark key={j} className="trained">{r.text}</mark> : <span key={j}>{r.text}</span>))}
          </pre>
        </article>
      ))}
    </Card>
  );
}
