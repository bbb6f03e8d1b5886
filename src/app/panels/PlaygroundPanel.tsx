import { Card } from '../components/Card.tsx';
import { Field } from '../components/Field.tsx';
import { NumberInput } from '../components/NumberInput.tsx';
import { PanelSection } from '../components/PanelSection.tsx';
import { hasAdapter, type GenOutput, type Side } from '../state/playground.ts';
import { useStudio } from '../store.ts';

function OutputCard({ side, title, output, note }: { side: Side; title: string; output: GenOutput; note: string | null }) {
  const rate = output.tokensPerSecond;
  return (
    <Card
      title={title}
      testId={`output-${side}`}
      aside={
        <span className="muted small" data-testid={`output-${side}-rate`}>
          {output.status === 'running' ? 'generating… ' : ''}
          {rate !== null ? `${rate.toFixed(1)} tokens/s` : ''}
          {output.finish ? ` · ${output.tokens} tokens · ${output.finish === 'eos' ? 'stopped at EOS' : output.finish}` : ''}
        </span>
      }
    >
      {output.error ? (
        <p className="callout callout-bad" role="alert" data-testid={`output-${side}-error`}>
          {output.error}
        </p>
      ) : note && output.status === 'idle' ? (
        <p className="muted">{note}</p>
      ) : (
        <pre className="preview-text playground-output" data-testid={`output-${side}-text`} data-status={output.status} aria-live="polite">
          {output.text || (output.status === 'running' ? '…' : '')}
        </pre>
      )}
    </Card>
  );
}

export function PlaygroundPanel() {
  const ready = useStudio((s) => s.load.status === 'ready');
  const modelName = useStudio((s) => s.load.info?.name ?? null);
  const template = useStudio((s) => (s.load.info ? `${s.load.info.template}${s.load.info.templateIsFallback ? ' (fallback: the model has none)' : ''}` : null));
  const prompt = useStudio((s) => s.prompt);
  const chat = useStudio((s) => s.chat);
  const sampling = useStudio((s) => s.sampling);
  const outputs = useStudio((s) => s.outputs);
  const adapter = useStudio(hasAdapter);
  const runState = useStudio((s) => s.run?.state ?? null);
  const linked = useStudio((s) => s.linkedAdapter);
  const { setPrompt, setChat, setSampling, generateBoth, stopGenerating } = useStudio.getState();
  const running = outputs.base.status === 'running' || outputs.tuned.status === 'running';
  const trainingNow = runState === 'running' || runState === 'preparing' || runState === 'pausing';
  const adapterLabel = linked ? 'the adapter from the demo link' : runState === 'paused' ? 'the paused run’s adapter' : adapter ? 'the trained adapter' : null;
  return (
    <PanelSection id="playground">
      <Card title="Prompt" testId="playground-prompt">
        {!ready && <p className="callout callout-info">Load a model first (Model panel); the playground runs it in this tab.</p>}
        {ready && (
          <p className="muted small" data-testid="playground-model">
            {modelName} · chat template: {chat ? template : 'off (raw text)'} · {adapterLabel ? `fine-tuned with ${adapterLabel}` : 'no adapter yet: train one to compare'}
          </p>
        )}
        {trainingNow && <p className="callout callout-warn">Training is running: generation waits for a pause between steps (pause the run to chat now).</p>}
        <Field label="Message" help="Sent as one user turn through the model’s chat template, with the generation prompt added." wide>
          {({ id, describedBy }) => (
            <textarea
              id={id}
              aria-describedby={describedBy}
              className="textarea"
              rows={3}
              value={prompt}
              onChange={(e) => setPrompt(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void generateBoth();
              }}
              data-testid="playground-input"
            />
          )}
        </Field>
        <div className="field-grid" data-testid="sampling">
          <Field label="Temperature" help="0: greedy (always the likeliest token).">
            {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={sampling.temperature} min={0} max={5} onChange={(v) => setSampling({ temperature: v })} />}
          </Field>
          <Field label="Top-p" help="Nucleus: keep the likeliest tokens up to this mass.">
            {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={sampling.topP} min={0} max={1} onChange={(v) => setSampling({ topP: v })} />}
          </Field>
          <Field label="Top-k" help="Keep the k likeliest (0: all).">
            {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={sampling.topK} min={0} integer onChange={(v) => setSampling({ topK: v })} />}
          </Field>
          <Field label="Max tokens" help="New tokens at most (EOS stops earlier).">
            {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={sampling.maxNewTokens} min={1} max={4096} integer onChange={(v) => setSampling({ maxNewTokens: v })} />}
          </Field>
          <Field label="Repetition penalty" help="1: off; above 1 discourages repeats.">
            {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={sampling.repetitionPenalty} min={0.5} max={3} onChange={(v) => setSampling({ repetitionPenalty: v })} />}
          </Field>
          <Field label="Seed" help="Both sides sample with this seed.">
            {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={sampling.seed} min={0} integer onChange={(v) => setSampling({ seed: v })} />}
          </Field>
        </div>
        <div className="actions">
          <label className="check">
            <input type="checkbox" checked={chat} onChange={(e) => setChat(e.target.checked)} data-testid="playground-chat" /> Apply the chat template
          </label>
          <button type="button" className="button button-primary" disabled={!ready || running || !prompt.trim()} onClick={() => void generateBoth()} data-testid="generate">
            {adapter ? 'Generate (base and fine-tuned)' : 'Generate'}
          </button>
          <button type="button" className="button button-quiet" disabled={!running} onClick={() => void stopGenerating()} data-testid="stop-generate">
            Stop
          </button>
        </div>
      </Card>
      <div className="grid-2">
        <OutputCard side="base" title="Base model" output={outputs.base} note={null} />
        <OutputCard side="tuned" title="Fine-tuned" output={outputs.tuned} note={adapter ? 'Generate to compare.' : 'No adapter yet: train one (a paused run works too), or open a demo link.'} />
      </div>
    </PanelSection>
  );
}
