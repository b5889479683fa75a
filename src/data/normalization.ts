import type { ChannelStats } from '../cache/format.ts';

/**
 * How cached pixel values (0..255 scale) become model inputs: "scale" divides by 255,
 * "standardize" applies (x - mean) / std per channel with the manifest's statistics. Recorded in
 * a run's metadata.json so `predict` normalizes exactly like training did.
 */
export interface Normalization {
  mode: 'scale' | 'standardize';
  mean: number[];
  std: number[];
}

export function normalizationFor(mode: 'scale' | 'standardize', stats: ChannelStats): Normalization {
  return { mode, mean: [...stats.mean], std: [...stats.std] };
}

/** Per-channel offset and divisor: (x - offset) / divisor. */
export function channelAffine(n: Normalization, channels: number): { offset: Float64Array; divisor: Float64Array } {
  const offset = new Float64Array(channels);
  const divisor = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    if (n.mode === 'scale') {
      offset[c] = 0;
      divisor[c] = 255;
    } else {
      offset[c] = n.mean[c] ?? 0;
      // a constant channel has std 0; dividing by 1 keeps it finite
      divisor[c] = n.std[c] && n.std[c] > 0 ? n.std[c] : 1;
    }
  }
  return { offset, divisor };
}

/** Lookup table for uint8 inputs: lut[c * 256 + v] = (v - offset_c) / divisor_c as float32. */
export function uint8Lookup(n: Normalization, channels: number): Float32Array {
  const { offset, divisor } = channelAffine(n, channels);
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v - offset[c]) / divisor[c];
  }
  return lut;
}
