// The studio's state (zustand): GPU status and adapter, the self-test, the active panel, the
// theme, errors reported by the engine, and the model / data / training slices (state/*.ts).
// The engine itself lives in a worker; the store only holds a handle to it (EngineApi) and routes
// its events into the slices, so everything here runs in Node tests with a fake engine.

import { create } from 'zustand';
import type { AdapterReport } from '../gpu/runtime.ts';
import { webgpuMissingReason } from '../gpu/browser.ts';
import type { EngineEvent, ProbeResult, SelfTestResult } from '../worker/protocol.ts';
import type { EngineApi } from './engine-client.ts';
import type { PanelId } from './panels.ts';
import { createDataSlice, type DataSlice } from './state/data.ts';
import { createModelSlice, modelEvent, type ModelSlice } from './state/model.ts';
import { createTrainSlice, trainEvent, type TrainSlice } from './state/train.ts';
import { createPlaygroundSlice, playgroundEvent, type PlaygroundSlice } from './state/playground.ts';

export type GpuStatus = 'checking' | 'ready' | 'missing' | 'error';
export type Theme = 'light' | 'dark';
export type ThemeChoice = Theme | 'system';

export interface GpuState {
  status: GpuStatus;
  adapter: AdapterReport | null;
  /** Plain words for the user when the status is 'missing' or 'error'. */
  message: string | null;
}

export interface SelfTestState {
  running: boolean;
  result: SelfTestResult | null;
  error: string | null;
}

export interface ShellState {
  engine: EngineApi | null;
  gpu: GpuState;
  selftest: SelfTestState;
  panel: PanelId;
  /** The user's choice; 'system' follows prefers-color-scheme. */
  themeChoice: ThemeChoice;
  systemTheme: Theme;
  /** Engine errors not tied to a request (device lost, worker crash), newest last. */
  notices: string[];

  attachEngine(engine: EngineApi): void;
  /** Checks the page for WebGPU, then asks the engine worker for its adapter. */
  checkGpu(pageMissingReason?: string | null): Promise<void>;
  runSelfTest(): Promise<void>;
  setPanel(panel: PanelId): void;
  setSystemTheme(theme: Theme): void;
  setThemeChoice(choice: ThemeChoice): void;
  toggleTheme(): void;
  dismissNotice(index: number): void;
}

export type StudioState = ShellState & ModelSlice & DataSlice & TrainSlice & PlaygroundSlice;
export type SetState = (partial: Partial<StudioState> | ((s: StudioState) => Partial<StudioState>)) => void;
export type GetState = () => StudioState;

export const WORKER_WITHOUT_WEBGPU =
  'This browser offers WebGPU to the page but not to Web Workers, and the studio runs its engine in a ' +
  'worker so that training never freezes the page. Use a browser with WebGPU in workers: Chrome or ' +
  'Edge 113+, Safari 26+, or Firefox 141+.';

/** The GPU state for a probe answer; `pageHasWebGpu` tells a worker-only gap from a missing API. */
export function gpuFromProbe(probe: ProbeResult, pageHasWebGpu: boolean): GpuState {
  if (probe.available) return { status: 'ready', adapter: probe.adapter, message: null };
  if (probe.cause === 'no-webgpu' && pageHasWebGpu) return { status: 'missing', adapter: null, message: WORKER_WITHOUT_WEBGPU };
  return { status: 'missing', adapter: null, message: probe.reason };
}

export function effectiveTheme(s: Pick<StudioState, 'themeChoice' | 'systemTheme'>): Theme {
  return s.themeChoice === 'system' ? s.systemTheme : s.themeChoice;
}

/** A software adapter: the browser's fallback adapter, or SwiftShader (Chromium's CPU Vulkan). */
export function isSoftwareAdapter(a: AdapterReport): boolean {
  return a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|warp|software/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

export function isSwiftShader(a: AdapterReport): boolean {
  return /swiftshader/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

const MAX_NOTICES = 5;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function createStudioStore(initial: Partial<Pick<StudioState, 'themeChoice' | 'systemTheme' | 'panel'>> = {}) {
  return create<StudioState>()((set, get) => {
    let detach: (() => void) | null = null;
    const onEvent = (e: EngineEvent) => {
      modelEvent(e, set);
      trainEvent(e, set);
      playgroundEvent(e, set);
    };
    return {
      ...createModelSlice(set, get),
      ...createDataSlice(set, get),
      ...createTrainSlice(set, get),
      ...createPlaygroundSlice(set, get),
      engine: null,
      gpu: { status: 'checking', adapter: null, message: null },
      selftest: { running: false, result: null, error: null },
      panel: initial.panel ?? 'model',
      themeChoice: initial.themeChoice ?? 'system',
      systemTheme: initial.systemTheme ?? 'light',
      notices: [],

      attachEngine(engine) {
        detach?.();
        const offError = engine.onError((err) => set((s) => ({ notices: [...s.notices, err.message].slice(-MAX_NOTICES) })));
        const offEvent = engine.onEvent(onEvent);
        detach = () => {
          offError();
          offEvent();
        };
        set({ engine, selftest: { running: false, result: null, error: null } });
      },

      async checkGpu(pageMissingReason = webgpuMissingReason()) {
        set({ gpu: { status: 'checking', adapter: null, message: null } });
        if (pageMissingReason) {
          set({ gpu: { status: 'missing', adapter: null, message: pageMissingReason } });
          return;
        }
        const engine = get().engine;
        if (!engine) {
          set({ gpu: { status: 'error', adapter: null, message: 'The engine worker is not running.' } });
          return;
        }
        try {
          const probe = await engine.probe();
          if (get().engine === engine) set({ gpu: gpuFromProbe(probe, true) });
        } catch (err) {
          if (get().engine === engine) set({ gpu: { status: 'error', adapter: null, message: errorText(err) } });
        }
      },

      async runSelfTest() {
        const { engine, gpu, selftest } = get();
        if (selftest.running) return;
        if (!engine || gpu.status !== 'ready') {
          set({ selftest: { running: false, result: null, error: 'The self-test needs a working WebGPU adapter.' } });
          return;
        }
        set({ selftest: { running: true, result: null, error: null } });
        try {
          const result = await engine.selftest();
          set({ selftest: { running: false, result, error: null } });
        } catch (err) {
          set({ selftest: { running: false, result: null, error: errorText(err) } });
        }
      },

      setPanel(panel) {
        set({ panel });
      },
      setSystemTheme(systemTheme) {
        set({ systemTheme });
      },
      setThemeChoice(themeChoice) {
        set({ themeChoice });
      },
      toggleTheme() {
        set((s) => ({ themeChoice: effectiveTheme(s) === 'dark' ? 'light' : 'dark' }));
      },
      dismissNotice(index) {
        set((s) => ({ notices: s.notices.filter((_, i) => i !== index) }));
      },
    };
  });
}

export type StudioStore = ReturnType<typeof createStudioStore>;

/** The app's store (created at import; main.tsx attaches the engine and starts the GPU check). */
export const useStudio: StudioStore = createStudioStore();
