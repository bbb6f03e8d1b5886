// The config numbers (from each Hub repo's config.json) of the small models the studio suggests:
// the app's catalog sizes its memory estimate with them before anything is downloaded, and the
// estimate's tests check parameter counts against what the Hub shows.

import type { ModelDims } from './memory-estimate.ts';

export const SMOLLM2_135M: ModelDims = {
  numLayers: 30, hiddenSize: 576, intermediateSize: 1536, numHeads: 9, numKvHeads: 3, headDim: 64, vocabSize: 49152,
  tieWordEmbeddings: true, maxPositionEmbeddings: 8192,
};
export const SMOLLM2_360M: ModelDims = {
  numLayers: 32, hiddenSize: 960, intermediateSize: 2560, numHeads: 15, numKvHeads: 5, headDim: 64, vocabSize: 49152,
  tieWordEmbeddings: true, maxPositionEmbeddings: 8192,
};
export const QWEN25_05B: ModelDims = {
  numLayers: 24, hiddenSize: 896, intermediateSize: 4864, numHeads: 14, numKvHeads: 2, headDim: 64, vocabSize: 151936,
  tieWordEmbeddings: true, attentionBias: true, maxPositionEmbeddings: 32768,
};
export const LLAMA32_1B: ModelDims = {
  numLayers: 16, hiddenSize: 2048, intermediateSize: 8192, numHeads: 32, numKvHeads: 8, headDim: 64, vocabSize: 128256,
  tieWordEmbeddings: true, maxPositionEmbeddings: 131072,
};
export const TINYLLAMA: ModelDims = {
  numLayers: 22, hiddenSize: 2048, intermediateSize: 5632, numHeads: 32, numKvHeads: 4, headDim: 64, vocabSize: 32000,
  tieWordEmbeddings: false, maxPositionEmbeddings: 2048,
};
