/**
 * A valid baseline JPEG of `side` x `side` uniform grey pixels, written byte by byte.
 *
 * Encoding a 12000x12000 image through libvips takes seconds; this one is built in
 * milliseconds: with one-symbol Huffman tables every 8x8 block is the 2-bit code "DC diff 0,
 * end of block" (all zero bits), so the scan is just zero bytes. Decoders read it as a
 * 144-megapixel mid-grey image, which is all the `huge-image` hazard needs.
 */
export function uniformGreyJpeg(side: number): Buffer {
  const mcus = Math.ceil(side / 16) ** 2;
  // 4:2:0 sampling: four luma blocks + Cb + Cr per 16x16 MCU, 2 bits per block
  const scanBits = mcus * 6 * 2;
  const scan = Buffer.alloc(Math.ceil(scanBits / 8));
  if (scanBits % 8) scan[scan.length - 1] = 0xff >> (scanBits % 8); // pad the last byte with 1-bits
  const segments = [
    Buffer.from([0xff, 0xd8]), // SOI
    segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]), // APP0 JFIF
    segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]), // DQT: table 0, all ones
    segment(0xc0, [8, side >> 8, side & 0xff, side >> 8, side & 0xff, 3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]), // SOF0
    segment(0xc4, [0x00, 1, ...new Array<number>(15).fill(0), 0x00]), // DHT DC 0: one 1-bit code for category 0
    segment(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0x00]), // DHT AC 0: one 1-bit code for end-of-block
    segment(0xda, [3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]), // SOS
    scan,
    Buffer.from([0xff, 0xd9]), // EOI
  ];
  return Buffer.concat(segments);
}

function segment(marker: number, payload: number[]): Buffer {
  const length = payload.length + 2;
  return Buffer.from([0xff, marker, length >> 8, length & 0xff, ...payload]);
}
