import { useMemo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { estimateMemory, type MemoryEstimate } from '../../llm/memory-estimate.ts';
import { selectedDims } from '../state/model.ts';
import { gpuBudget } from '../state/train.ts';
import { useStudio } from '../store.ts';

/** The memory estimate for the selected model and current settings (recomputed only when they change). */
export function useEstimate(): MemoryEstimate | null {
  const i = useStudio(
    useShallow((s) => ({
      dims: selectedDims(s),
      r: s.lora.r,
      targetModules: s.lora.targetModules,
      batchSize: s.train.batchSize,
      seqLen: s.train.seqLen,
      quant: s.quant,
      limits: s.gpu.adapter?.limits,
      budget: gpuBudget(s),
    })),
  );
  return useMemo(
    () =>
      i.dims
        ? estimateMemory({
            model: i.dims,
            lora: { r: i.r, targetModules: i.targetModules },
            batchSize: i.batchSize,
            seqLen: i.seqLen,
            quant: i.quant,
            limits: i.limits,
            budget: i.budget,
          })
        : null,
    [i.dims, i.r, i.targetModules, i.batchSize, i.seqLen, i.quant, i.limits, i.budget],
  );
}
