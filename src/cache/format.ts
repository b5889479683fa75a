import { pack, unpack } from 'msgpackr';
import { UserError } from '../core/errors.ts';
import { crc32 } from './crc32.ts';

/**
 * On-disk formats of the tensor cache. A shard is one msgpack map whose pixel data is a single
 * contiguous binary field (never an array of numbers), so reading it is one copy-free view.
 */
export const SHARD_FORMAT = 'galactic-shard';
export const MANIFEST_FORMAT = 'galactic-manifest';
/** Bumped whenever the bytes a shard holds for the same inputs would change; part of the cache key. */
export const CACHE_FORMAT_VERSION = 1;

export type CacheDtype = 'uint8' | 'float32';

export interface Shard {
  dtype: CacheDtype;
  /** [n, height, width, channels] */
  shape: [number, number, number, number];
  ids: string[];
  /** Class index per record (index into the manifest's `classes`). */
  labels: Int32Array;
  /** n*h*w*c values, row-major NHWC: uint8 pixels or float32 values (little-endian bytes). */
  data: Uint8Array;
}

export class CorruptShardError extends UserError {
  constructor(file: string, detail: string) {
    super(`cache shard ${file} is corrupt (${detail}). Run 'galactic prepare --force' to rebuild the cache.`);
  }
}

/** A shard to encode: `data` may be given as consecutive pieces (the records), never concatenated. */
export type ShardToEncode = Omit<Shard, 'data'> & { data: Uint8Array | readonly Uint8Array[] };

function dataPieces(shard: ShardToEncode): readonly Uint8Array[] {
  return shard.data instanceof Uint8Array ? [shard.data] : shard.data;
}

function checkShape(shard: ShardToEncode, dataBytes: number): void {
  const [n, h, w, c] = shard.shape;
  const bytesPerValue = shard.dtype === 'uint8' ? 1 : 4;
  if (shard.ids.length !== n || shard.labels.length !== n || dataBytes !== n * h * w * c * bytesPerValue) {
    throw new Error(
      `encodeShard: inconsistent shard (n=${n}, ids=${shard.ids.length}, labels=${shard.labels.length}, bytes=${dataBytes})`,
    );
  }
}

/** msgpack bin header for `length` bytes (bin8/bin16/bin32, as msgpackr chooses). */
function binHeader(length: number): Uint8Array {
  if (length < 0x100) return Uint8Array.of(0xc4, length);
  if (length < 0x10000) return Uint8Array.of(0xc5, length >> 8, length & 0xff);
  const header = new Uint8Array(5);
  header[0] = 0xc6;
  new DataView(header.buffer).setUint32(1, length);
  return header;
}

/**
 * The shard as a list of byte ranges whose concatenation is exactly `encodeShard`'s bytes, with
 * the pixel data as one or more of them, uncopied: the writer streams them to the file, so the
 * records are never copied into an encoding (or a shard) buffer. `dataCrc32` is crc32 of the
 * data when the caller already has it (the shard writer checksums records as they arrive).
 * The data pieces are parts[3 .. length - 3]: three parts before them, two after.
 */
export function encodeShardParts(shard: ShardToEncode, dataCrc32?: number): Uint8Array[] {
  const pieces = dataPieces(shard);
  const dataBytes = pieces.reduce((sum, piece) => sum + piece.byteLength, 0);
  checkShape(shard, dataBytes);
  if (dataCrc32 === undefined) dataCrc32 = pieces.reduce((crc, piece) => crc32(piece, crc), 0);
  // the first six fields through msgpackr, then its map header patched from 6 to 8 entries
  // (msgpackr writes objects with a map16 header, 0xde 0x0006; fixmap 0x86 handled too)
  const head = pack({
    format: SHARD_FORMAT,
    version: CACHE_FORMAT_VERSION,
    dtype: shard.dtype,
    shape: shard.shape,
    ids: shard.ids,
    // int32 little-endian bytes: msgpack has no typed-array type, and bin keeps it compact
    labels: new Uint8Array(shard.labels.buffer, shard.labels.byteOffset, shard.labels.byteLength),
  });
  if (head[0] === 0x86) head[0] = 0x88;
  else if (head[0] === 0xde && head[1] === 0 && head[2] === 6) head[2] = 8;
  else throw new Error(`encodeShardParts: unexpected map header 0x${head[0].toString(16)}`);
  return [head, pack('data'), binHeader(dataBytes), ...pieces, pack('crc32'), pack(dataCrc32)];
}

export function encodeShard(shard: Shard): Buffer {
  return Buffer.concat(encodeShardParts(shard));
}

/** Decodes a shard; `data` is a view into `bytes` (no copy). Checks format, shape and checksum. */
export function decodeShard(bytes: Uint8Array, file = '<shard>'): Shard {
  let raw: Record<string, unknown>;
  try {
    raw = unpack(bytes) as Record<string, unknown>;
  } catch (error) {
    throw new CorruptShardError(file, `not msgpack: ${(error as Error).message}`);
  }
  if (!raw || raw.format !== SHARD_FORMAT) throw new CorruptShardError(file, 'not a galactic shard');
  if (raw.version !== CACHE_FORMAT_VERSION)
    throw new CorruptShardError(file, `format version ${String(raw.version)}, expected ${CACHE_FORMAT_VERSION}`);
  const shape = raw.shape as Shard['shape'];
  const dtype = raw.dtype as CacheDtype;
  const data = raw.data as Uint8Array;
  const labelBytes = raw.labels as Uint8Array;
  const ids = raw.ids as string[];
  const bytesPerValue = dtype === 'uint8' ? 1 : 4;
  if (
    !Array.isArray(shape) ||
    shape.length !== 4 ||
    !(data instanceof Uint8Array) ||
    !(labelBytes instanceof Uint8Array) ||
    !Array.isArray(ids)
  ) {
    throw new CorruptShardError(file, 'missing fields');
  }
  // copy: the view into the file buffer may not be 4-byte aligned
  const labels = new Int32Array(new Uint8Array(labelBytes).buffer, 0, labelBytes.byteLength >> 2);
  if (
    data.byteLength !== shape[0] * shape[1] * shape[2] * shape[3] * bytesPerValue ||
    ids.length !== shape[0] ||
    labels.length !== shape[0]
  ) {
    throw new CorruptShardError(file, 'shape does not match its data');
  }
  if (crc32(data) !== raw.crc32) throw new CorruptShardError(file, 'checksum mismatch');
  return { dtype, shape, ids, labels, data };
}

export interface ShardEntry {
  file: string;
  count: number;
  bytes: number;
  /** crc32 of the whole shard file. */
  crc32: number;
}

export interface ChannelStats {
  /** Per-channel mean and standard deviation of pixel values on the 0..255 scale. */
  mean: number[];
  std: number[];
}

/**
 * manifest.json: what a cache holds and what it was derived from. Written atomically after each
 * shard; `complete` is true only once the whole input was consumed.
 */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  cacheKey: string;
  /** Everything the key was derived from, for `inspect` and humans. */
  inputs: Record<string, unknown>;
  classes: string[];
  image: { width: number; height: number; channels: number; fit: string };
  dtype: CacheDtype;
  shardImages: number;
  shards: ShardEntry[];
  classCounts: number[];
  channelStats: ChannelStats;
  totals: { rows: number; images: number; rejected: number; bytes: number };
  rejects: Record<string, number>;
  complete: boolean;
  toolVersion: string;
  createdAt: string;
  updatedAt: string;
  /** Producer state needed to resume after the last complete shard; opaque to readers. */
  resume?: Record<string, unknown>;
  /** "sha256:<hex>" of the canonical JSON of every other field (manifestChecksum); set on write, checked on read. */
  checksum?: string;
}
