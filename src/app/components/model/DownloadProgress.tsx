import type { FileProgress } from '../../../hub/hub-client.ts';
import { formatBytes, formatDuration, formatRate } from '../../format.ts';
import type { DownloadState } from '../../state/model.ts';
import { ProgressBar } from '../ProgressBar.tsx';

const STATUS: Record<FileProgress['status'], string> = {
  queued: 'waiting',
  cached: 'cached',
  downloading: '',
  retrying: 'retrying…',
  verifying: 'checking',
  done: 'done',
  failed: 'failed',
};

/** Total and per-file progress of a download or a folder import, with rate and time left. */
export function DownloadProgress({ download, onPause, onResume }: { download: DownloadState; onPause: () => void; onResume: () => void }) {
  const p = download.progress;
  const total = p?.total;
  const frac = total && total.size ? total.bytes / total.size : null;
  const verb = download.kind === 'import' ? 'Copying into the browser cache' : 'Downloading';
  return (
    <div className="download" data-testid="download" data-status={download.status}>
      <div className="download-head">
        <span>
          {download.status === 'paused'
            ? 'Paused'
            : download.status === 'error'
              ? 'Stopped'
              : download.status === 'pausing'
                ? 'Pausing'
                : download.status === 'done'
                  ? download.kind === 'import'
                    ? 'Copied'
                    : 'Downloaded'
                  : verb}{' '}
          <span className="muted">{download.repo}</span>
        </span>
        {download.kind === 'download' && download.status === 'running' && (
          <button type="button" className="button button-small" onClick={onPause}>
            Pause
          </button>
        )}
        {download.kind === 'download' && (download.status === 'paused' || download.status === 'error') && (
          <button type="button" className="button button-small" onClick={onResume}>
            Resume
          </button>
        )}
      </div>
      <ProgressBar value={download.status === 'done' ? 1 : frac ?? (download.status === 'running' ? null : 0)} label="Total download progress" testId="download-total" />
      <p className="download-numbers muted small" data-testid="download-numbers">
        {total ? (
          <>
            {formatBytes(total.bytes)}
            {total.size ? ` of ${formatBytes(total.size)}` : ''} · {total.filesDone}/{total.files} files
            {download.status === 'running' && (
              <>
                {' '}
                · {formatRate(total.rate)} · {formatDuration(total.eta)} left
              </>
            )}
          </>
        ) : download.status === 'running' ? (
          'Asking the Hub for the file list…'
        ) : (
          'Nothing downloaded yet.'
        )}
      </p>
      {p && p.files.length > 0 && download.status !== 'done' && (
        <ul className="file-list" aria-label="Files">
          {p.files.map((f) => (
            <li key={f.name} className="file-row" data-status={f.status}>
              <span className="file-name" title={f.name}>
                {f.name}
              </span>
              <ProgressBar value={f.size ? f.bytes / f.size : f.status === 'done' || f.status === 'cached' ? 1 : null} label={`${f.name} progress`} tone={f.status === 'failed' ? 'bad' : 'accent'} />
              <span className="file-num muted small">{STATUS[f.status] || (f.size ? formatBytes(f.size) : formatBytes(f.bytes))}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
