/**
 * The little of a JPEG header the decoder needs before decoding: how many colour components the
 * frame has (4 = CMYK/YCCK) and whether an ICC profile is embedded (APP2 "ICC_PROFILE"). Walks
 * the marker segments up to the frame header, reading only segment headers through `read`.
 */

export interface JpegColour {
  components: number;
  icc: boolean;
}

/** SOF0-3, 5-7, 9-11, 13-15: the frame headers (C4 = DHT, C8 = JPG, CC = DAC are not). */
function isFrameHeader(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

const ICC_TAG = 'ICC_PROFILE\0';
/** Segments walked at most: real files have a handful before the frame header. */
const MAX_SEGMENTS = 512;

/**
 * `read(offset, length)` returns up to `length` bytes at `offset` (fewer at the end of the data).
 * Null when no frame header is found (the decoder then reports the damage).
 */
export function readJpegColour(read: (offset: number, length: number) => Uint8Array): JpegColour | null {
  let offset = 2;
  let icc = false;
  for (let n = 0; n < MAX_SEGMENTS; n++) {
    const head = read(offset, 4 + ICC_TAG.length);
    if (head.length < 2 || head[0] !== 0xff) return null;
    const marker = head[1];
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda || head.length < 4) return null;
    const length = (head[2] << 8) | head[3];
    if (length < 2) return null;
    if (isFrameHeader(marker)) {
      const frame = read(offset + 4, 6);
      return frame.length === 6 ? { components: frame[5], icc } : null;
    }
    if (marker === 0xe2 && head.length === 4 + ICC_TAG.length && String.fromCharCode(...head.subarray(4)) === ICC_TAG)
      icc = true;
    offset += 2 + length;
  }
  return null;
}
