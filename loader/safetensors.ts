/**
 * Our own safetensors reader and writer. The header is validated before any tensor is touched (size bounds,
 * JSON shape, dtypes, offsets inside the file, shape x dtype size equal to the byte range, no overlaps), and
 * tensors are read one at a time straight into their final float32 array, so loading never holds two full
 * copies of the weights.
 *
 * Format: u64 little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin,
 * end]}, "__metadata__": {...}}`, then the data block; offsets are relative to the data block.
 *
 * @module
 */
import type { DType, TensorInfo, TensorStore } from "./types.ts";

/** Byte size of one element per supported dtype. */
export const DTYPE_SIZE: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };
const KNOWN_UNSUPPORTED = [
  "F64",
  "I64",
  "I32",
  "I16",
  "I8",
  "U8",
  "BOOL",
  "F8_E4M3",
  "F8_E5M2",
  "U16",
  "U32",
];
/** Elements per chunk when widening a float16 / bf16 tensor (readF32): 1 MiB of raw bytes at most. */
const DECODE_CHUNK = 1 << 19;
/** Headers above this size are refused (the format's own reference limit is 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Random access to the bytes of one file (a real file, or a buffer in browsers / tests). */
export interface ByteSource {
  /** Total size in bytes. */
  size: number;
  /** Fill `into` with the bytes starting at `offset`; throws when fewer are available. */
  read(offset: number, into: Uint8Array): void;
  close(): void;
}

export interface ParsedEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "SafetensorsError";
  }
}

/** A ByteSource over a file on disk, read with positioned reads. */
export function fileSource(path: string): ByteSource {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SafetensorsError(path, "file not found");
    throw e;
  }
  const size = file.statSync().size;
  return {
    size,
    read(offset, into) {
      file.seekSync(offset, Deno.SeekMode.Start);
      let done = 0;
      while (done < into.length) {
        const n = file.readSync(into.subarray(done));
        if (n === null || n === 0) {
          throw new SafetensorsError(
            path,
            `unexpected end of file at byte ${offset + done} (file is truncated)`,
          );
        }
        done += n;
      }
    },
    close() {
      file.close();
    },
  };
}

/** A ByteSource over bytes already in memory. */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read(offset, into) {
      if (offset + into.length > bytes.length) throw new Error(`read past end of buffer at ${offset}`);
      into.set(bytes.subarray(offset, offset + into.length));
    },
    close() {},
  };
}

/** Parse and validate the header; returns entries sorted by offset and the metadata map. */
export function parseHeader(
  src: ByteSource,
  file: string,
): { entries: ParsedEntry[]; metadata: Record<string, string> } {
  if (src.size < 8) throw new SafetensorsError(file, `file is ${src.size} bytes, too small for a header`);
  const lenBytes = new Uint8Array(8);
  src.read(0, lenBytes);
  const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) {
    throw new SafetensorsError(file, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8 + headerLen > src.size) {
    throw new SafetensorsError(
      file,
      `header length ${headerLen} runs past the end of the ${src.size}-byte file (truncated or not safetensors)`,
    );
  }
  const headerBytes = new Uint8Array(headerLen);
  src.read(8, headerBytes);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new SafetensorsError(file, `malformed header: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SafetensorsError(file, "malformed header: not a JSON object");
  }
  const dataStart = 8 + headerLen;
  const dataSize = src.size - dataStart;
  const entries: ParsedEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== "object") {
      throw new SafetensorsError(file, `malformed header entry for tensor '${name}'`);
    }
    if (typeof e.dtype !== "string") throw new SafetensorsError(file, `tensor '${name}' has no dtype`);
    if (!(e.dtype in DTYPE_SIZE)) {
      const known = KNOWN_UNSUPPORTED.includes(e.dtype) ? "unsupported" : "unknown";
      throw new SafetensorsError(
        file,
        `tensor '${name}' has ${known} dtype ${e.dtype} (supported: F32, F16, BF16)`,
      );
    }
    const dtype = e.dtype as DType;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor '${name}' has a malformed shape ${JSON.stringify(e.shape)}`);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) ||
      off[0] > off[1]
    ) {
      throw new SafetensorsError(file, `tensor '${name}' has malformed data_offsets ${JSON.stringify(off)}`);
    }
    if (off[1] > dataSize) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' data_offsets [${off[0]}, ${
          off[1]
        }] lie outside the ${dataSize}-byte data block (truncated file?)`,
      );
    }
    const shape = e.shape as number[];
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    if (expected !== off[1] - off[0]) {
      throw new SafetensorsError(
        file,
        `tensor '${name}' shape [${shape}] x ${dtype} needs ${expected} bytes but data_offsets span ${
          off[1] - off[0]
        }`,
      );
    }
    entries.push({ name, dtype, shape, begin: dataStart + off[0], end: dataStart + off[1] });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].begin < entries[i - 1].end) {
      throw new SafetensorsError(file, `tensors '${entries[i - 1].name}' and '${entries[i].name}' overlap`);
    }
  }
  return { entries, metadata };
}

/** Convert IEEE half-precision bits to float32. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i);
  return t;
})();

/** Decode raw little-endian bytes of the given dtype into `out` (float32). */
export function decodeToF32(raw: Uint8Array, dtype: DType, out: Float32Array): void {
  const n = out.length;
  if (dtype === "F32") {
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(raw);
  } else if (dtype === "F16") {
    for (let i = 0; i < n; i++) out[i] = F16_TABLE[raw[2 * i] | (raw[2 * i + 1] << 8)];
  } else {
    // bf16 is the top half of a float32.
    const u32 = new Uint32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) u32[i] = (raw[2 * i] << 16 | raw[2 * i + 1] << 24) >>> 0;
  }
}

/** Open one safetensors file (or an in-memory source) as a TensorStore. */
export function openSafetensors(path: string, src: ByteSource = fileSource(path)): TensorStore {
  let parsed;
  try {
    parsed = parseHeader(src, path);
  } catch (e) {
    src.close();
    throw e;
  }
  const byName = new Map<string, ParsedEntry>(parsed.entries.map((e) => [e.name, e]));
  return storeOver([{ path, src, byName }]);
}

/** Open a sharded checkpoint from its model.safetensors.index.json. */
export function openShardedSafetensors(indexPath: string): TensorStore {
  let text: string;
  try {
    text = Deno.readTextFileSync(indexPath);
  } catch (e) {
    throw new SafetensorsError(indexPath, `cannot read index: ${(e as Error).message}`);
  }
  return openShardedFrom(indexPath, text, (path) => fileSource(path));
}

/**
 * Open a sharded checkpoint from the text of its index (named `indexPath`, a path or URL) and a way to open
 * each shard by its path or URL beside the index.
 */
export function openShardedFrom(
  indexPath: string,
  indexText: string,
  openShard: (path: string) => ByteSource,
): TensorStore {
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(indexText);
  } catch (e) {
    throw new SafetensorsError(indexPath, `cannot read index: ${(e as Error).message}`);
  }
  if (!index.weight_map || typeof index.weight_map !== "object") {
    throw new SafetensorsError(indexPath, "missing 'weight_map'");
  }
  const dir = indexPath.replace(/[^/\\]*$/, "");
  const shards = [...new Set(Object.values(index.weight_map))];
  const files: ShardFile[] = [];
  try {
    for (const shard of shards) {
      const path = dir + shard;
      const src = openShard(path);
      files.push({ path, src, byName: new Map() });
      for (const e of parseHeader(src, path).entries) files[files.length - 1].byName.set(e.name, e);
    }
  } catch (e) {
    for (const f of files) f.src.close();
    throw e;
  }
  for (const [name, shard] of Object.entries(index.weight_map)) {
    const f = files.find((f) => f.path === dir + shard)!;
    if (!f.byName.has(name)) {
      for (const g of files) g.src.close();
      throw new SafetensorsError(indexPath, `weight_map names tensor '${name}' in ${shard}, which lacks it`);
    }
  }
  return storeOver(files);
}

interface ShardFile {
  path: string;
  src: ByteSource;
  byName: Map<string, ParsedEntry>;
}

function storeOver(files: ShardFile[]): TensorStore {
  const where = new Map<string, ShardFile>();
  for (const f of files) for (const name of f.byName.keys()) where.set(name, f);
  const find = (name: string): [ShardFile, ParsedEntry] => {
    const f = where.get(name);
    if (!f) {
      throw new SafetensorsError(files.map((f) => f.path).join(", "), `missing tensor '${name}'`);
    }
    return [f, f.byName.get(name)!];
  };
  return {
    names: () => [...where.keys()],
    has: (name) => where.has(name),
    info(name): TensorInfo {
      const [f, e] = find(name);
      return { name, dtype: e.dtype, shape: e.shape.slice(), file: f.path };
    },
    readF32(name, expectShape, into) {
      const [f, e] = find(name);
      if (
        expectShape && (expectShape.length !== e.shape.length || expectShape.some((d, i) => d !== e.shape[i]))
      ) {
        throw new SafetensorsError(
          f.path,
          `tensor '${name}' has shape [${e.shape}], expected [${expectShape}]`,
        );
      }
      const n = e.shape.reduce((a, b) => a * b, 1);
      if (into && into.length !== n) {
        throw new SafetensorsError(
          f.path,
          `tensor '${name}' has ${n} elements; the destination array has ${into.length}`,
        );
      }
      const out = into ?? new Float32Array(n);
      if (e.dtype === "F32") {
        // read straight into the result: one copy
        f.src.read(e.begin, new Uint8Array(out.buffer, out.byteOffset, n * 4));
      } else {
        // widen in chunks through one small buffer: a big float16 / bf16 tensor is never held raw whole
        const size = DTYPE_SIZE[e.dtype], step = Math.min(n, DECODE_CHUNK);
        const raw = new Uint8Array(step * size);
        for (let i = 0; i < n; i += step) {
          const m = Math.min(step, n - i);
          f.src.read(e.begin + i * size, raw.subarray(0, m * size));
          decodeToF32(raw.subarray(0, m * size), e.dtype, out.subarray(i, i + m));
        }
      }
      return out;
    },
    readRaw(name, into) {
      const [f, e] = find(name);
      if (into && into.length !== e.end - e.begin) {
        throw new SafetensorsError(
          f.path,
          `tensor '${name}' has ${e.end - e.begin} bytes; the destination array has ${into.length}`,
        );
      }
      const raw = into ?? new Uint8Array(e.end - e.begin);
      f.src.read(e.begin, raw);
      return raw;
    },
    close() {
      for (const f of files) f.src.close();
    },
  };
}

/** A tensor to write: float32 data is converted to the requested storage dtype. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  dtype?: DType;
  data: Float32Array;
}

/** Float32 -> IEEE half-precision bits, rounding to nearest even (overflow to infinity). */
export function f32ToF16Bits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  e = half >> 10;
  return sign | half;
}

function f32ToBf16Bits(v: number): number {
  const x = new Uint32Array(new Float32Array([v]).buffer)[0];
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40; // NaN stays NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}

/** Serialize tensors to safetensors bytes (header padded to 8 bytes as the format recommends). */
export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? "F32";
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new Error(`tensor '${t.name}': shape [${t.shape}] needs ${n} values, got ${t.data.length}`);
    }
    const bytes = n * DTYPE_SIZE[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of tensors) {
    const dtype = t.dtype ?? "F32";
    if (dtype === "F32") {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length * 4), pos);
      pos += t.data.length * 4;
    } else {
      const conv = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
      for (let i = 0; i < t.data.length; i++) {
        const b = conv(t.data[i]);
        out[pos++] = b & 0xff;
        out[pos++] = b >> 8;
      }
    }
  }
  return out;
}

/** Write tensors to a safetensors file. */
export function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): void {
  Deno.writeFileSync(path, encodeSafetensors(tensors, metadata));
}
