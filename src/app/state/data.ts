// The data part of the studio's state: where the examples come from (the shipped sample, a file,
// pasted text, or a Hugging Face dataset), the format (detected or chosen) and which tokens are
// trained, and the prepared summary (statistics, histogram, previews) from the engine.

import type { FormatName } from '../../data/formats.ts';
import type { LabelMode } from '../../data/labels.ts';
import type { DataOptions, DataSpec, DataSummary } from '../../worker/protocol.ts';
import { errorInfo, type ErrorInfo } from '../errors.ts';
import { datasetsEndpointFor } from '../hub-settings.ts';
import type { GetState, SetState, StudioState } from '../store.ts';

export type DataChoice = 'sample' | 'file' | 'paste' | 'hf';

export interface SampleDataset {
  id: string;
  name: string;
  file: string;
  description: string;
}

export const SAMPLES: readonly SampleDataset[] = [
  {
    id: 'plant-care',
    name: 'Plant-care chat',
    file: 'plant-care-chat.jsonl',
    description: '40 short chats in which a helper answers plant questions briefly and signs off with “Happy growing!”.',
  },
];

export interface DataSlice {
  dataChoice: DataChoice;
  sampleId: string;
  dataFile: File | null;
  pasteText: string;
  hfDataset: { dataset: string; config: string; split: string; maxRows: number };
  dataFormat: FormatName | 'auto';
  labelMode: LabelMode;
  data: { status: 'idle' | 'preparing' | 'ready' | 'error'; summary: DataSummary | null; error: ErrorInfo | null; key: string | null };

  setDataChoice(choice: DataChoice): void;
  setDataFile(file: File | null): void;
  setPasteText(text: string): void;
  setHfDataset(p: Partial<DataSlice['hfDataset']>): void;
  setDataFormat(format: FormatName | 'auto'): void;
  setLabelMode(mode: LabelMode): void;
  /** Prepares the chosen data with the model's tokenizer and the training settings. */
  prepareData(): Promise<void>;
  /** Called once a model is on the GPU: prepares the chosen data for it. */
  onModelLoaded(): void;
}

/** The chosen data as the engine takes it, or null while incomplete. */
export function dataSpec(s: StudioState): DataSpec | null {
  switch (s.dataChoice) {
    case 'sample': {
      const sample = SAMPLES.find((x) => x.id === s.sampleId) ?? SAMPLES[0]!;
      return { kind: 'url', name: sample.file, url: sampleUrl(sample.file) };
    }
    case 'file':
      return s.dataFile ? { kind: 'file', file: s.dataFile } : null;
    case 'paste':
      return s.pasteText.trim() ? { kind: 'text', name: 'pasted text', text: s.pasteText } : null;
    case 'hf': {
      if (!s.hfDataset.dataset.trim()) return null;
      // The dataset viewer endpoint from the Hub access settings (absent for the default). A run's
      // record keeps it (never the token), so resuming reads the same rows from the same server.
      const endpoint = datasetsEndpointFor(s.hub);
      return {
        kind: 'hf',
        dataset: s.hfDataset.dataset.trim(),
        config: s.hfDataset.config.trim() || undefined,
        split: s.hfDataset.split.trim() || undefined,
        ...(endpoint ? { endpoint } : {}),
        token: s.hub.token || undefined,
      };
    }
  }
}

/** The pipeline options: the data settings plus the training settings that shape sequences. */
export function dataOptions(s: StudioState): DataOptions {
  return {
    format: s.dataFormat,
    labelMode: s.labelMode,
    maxLength: s.train.seqLen,
    packing: s.packing,
    evalSplit: s.train.evalSplit,
    seed: s.train.seed,
    batchSize: s.train.batchSize,
    ...(s.dataChoice === 'hf' ? { maxRows: s.hfDataset.maxRows } : {}),
  };
}

/** Identifies what a preparation used (the data shown is stale when the current key differs). */
export function dataKey(s: StudioState): string | null {
  const spec = dataSpec(s);
  if (!spec) return null;
  const what =
    spec.kind === 'file' ? `${spec.file.name}:${spec.file.size}:${spec.file.lastModified}` : spec.kind === 'text' ? `${spec.text.length}:${spec.text.slice(0, 64)}` : JSON.stringify({ ...spec, token: undefined });
  return JSON.stringify([s.dataChoice, what, dataOptions(s), s.load.info?.name ?? null]);
}

function sampleUrl(file: string): string {
  const base = (import.meta as { env?: { BASE_URL?: string } }).env?.BASE_URL ?? '/';
  const path = `${base}samples/${file}`;
  return typeof location !== 'undefined' ? new URL(path, location.href).href : path;
}

export function createDataSlice(set: SetState, get: GetState): DataSlice {
  let seq = 0;
  return {
    dataChoice: 'sample',
    sampleId: SAMPLES[0]!.id,
    dataFile: null,
    pasteText: '',
    hfDataset: { dataset: '', config: '', split: '', maxRows: 2000 },
    dataFormat: 'auto',
    labelMode: 'assistant',
    data: { status: 'idle', summary: null, error: null, key: null },

    setDataChoice(dataChoice) {
      set({ dataChoice });
    },
    setDataFile(dataFile) {
      set({ dataFile, dataChoice: 'file', dataFormat: 'auto' });
    },
    setPasteText(pasteText) {
      set({ pasteText });
    },
    setHfDataset(p) {
      set((s) => ({ hfDataset: { ...s.hfDataset, ...p } }));
    },
    setDataFormat(dataFormat) {
      set({ dataFormat });
    },
    setLabelMode(labelMode) {
      set({ labelMode });
    },

    async prepareData() {
      const s = get();
      const engine = s.engine;
      const spec = dataSpec(s);
      const key = dataKey(s);
      if (!engine || !spec) return;
      if (s.load.status !== 'ready') {
        set({ data: { status: 'idle', summary: null, error: null, key: null } });
        return;
      }
      const mine = ++seq;
      set((st) => ({ data: { ...st.data, status: 'preparing', error: null } }));
      try {
        const summary = await engine.call('prepareData', { spec, options: dataOptions(s) });
        if (mine === seq) set({ data: { status: 'ready', summary, error: null, key } });
      } catch (err) {
        if (mine === seq) set({ data: { status: 'error', summary: null, error: errorInfo(err, 'data'), key } });
      }
    },

    onModelLoaded() {
      const s = get();
      if (s.dataChoice !== 'hf' && dataSpec(s)) void s.prepareData();
    },
  };
}
