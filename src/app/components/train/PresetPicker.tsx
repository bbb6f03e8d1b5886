import { TRAIN_PRESETS } from '../../../train/train-config.ts';
import { matchesPreset } from '../../state/train.ts';
import { useStudio } from '../../store.ts';

/** The three presets as cards; editing a setting afterwards marks the preset as changed. */
export function PresetPicker({ disabled }: { disabled: boolean }) {
  const presetId = useStudio((s) => s.presetId);
  const apply = useStudio((s) => s.applyPreset);
  const exact = useStudio(matchesPreset);
  return (
    <div className="presets" role="radiogroup" aria-label="Presets">
      {TRAIN_PRESETS.map((p) => {
        const on = presetId === p.id;
        return (
          <button
            key={p.id}
            type="button"
            role="radio"
            aria-checked={on}
            className={`preset${on ? ' is-on' : ''}`}
            disabled={disabled}
            onClick={() => apply(p.id)}
            data-testid={`preset-${p.id}`}
          >
            <span className="preset-name">
              {p.name}
              {on && !exact && <span className="tag">changed</span>}
            </span>
            <span className="preset-desc">{p.description}</span>
          </button>
        );
      })}
    </div>
  );
}
