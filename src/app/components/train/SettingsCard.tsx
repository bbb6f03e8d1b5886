import { useShallow } from 'zustand/react/shallow';
import { LORA_MODULES, validateLoraConfig, type LoraModule } from '../../../train/lora-config.ts';
import { SCHEDULE_KINDS, effectiveBatch, validateTrainConfig, type ScheduleKind, type TrainConfig } from '../../../train/train-config.ts';
import { defaultGpuBudget } from '../../../llm/memory-estimate.ts';
import { formatBytes } from '../../format.ts';
import { isRunActive } from '../../state/train.ts';
import { useStudio } from '../../store.ts';
import { Card } from '../Card.tsx';
import { Field } from '../Field.tsx';
import { NumberInput } from '../NumberInput.tsx';

const MiB = 1024 * 1024;

/** Per-field problems from the engine's validation (each line starts with the field's name). */
function problems(validate: () => void): Record<string, string> {
  try {
    validate();
    return {};
  } catch (e) {
    const out: Record<string, string> = {};
    for (const line of (e as Error).message.split('\n').slice(1)) {
      const text = line.replace(/^- /, '');
      const field = /^(\w+)/.exec(text)?.[1];
      if (field && !out[field]) out[field] = text[0]!.toUpperCase() + text.slice(1) + '.';
    }
    if (/set maxSteps or epochs/.test((e as Error).message)) out.maxSteps = 'Set steps or epochs above 0.';
    return out;
  }
}

export function SettingsCard() {
  const s = useStudio(
    useShallow((st) => ({
      train: st.train,
      lora: st.lora,
      packing: st.packing,
      evalEvery: st.evalEvery,
      checkpointEvery: st.checkpointEvery,
      budget: st.budget,
      limits: st.gpu.adapter?.limits,
      active: isRunActive(st.run),
      setTrain: st.setTrain,
      setLora: st.setLora,
      setPacking: st.setPacking,
      setEvalEvery: st.setEvalEvery,
      setCheckpointEvery: st.setCheckpointEvery,
      setBudget: st.setBudget,
    })),
  );
  const t = s.train;
  const l = s.lora;
  const tErr = problems(() => validateTrainConfig(t));
  const lErr = problems(() => validateLoraConfig(l));
  const dis = s.active;
  const num = (key: keyof TrainConfig, opts: { integer?: boolean; min?: number; max?: number } = {}) =>
    ({ id, describedBy }: { id: string; describedBy: string }) => (
      <NumberInput id={id} describedBy={describedBy} value={t[key] as number} disabled={dis} {...opts} onChange={(v) => s.setTrain({ [key]: v })} />
    );
  const defaultBudget = defaultGpuBudget(s.limits);

  return (
    <Card title="Settings" testId="train-settings" aside={dis ? <span className="muted small">locked while the run is active</span> : undefined}>
      <div className="settings">
        <fieldset className="group">
          <legend>LoRA adapter</legend>
          <div className="field-grid">
            <Field label="Rank r" help="Size of the low-rank update: more capacity and memory. 8–64 is usual." error={lErr.r}>
              {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={l.r} integer min={1} disabled={dis} onChange={(v) => s.setLora({ r: v })} />}
            </Field>
            <Field label="Alpha" help={`The update is scaled by alpha/${l.useRslora ? '√r' : 'r'} = ${(l.useRslora ? l.alpha / Math.sqrt(l.r) : l.alpha / l.r).toFixed(3)}.`} error={lErr.alpha}>
              {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={l.alpha} min={0} disabled={dis} onChange={(v) => s.setLora({ alpha: v })} />}
            </Field>
            <Field label="Dropout" help="Zeroes random LoRA inputs while training, against overfitting." error={lErr.dropout}>
              {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={l.dropout} min={0} max={0.99} disabled={dis} onChange={(v) => s.setLora({ dropout: v })} />}
            </Field>
            <Field label="Scaling" help="rsLoRA divides by √r instead of r: steadier at high ranks.">
              {({ id, describedBy }) => (
                <label className="check">
                  <input id={id} type="checkbox" checked={l.useRslora} disabled={dis} aria-describedby={describedBy} onChange={(e) => s.setLora({ useRslora: e.target.checked })} />
                  rsLoRA
                </label>
              )}
            </Field>
          </div>
          <div className="field field-wide">
            <span className="field-label" id="targets-label">
              Target modules
            </span>
            <div className="checks" role="group" aria-labelledby="targets-label" data-testid="target-modules">
              {LORA_MODULES.map((m) => (
                <label key={m} className="check">
                  <input
                    type="checkbox"
                    checked={l.targetModules.includes(m)}
                    disabled={dis}
                    onChange={(e) => {
                      const set = new Set<LoraModule>(l.targetModules);
                      if (e.target.checked) set.add(m);
                      else set.delete(m);
                      s.setLora({ targetModules: LORA_MODULES.filter((x) => set.has(x)) });
                    }}
                  />
                  <code>{m}</code>
                </label>
              ))}
            </div>
            <p className={lErr.targetModules ? 'field-error' : 'field-help'}>
              {lErr.targetModules ?? 'The linears that get an adapter: attention (q, k, v, o) and MLP (gate, up, down). All seven is the QLoRA recipe.'}
            </p>
          </div>
        </fieldset>

        <fieldset className="group">
          <legend>Optimizer</legend>
          <div className="field-grid">
            <Field label="Learning rate" help="Peak AdamW step size; 1e-4 to 3e-4 suits LoRA." error={tErr.lr}>
              {num('lr', { min: 0 })}
            </Field>
            <Field label="Schedule" help="After warmup: keep the rate, or decay it linearly or along a cosine to 0.">
              {({ id, describedBy }) => (
                <select id={id} className="input" value={t.schedule} disabled={dis} aria-describedby={describedBy} onChange={(e) => s.setTrain({ schedule: e.target.value as ScheduleKind })}>
                  {SCHEDULE_KINDS.map((k) => (
                    <option key={k} value={k}>
                      {k}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Warmup steps" help="Steps ramping the rate up from 0; 0 uses the ratio." error={tErr.warmupSteps}>
              {num('warmupSteps', { integer: true, min: 0 })}
            </Field>
            <Field label="Warmup ratio" help="Share of all steps used for warmup when warmup steps is 0." error={tErr.warmupRatio}>
              {num('warmupRatio', { min: 0, max: 1 })}
            </Field>
            <Field label="Max grad norm" help="Clips the gradient’s global norm (0.3 in QLoRA); 0 turns it off." error={tErr.maxGradNorm}>
              {num('maxGradNorm', { min: 0 })}
            </Field>
            <Field label="Weight decay" help="Shrinks the adapter each step; QLoRA uses 0 and relies on dropout." error={tErr.weightDecay}>
              {num('weightDecay', { min: 0 })}
            </Field>
            <Field label="Adam β1 / β2" help="Decay rates of Adam’s first and second moments." error={tErr.beta1 ?? tErr.beta2}>
              {({ id, describedBy }) => (
                <div className="input-pair">
                  <NumberInput id={id} describedBy={describedBy} value={t.beta1} min={0} max={0.9999} disabled={dis} label="Adam beta1" onChange={(v) => s.setTrain({ beta1: v })} />
                  <NumberInput id={`${id}-b2`} describedBy={describedBy} value={t.beta2} min={0} max={0.99999} disabled={dis} label="Adam beta2" onChange={(v) => s.setTrain({ beta2: v })} />
                </div>
              )}
            </Field>
            <Field label="Adam ε" help="Added to the denominator for numerical safety." error={tErr.eps}>
              {num('eps', { min: 0 })}
            </Field>
          </div>
        </fieldset>

        <fieldset className="group">
          <legend>Steps and batches</legend>
          <div className="field-grid">
            <Field label="Steps" help="Optimizer steps to run; 0 runs whole epochs instead." error={tErr.maxSteps}>
              {num('maxSteps', { integer: true, min: 0 })}
            </Field>
            <Field label="Epochs" help="Passes over the training split when steps is 0." error={tErr.epochs}>
              {num('epochs', { integer: true, min: 0 })}
            </Field>
            <Field label="Batch size" help="Sequences per forward and backward pass; more needs more memory." error={tErr.batchSize}>
              {num('batchSize', { integer: true, min: 1 })}
            </Field>
            <Field label="Gradient accumulation" help={`Passes summed per step: ${effectiveBatch(t)} sequences per optimizer step.`} error={tErr.gradAccum}>
              {num('gradAccum', { integer: true, min: 1 })}
            </Field>
            <Field label="Sequence length" help="Tokens per sequence; longer chats are dropped, longer text is split." error={tErr.seqLen}>
              {num('seqLen', { integer: true, min: 2 })}
            </Field>
            <Field label="Packing" help="Put several short examples in one sequence: less padding, same loss.">
              {({ id, describedBy }) => (
                <label className="check">
                  <input id={id} type="checkbox" checked={s.packing} disabled={dis} aria-describedby={describedBy} onChange={(e) => s.setPacking(e.target.checked)} />
                  pack examples
                </label>
              )}
            </Field>
          </div>
        </fieldset>

        <fieldset className="group">
          <legend>Evaluation, checkpoints, memory</legend>
          <div className="field-grid">
            <Field label="Eval split" help="Held out for eval loss: a fraction (0.05) or a count (20)." error={tErr.evalSplit}>
              {num('evalSplit', { min: 0 })}
            </Field>
            <Field label="Eval every" help="Eval loss every N steps; 0: before and after only.">
              {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={s.evalEvery} integer min={0} disabled={dis} onChange={s.setEvalEvery} />}
            </Field>
            <Field label="Checkpoint every" help="Save the run every N steps (always on pause and stop).">
              {({ id, describedBy }) => <NumberInput id={id} describedBy={describedBy} value={s.checkpointEvery} integer min={0} disabled={dis} onChange={s.setCheckpointEvery} />}
            </Field>
            <Field label="Seed" help="Same seed: same data order, LoRA init and dropout — the same run." error={tErr.seed ?? lErr.seed}>
              {({ id, describedBy }) => (
                <NumberInput id={id} describedBy={describedBy} value={t.seed} integer min={0} disabled={dis} onChange={(v) => (s.setTrain({ seed: v }), s.setLora({ seed: v }))} />
              )}
            </Field>
            <Field
              label="GPU budget (MiB)"
              help={`Memory the run may use; beyond it AdamW state pages to browser storage. Default ${formatBytes(defaultBudget)}.`}
              wide
            >
              {({ id, describedBy }) => (
                <div className="input-row">
                  <NumberInput
                    id={id}
                    describedBy={describedBy}
                    value={Math.round((s.budget ?? defaultBudget) / MiB)}
                    integer
                    min={1}
                    disabled={dis}
                    onChange={(v) => s.setBudget(v * MiB)}
                  />
                  {s.budget !== null && (
                    <button type="button" className="button button-quiet" disabled={dis} onClick={() => s.setBudget(null)}>
                      Use default
                    </button>
                  )}
                </div>
              )}
            </Field>
          </div>
        </fieldset>
      </div>
    </Card>
  );
}
