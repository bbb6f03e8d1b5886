import { useState } from 'react';
import { Card } from '../components/Card.tsx';
import { Field } from '../components/Field.tsx';
import { PanelSection } from '../components/PanelSection.tsx';
import { formatBytes } from '../format.ts';
import { hasAdapter } from '../state/playground.ts';
import { useStudio } from '../store.ts';
import type { ExportKind } from '../../worker/protocol.ts';

const ITEMS: Array<{ kind: ExportKind; label: string; help: string; needsAdapter: boolean }> = [
  { kind: 'adapter-zip', label: 'Adapter (PEFT zip)', help: 'adapter_model.safetensors, adapter_config.json, a README model card, training_config.json and loss_history.csv.', needsAdapter: true },
  { kind: 'training-config', label: 'Training config (JSON)', help: 'The model, dataset reference, LoRA and training settings and the outcome.', needsAdapter: false },
  { kind: 'loss-csv', label: 'Loss history (CSV)', help: 'step, loss, eval loss, learning rate, gradient norm, tokens/s.', needsAdapter: false },
  {
    kind: 'merged-zip',
    label: 'Merged model (zip, F16)',
    help: 'The base dequantized from 4-bit with the adapter added: safetensors, config and tokenizer for tools that want one set of files. Streamed to a temporary file in the browser’s storage, not kept in memory; the next build replaces it.',
    needsAdapter: true,
  },
];

function ExportRow({ item, disabled }: { item: (typeof ITEMS)[number]; disabled: boolean }) {
  const state = useStudio((s) => s.exports[item.kind]);
  const exportFile = useStudio((s) => s.exportFile);
  return (
    <div className="run-row" data-testid={`export-${item.kind}`} data-status={state?.status ?? 'idle'} data-storage={state?.storage ?? undefined}>
      <div className="run-main">
        <div className="run-name">{item.label}</div>
        <div className="muted small">{item.help}</div>
        {state?.status === 'ready' && state.warning && (
          <p className="muted small" role="note" data-testid={`export-warning-${item.kind}`}>
            {state.warning}
          </p>
        )}
        {state?.error && (
          <p className="field-error" role="alert">
            {state.error}
          </p>
        )}
      </div>
      <div className="actions">
        <button type="button" className="button button-small" disabled={disabled || state?.status === 'working'} onClick={() => void exportFile(item.kind)} data-testid={`make-${item.kind}`}>
          {state?.status === 'working' ? 'Building…' : state?.status === 'ready' ? 'Build again' : 'Build'}
        </button>
        {state?.status === 'ready' && state.url && (
          <a className="button button-primary button-small" href={state.url} download={state.name ?? undefined} data-testid={`download-${item.kind}`}>
            Download {state.name} ({formatBytes(state.bytes)})
          </a>
        )}
      </div>
    </div>
  );
}

function ShareCard() {
  const ready = useStudio((s) => s.load.status === 'ready');
  const share = useStudio((s) => s.share);
  const prompt = useStudio((s) => s.prompt);
  const { setPrompt, setPublishedAt, makeShareLink } = useStudio.getState();
  const [copied, setCopied] = useState(false);
  return (
    <Card title="Share a demo link" testId="share-card">
      <p className="muted small">
        The link reopens the studio with this model, the dataset’s name, the hyperparameters and the prompt below, and the adapter itself when it compresses to
        about 100 KB or less (it travels in the URL fragment, never sent to a server). It never holds tokens or local paths.
      </p>
      <Field label="Preset prompt" help="What the playground shows when the link is opened." wide>
        {({ id, describedBy }) => <textarea id={id} aria-describedby={describedBy} className="textarea" rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} data-testid="share-prompt" />}
      </Field>
      {(share.tooLarge || share.publishedAt) && (
        <Field label="Where you published the adapter" help="A Hub repo id (owner/name) or an https URL of a folder with adapter_config.json and adapter_model.safetensors." wide>
          {({ id, describedBy }) => (
            <input id={id} aria-describedby={describedBy} className="input" value={share.publishedAt} onChange={(e) => setPublishedAt(e.target.value)} placeholder="owner/my-adapter or https://…" data-testid="share-published" />
          )}
        </Field>
      )}
      <div className="actions">
        <button type="button" className="button button-primary" disabled={!ready || share.status === 'working'} onClick={() => void makeShareLink().then(() => setCopied(false))} data-testid="make-link">
          {share.status === 'working' ? 'Making the link…' : 'Make the link'}
        </button>
      </div>
      {share.error && (
        <p className="callout callout-warn" role="alert" data-testid="share-error">
          {share.error}
          {share.tooLarge && ' Enter where you published it above, then make the link again.'}
        </p>
      )}
      {share.link && (
        <div className="input-row" data-testid="share-result">
          <input className="input" readOnly value={share.link} aria-label="Demo link" data-testid="share-link" onFocus={(e) => e.target.select()} />
          <button
            type="button"
            className="button"
            onClick={() => void navigator.clipboard?.writeText(share.link!).then(() => setCopied(true), () => setCopied(false))}
            data-testid="copy-link"
          >
            {copied ? 'Copied' : 'Copy'}
          </button>
          <span className="muted small">{formatBytes(share.bytes)} of URL</span>
        </div>
      )}
    </Card>
  );
}

export function ExportPanel() {
  const ready = useStudio((s) => s.load.status === 'ready');
  const adapter = useStudio(hasAdapter);
  const points = useStudio((s) => s.run?.points.length ?? 0);
  return (
    <PanelSection id="export">
      <Card title="Downloads" testId="exports">
        {!adapter && <p className="callout callout-info">Train an adapter first (a paused run can be exported too); the training config and loss history need a model and a run.</p>}
        <div className="runs-list">
          {ITEMS.map((item) => (
            <ExportRow key={item.kind} item={item} disabled={!ready || (item.needsAdapter ? !adapter : item.kind === 'loss-csv' && points === 0)} />
          ))}
        </div>
      </Card>
      <ShareCard />
    </PanelSection>
  );
}
