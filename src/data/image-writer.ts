import type { CacheDtype } from '../cache/format.ts';
import { channelAffine, uint8Lookup, type Normalization } from './normalization.ts';
import { pixelMap, type Orientation } from './orientation.ts';

/**
 * Writes one cached image (uint8 or float32 bytes, HWC) into a float32 batch, normalized and
 * oriented in the same pass. The one code path from stored bytes to model input: the feed uses it
 * for training and validation batches and `predict` for freshly decoded images.
 */
export class ImageWriter {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly dtype: CacheDtype;
  /** Float32 values per image. */
  readonly imageSize: number;
  /** Bytes of one stored image. */
  readonly recordBytes: number;
  private readonly lut: Float32Array;
  private readonly offset: Float64Array;
  private readonly divisor: Float64Array;

  constructor(
    shape: { height: number; width: number; channels: number },
    dtype: CacheDtype,
    normalization: Normalization,
  ) {
    this.height = shape.height;
    this.width = shape.width;
    this.channels = shape.channels;
    this.dtype = dtype;
    this.imageSize = shape.height * shape.width * shape.channels;
    this.recordBytes = this.imageSize * (dtype === 'uint8' ? 1 : 4);
    this.lut = uint8Lookup(normalization, shape.channels);
    ({ offset: this.offset, divisor: this.divisor } = channelAffine(normalization, shape.channels));
  }

  /** `source` holds the image's bytes starting at `byteOffset`; writes imageSize floats at `target[targetOffset]`. */
  write(
    target: Float32Array,
    targetOffset: number,
    source: Uint8Array,
    byteOffset: number,
    orientation: Orientation,
  ): void {
    const { height, width, channels } = this;
    const map = pixelMap(height, width, orientation);
    let o = targetOffset;
    if (this.dtype === 'uint8') {
      const lut = this.lut;
      for (let i = 0; i < height; i++) {
        let p = map.origin + i * map.rowStep;
        for (let j = 0; j < width; j++, p += map.colStep) {
          const base = byteOffset + p * channels;
          for (let c = 0; c < channels; c++) target[o++] = lut[(c << 8) | source[base + c]];
        }
      }
      return;
    }
    // float32 caches: little-endian values; a DataView copes with unaligned shard views
    const view = new DataView(source.buffer, source.byteOffset + byteOffset, this.recordBytes);
    for (let i = 0; i < height; i++) {
      let p = map.origin + i * map.rowStep;
      for (let j = 0; j < width; j++, p += map.colStep) {
        for (let c = 0; c < channels; c++) {
          target[o++] = (view.getFloat32((p * channels + c) * 4, true) - this.offset[c]) / this.divisor[c];
        }
      }
    }
  }
}
