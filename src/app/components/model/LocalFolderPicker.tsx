import { useRef, useState } from 'react';
import { formatBytes, formatParams } from '../../format.ts';
import { useStudio } from '../../store.ts';
import { ErrorCallout } from '../ErrorCallout.tsx';
import { filesFromDrop, hasDirectoryPicker, pickDirectory } from './folder-files.ts';

/** A model folder from disk: the directory picker, a folder input, or a drop. */
export function LocalFolderPicker({ disabled }: { disabled: boolean }) {
  const folder = useStudio((s) => s.localFolder);
  const inspection = useStudio((s) => s.localInspection);
  const pick = useStudio((s) => s.pickLocalFolder);
  const input = useRef<HTMLInputElement | null>(null);
  const [over, setOver] = useState(false);

  const choose = async () => {
    if (hasDirectoryPicker()) {
      const r = await pickDirectory();
      if (r) void pick(r.files, r.name);
    } else input.current?.click();
  };

  const info = inspection.info;
  return (
    <div className="local-picker">
      <div
        className={`dropzone${over ? ' is-over' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={async (e) => {
          e.preventDefault();
          setOver(false);
          if (disabled) return;
          const r = await filesFromDrop(e.dataTransfer);
          if (r) void pick(r.files, r.name);
        }}
      >
        <p>
          A Hugging Face model folder: <code>config.json</code>, <code>tokenizer.json</code> and <code>.safetensors</code> weights.
        </p>
        <div className="actions">
          <button type="button" className="button" onClick={choose} disabled={disabled}>
            Choose folder…
          </button>
          <span className="muted small">or drop it here</span>
        </div>
        <input
          ref={(el) => {
            input.current = el;
            el?.setAttribute('webkitdirectory', '');
          }}
          type="file"
          multiple
          hidden
          data-testid="folder-input"
          disabled={disabled}
          onChange={(e) => {
            const files = [...(e.target.files ?? [])];
            if (files.length) void pick(files);
            e.target.value = '';
          }}
        />
      </div>
      {folder && (
        <div className="local-summary" data-testid="local-summary">
          <p>
            <strong>{folder.name}</strong>{' '}
            <span className="muted">
              {folder.files.length} file{folder.files.length === 1 ? '' : 's'}, {formatBytes(folder.files.reduce((n, f) => n + f.size, 0))}
            </span>
          </p>
          {inspection.status === 'reading' && <p className="muted">Reading config.json and the weights' headers…</p>}
          {info && (
            <p className="muted" data-testid="local-inspection">
              {info.modelType} · {info.dims.numLayers} layers · hidden {info.dims.hiddenSize} · {formatParams(info.params)} parameters
              {info.prequantized ? ' · bitsandbytes 4-bit' : ''} · {info.chatTemplate ? 'chat template' : 'no chat template (a plain one is used)'}
            </p>
          )}
        </div>
      )}
      {inspection.error && <ErrorCallout error={inspection.error} testId="local-error" />}
    </div>
  );
}
