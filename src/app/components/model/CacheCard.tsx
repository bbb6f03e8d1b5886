import { useEffect } from 'react';
import { formatBytes } from '../../format.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';

/** Models kept in this browser (downloads and copied folders), with sizes, load and delete. */
export function CacheCard() {
  const cache = useStudio((s) => s.cache);
  const engine = useStudio((s) => s.engine);
  const refresh = useStudio((s) => s.refreshCache);
  const remove = useStudio((s) => s.deleteCached);
  const loadCached = useStudio((s) => s.loadCachedModel);
  const loaded = useStudio((s) => s.load.info?.cached ?? null);
  const busy = useStudio((s) => s.load.status === 'fetching' || s.load.status === 'loading' || (s.run !== null && !['done', 'stopped', 'error'].includes(s.run.state)));
  useEffect(() => {
    if (engine) void refresh();
  }, [engine, refresh]);
  const st = cache.storage;
  return (
    <Card
      title="In this browser"
      testId="cache-card"
      aside={st && st.quota ? <span className="muted small">{formatBytes(st.usage ?? 0)} of {formatBytes(st.quota)} used</span> : undefined}
    >
      {cache.models.length === 0 ? (
        <p className="muted">{cache.loading ? 'Looking…' : 'No models yet. Downloads and copied folders stay here for the next visit.'}</p>
      ) : (
        <ul className="cache-list">
          {cache.models.map((m) => {
            const isLoaded = loaded?.repo === m.repo && loaded.revision === m.revision;
            return (
              <li key={`${m.repo}@${m.revision}`} className="cache-row" data-testid={`cached-${m.repo}`}>
                <span className="cache-main">
                  <span className="cache-name">{m.repo.startsWith('local/') ? m.repo.slice(6) : m.repo}</span>
                  <span className="muted small">
                    {m.repo.startsWith('local/') ? 'local folder' : revisionLabel(m.revision)} · {formatBytes(m.bytes + m.partialBytes)}
                    {m.complete ? '' : ` · unfinished (${m.filesDone}/${m.files} files)`}
                    {isLoaded ? ' · loaded' : ''}
                  </span>
                </span>
                {m.complete && !isLoaded && (
                  <button type="button" className="button button-small" disabled={busy} onClick={() => void loadCached(m.repo, m.revision)}>
                    Load
                  </button>
                )}
                <button
                  type="button"
                  className="button button-small button-quiet"
                  disabled={busy}
                  aria-label={`Delete ${m.repo}`}
                  onClick={() => void remove(m.repo, m.revision)}
                >
                  Delete
                </button>
              </li>
            );
          })}
        </ul>
      )}
      {cache.error && <p className="field-error">{cache.error}</p>}
      {st && <p className="muted small">Stored in {st.store}{st.persisted ? ', kept under storage pressure' : ''}.</p>}
    </Card>
  );
}

/** "main" → "main", "main+nf4" → "main, 4-bit NF4 copy". */
function revisionLabel(revision: string): string {
  const m = /^(.+)\+(nf4|fp4)$/.exec(revision);
  return m ? `${m[1]}, 4-bit ${m[2]!.toUpperCase()} copy` : revision;
}
