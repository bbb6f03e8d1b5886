import { useRef, useState } from 'react';
import { FORMAT_NAMES, type FormatName } from '../../../data/formats.ts';
import { formatBytes } from '../../format.ts';
import { SAMPLES, type DataChoice } from '../../state/data.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { Field } from '../Field.tsx';
import { Segmented } from '../Segmented.tsx';

const FORMAT_HELP: Record<FormatName, string> = {
  messages: '{"messages": [{"role", "content"}, …]} chats',
  sharegpt: '{"conversations": [{"from", "value"}, …]} chats',
  alpaca: 'instruction / input / output',
  completion: 'prompt / completion pairs',
  oasst: 'OpenAssistant “### Human / ### Assistant” text',
  text: 'plain text, every token trained',
};

export function DataSourceCard() {
  const s = useStudio((st) => st);
  const running = s.run !== null && !['done', 'stopped', 'error'].includes(s.run.state);
  const fileInput = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const summary = s.data.summary;
  const detected = summary && summary.detected ? summary.format : null;
  const datasetsHost = (() => {
    try {
      return new URL(s.hub.datasetsEndpoint).host;
    } catch {
      return s.hub.datasetsEndpoint;
    }
  })();

  return (
    <Card title="Dataset" testId="data-source">
      <Segmented<DataChoice>
        label="Where the data comes from"
        value={s.dataChoice}
        onChange={s.setDataChoice}
        disabled={running}
        options={[
          { value: 'sample', label: 'Sample' },
          { value: 'file', label: 'File' },
          { value: 'paste', label: 'Paste' },
          { value: 'hf', label: 'Hub dataset' },
        ]}
      />
      {s.dataChoice === 'sample' && (
        <div className="source-body">
          {SAMPLES.map((x) => (
            <p key={x.id}>
              <strong>{x.name}</strong> <span className="muted">({x.file})</span> — {x.description}
            </p>
          ))}
        </div>
      )}
      {s.dataChoice === 'file' && (
        <div
          className={`dropzone${over ? ' is-over' : ''}`}
          onDragOver={(e) => {
            e.preventDefault();
            setOver(true);
          }}
          onDragLeave={() => setOver(false)}
          onDrop={(e) => {
            e.preventDefault();
            setOver(false);
            const f = e.dataTransfer.files[0];
            if (f && !running) s.setDataFile(f);
          }}
        >
          <p>JSONL, JSON, CSV, TSV or plain text. Chats, instruction pairs and raw text are recognised.</p>
          <div className="actions">
            <button type="button" className="button" disabled={running} onClick={() => fileInput.current?.click()}>
              Choose file…
            </button>
            <span className="muted small">{s.dataFile ? `${s.dataFile.name}, ${formatBytes(s.dataFile.size)}` : 'or drop it here'}</span>
          </div>
          <input
            ref={fileInput}
            type="file"
            hidden
            accept=".jsonl,.json,.ndjson,.csv,.tsv,.txt,.md"
            data-testid="data-file-input"
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) s.setDataFile(f);
              e.target.value = '';
            }}
          />
        </div>
      )}
      {s.dataChoice === 'paste' && (
        <Field label="Text" help="One JSON object per line (JSONL), CSV with a header, or plain text." wide>
          {({ id, describedBy }) => (
            <textarea
              id={id}
              className="input textarea"
              rows={6}
              value={s.pasteText}
              disabled={running}
              spellCheck={false}
              aria-describedby={describedBy}
              placeholder={'{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}'}
              onChange={(e) => s.setPasteText(e.target.value)}
            />
          )}
        </Field>
      )}
      {s.dataChoice === 'hf' && (
        <form
          className="hf-form"
          onSubmit={(e) => {
            e.preventDefault();
            void s.prepareData();
          }}
        >
          <Field
            label="Dataset id"
            help={
              <>
                e.g. HuggingFaceH4/no_robots — rows come from the dataset viewer at {datasetsHost} (
                <button type="button" className="link-button" onClick={() => s.setPanel('model')}>
                  Hub access
                </button>
                ).
              </>
            }
          >
            {({ id, describedBy }) => (
              <input id={id} className="input" value={s.hfDataset.dataset} placeholder="owner/dataset" spellCheck={false} aria-describedby={describedBy} disabled={running} onChange={(e) => s.setHfDataset({ dataset: e.target.value })} data-testid="hf-dataset-id" />
            )}
          </Field>
          <div className="field-grid">
            <Field label="Subset" help="Blank: “default” or the first.">
              {({ id, describedBy }) => <input id={id} className="input" value={s.hfDataset.config} aria-describedby={describedBy} disabled={running} onChange={(e) => s.setHfDataset({ config: e.target.value })} />}
            </Field>
            <Field label="Split" help="Blank: “train” or the first.">
              {({ id, describedBy }) => <input id={id} className="input" value={s.hfDataset.split} aria-describedby={describedBy} disabled={running} onChange={(e) => s.setHfDataset({ split: e.target.value })} />}
            </Field>
          </div>
          <div className="actions">
            <button type="submit" className="button" disabled={running || !s.hfDataset.dataset.trim() || s.load.status !== 'ready'} data-testid="hf-load-rows">
              Load rows
            </button>
            <span className="muted small">At most {s.hfDataset.maxRows.toLocaleString('en-US')} rows.</span>
          </div>
        </form>
      )}
      <div className="field-grid">
        <Field label="Format" help={s.dataFormat === 'auto' ? (detected ? `Detected: ${detected} (${FORMAT_HELP[detected]}).` : 'Detected from the first rows.') : FORMAT_HELP[s.dataFormat]}>
          {({ id, describedBy }) => (
            <select id={id} className="input" value={s.dataFormat} disabled={running} aria-describedby={describedBy} onChange={(e) => s.setDataFormat(e.target.value as FormatName | 'auto')} data-testid="data-format">
              <option value="auto">{detected ? `Auto (${detected})` : 'Auto-detect'}</option>
              {FORMAT_NAMES.map((f) => (
                <option key={f} value={f}>
                  {f}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Trained tokens" help={s.labelMode === 'assistant' ? 'Loss on the assistant’s answers only (and their end token).' : 'Loss on every token, prompts included.'}>
          {({ id, describedBy }) => (
            <select id={id} className="input" value={s.labelMode} disabled={running} aria-describedby={describedBy} onChange={(e) => s.setLabelMode(e.target.value as 'assistant' | 'all')}>
              <option value="assistant">Assistant answers</option>
              <option value="all">All tokens</option>
            </select>
          )}
        </Field>
      </div>
    </Card>
  );
}
