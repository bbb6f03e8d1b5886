import { catalogModel } from '../../catalog.ts';
import { formatBytes, formatCount, formatMs, formatParams } from '../../format.ts';
import { cachedToLoad, isSelectedLoaded } from '../../state/model.ts';
import { useStudio } from '../../store.ts';
import type { QuantMode } from '../../../worker/protocol.ts';
import { Card } from '../Card.tsx';
import { ErrorCallout } from '../ErrorCallout.tsx';
import { Field } from '../Field.tsx';
import { ProgressBar } from '../ProgressBar.tsx';
import { DownloadProgress } from './DownloadProgress.tsx';

const QUANT_HELP: Record<QuantMode, string> = {
  nf4: 'NF4 with double-quantized scales, as in the QLoRA paper: about 4.1 bits per weight.',
  fp4: '4-bit float instead of NormalFloat: the same size, usually a little less accurate.',
  none: 'Keep the base in f32: 8× the memory of NF4; for small models and comparisons.',
};

export function ModelLoadCard() {
  const s = useStudio((st) => st);
  const { load, download, modelOrigin } = s;
  const gpuReady = s.gpu.status === 'ready';
  const busy = load.status === 'fetching' || load.status === 'loading';
  const running = s.run !== null && !['done', 'stopped', 'error'].includes(s.run.state);
  const selectedLoaded = isSelectedLoaded(s);
  const cachedComplete = modelOrigin === 'hub' && cachedToLoad(s.cache.models, s.hubRepo, s.hubRevision, s.quant) !== null;
  const prequantized = modelOrigin === 'hub' ? (catalogModel(s.hubRepo)?.bnb4bit ?? s.hubConfigs[s.hubRepo]?.config?.prequantized ?? false) : (s.localInspection.info?.prequantized ?? false);
  const canLoad = gpuReady && !busy && !running && (modelOrigin === 'hub' ? true : s.localInspection.status === 'ready');
  const label = modelOrigin === 'hub' ? (cachedComplete ? 'Load from cache' : 'Download and load') : 'Load model';
  const info = load.info;

  return (
    <Card title="Load" testId="model-load" aside={load.status === 'ready' && info ? <span className="tag tag-ok">on the GPU</span> : undefined}>
      <div className="load-row">
        <Field label="Base weights" help={prequantized ? 'This checkpoint is already 4-bit (bitsandbytes); it loads as stored.' : QUANT_HELP[s.quant]}>
          {({ id, describedBy }) => (
            <select id={id} className="input" value={prequantized ? 'nf4' : s.quant} disabled={busy || running || prequantized} aria-describedby={describedBy} onChange={(e) => s.setQuant(e.target.value as QuantMode)}>
              <option value="nf4">NF4 + double quant</option>
              <option value="fp4">FP4 + double quant</option>
              <option value="none">f32 (no quantization)</option>
            </select>
          )}
        </Field>
        <button
          type="button"
          className={`button load-button${selectedLoaded ? '' : ' button-primary'}`}
          disabled={!canLoad}
          onClick={() => void s.loadSelectedModel()}
          data-testid="load-model"
        >
          {busy ? (load.status === 'fetching' ? (download?.kind === 'import' ? 'Copying…' : 'Downloading…') : 'Loading…') : selectedLoaded ? 'Reload' : label}
        </button>
      </div>
      {modelOrigin === 'hub' && !prequantized && s.quant !== 'none' && !cachedComplete && (
        <div className="checks">
          <label className="check small">
            <input type="checkbox" checked={s.quantizeOnDownload} disabled={busy} onChange={(e) => s.setDownloadOptions({ quantizeOnDownload: e.target.checked })} />
            Store a 4-bit copy as it downloads (next visit loads it directly)
          </label>
          {s.quantizeOnDownload && (
            <label className="check small">
              <input type="checkbox" checked={s.keepOriginal} disabled={busy} onChange={(e) => s.setDownloadOptions({ keepOriginal: e.target.checked })} />
              Keep the full-precision files too
            </label>
          )}
        </div>
      )}
      {!gpuReady && <p className="muted small">Loading needs WebGPU: see the GPU panel.</p>}
      {download && (download.status !== 'done' || download.repo === (info?.cached?.repo ?? '')) && (
        <DownloadProgress download={download} onPause={() => void s.pauseDownload()} onResume={() => void s.loadSelectedModel()} />
      )}
      {download?.error && (
        <ErrorCallout error={download.error} testId="download-error">
          {download.kind === 'download' && (
            <button type="button" className="button" onClick={() => void s.loadSelectedModel()}>
              Try again (resumes)
            </button>
          )}
        </ErrorCallout>
      )}
      {load.status === 'loading' && (
        <div className="load-progress" data-testid="load-progress">
          <ProgressBar value={load.progress ? load.progress.done / load.progress.total : null} label="Loading the model onto the GPU" />
          <p className="muted small">
            {load.progress ? `Quantizing and uploading ${load.progress.done} of ${load.progress.total} tensors · ${load.progress.name}` : 'Reading the weights…'}
          </p>
        </div>
      )}
      {load.error && !download?.error && <ErrorCallout error={load.error} testId="load-error" />}
      {load.status === 'ready' && info && (
        <dl className="facts" data-testid="loaded-model">
          <dt>Model</dt>
          <dd data-testid="loaded-name">{info.name}</dd>
          <dt>Architecture</dt>
          <dd>
            {info.modelType}, {info.dims.numLayers} layers, hidden {info.dims.hiddenSize}, vocabulary {formatCount(info.vocabSize)}
          </dd>
          <dt>Parameters</dt>
          <dd>{formatParams(info.params)}</dd>
          <dt>On the GPU</dt>
          <dd>
            {formatBytes(info.weightBytes)} of weights ({info.quant === 'none' ? 'f32' : `${info.quant.toUpperCase()}${info.prequantized ? ', as stored' : ''}`}), loaded in {formatMs(info.loadMs)}
          </dd>
          <dt>Chat template</dt>
          <dd>{info.templateIsFallback ? 'none in the model: a plain “### Human / ### Assistant” one is used' : info.template}</dd>
        </dl>
      )}
    </Card>
  );
}
