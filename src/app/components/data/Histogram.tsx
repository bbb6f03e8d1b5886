import type { Histogram as Hist } from '../../../data/stats.ts';

/** Example lengths in tokens as bars; the last bin holds examples over the sequence length. */
export function Histogram({ h, maxLength }: { h: Hist; maxLength: number }) {
  const max = Math.max(1, ...h.counts);
  return (
    <figure className="histogram" aria-label="Example lengths in tokens" data-testid="histogram">
      <div className="histogram-bars">
        {h.counts.map((c, i) => {
          const over = h.edges[i + 1] === Infinity;
          const label = over ? `> ${maxLength}` : `${h.edges[i]}–${h.edges[i + 1]! - 1}`;
          return (
            <div key={i} className={`histogram-col${over ? ' is-over' : ''}`} title={`${label} tokens: ${c} example${c === 1 ? '' : 's'}`}>
              <span className="histogram-count">{c || ''}</span>
              <div className="histogram-bar" style={{ height: `${(c / max) * 100}%` }} />
            </div>
          );
        })}
      </div>
      <figcaption className="histogram-axis muted small">
        <span>0</span>
        <span>tokens per example</span>
        <span>{maxLength}</span>
      </figcaption>
    </figure>
  );
}
