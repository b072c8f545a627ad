/**
 * A minimal ONNX protobuf writer: just the messages a model needs (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto), encoded by hand in the protobuf wire format.
 *
 * Messages are built bottom-up as lists of byte chunks with a known total length, so that large tensor
 * payloads (weights) are never copied until the final write. Field numbers follow onnx/onnx.proto (IR 8).
 *
 * @module
 */

/** An encoded message: its bytes as a list of chunks (large payloads stay un-copied). */
export interface Encoded {
  chunks: Uint8Array[];
  length: number;
}

/** ONNX TensorProto.DataType values we use. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

// Wire types.
const VARINT = 0, I32 = 5, LEN = 2;

/** Protobuf writer for one message. */
export class MessageWriter {
  private chunks: Uint8Array[] = [];
  private length = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    const bytes = Uint8Array.from(this.scratch);
    this.chunks.push(bytes);
    this.length += bytes.length;
    this.scratch = [];
  }

  private varint(v: number | bigint): void {
    // Negative int64 values are written as 10-byte two's complement, as protobuf does.
    let x = BigInt.asUintN(64, BigInt(v));
    if (typeof v === "number" && v >= 0 && v < 2 ** 31) {
      let n = v;
      while (n >= 0x80) {
        this.scratch.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      this.scratch.push(n);
      return;
    }
    while (x >= 0x80n) {
      this.scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.scratch.push(Number(x));
  }

  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, v: number | bigint): this {
    this.key(field, VARINT);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.scratch.push(x);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, LEN);
    this.varint(data.length);
    this.flushScratch();
    this.chunks.push(data);
    this.length += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Encoded): this {
    this.key(field, LEN);
    this.varint(m.length);
    this.flushScratch();
    for (const c of m.chunks) this.chunks.push(c);
    this.length += m.length;
    return this;
  }

  /** Packed repeated varints (int64 lists). */
  packedInts(field: number, values: ArrayLike<number | bigint>): this {
    const inner = new MessageWriter();
    for (let i = 0; i < values.length; i++) inner.varint(values[i]);
    return this.message(field, inner.finish());
  }

  /** Packed repeated floats. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
    return this.bytes(field, b);
  }

  finish(): Encoded {
    this.flushScratch();
    return { chunks: this.chunks, length: this.length };
  }
}

/** Concatenate an encoded message into one buffer. */
export function toBytes(m: Encoded): Uint8Array {
  const out = new Uint8Array(m.length);
  let at = 0;
  for (const c of m.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ----- ONNX messages -----

/** A tensor initializer: raw little-endian bytes, or a reference into an external data file. */
export interface TensorDef {
  name: string;
  dataType: DataTypeId;
  dims: number[];
  /** Raw little-endian bytes (inline), unless `external` is given. */
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export function encodeTensor(t: TensorDef): Encoded {
  const w = new MessageWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.external) {
    const entry = (k: string, v: string) => new MessageWriter().string(1, k).string(2, v).finish();
    w.message(13, entry("location", t.external.location));
    w.message(13, entry("offset", String(t.external.offset)));
    w.message(13, entry("length", String(t.external.length)));
    w.int(14, 1); // data_location = EXTERNAL
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return w.finish();
}

/** Node attribute values: numbers are INT unless wrapped with `{ f }`; arrays likewise. */
export type AttrValue =
  | number
  | { f: number }
  | string
  | number[]
  | { floats: number[] }
  | { tensor: TensorDef };

const ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_TENSOR = 4, ATTR_FLOATS = 6, ATTR_INTS = 7;

export function encodeAttribute(name: string, v: AttrValue): Encoded {
  const w = new MessageWriter().string(1, name);
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use {f})`);
    w.int(3, v).int(20, ATTR_INT);
  } else if (typeof v === "string") w.string(4, v).int(20, ATTR_STRING);
  else if (Array.isArray(v)) w.packedInts(8, v).int(20, ATTR_INTS);
  else if ("f" in v) w.float(2, v.f).int(20, ATTR_FLOAT);
  else if ("floats" in v) w.packedFloats(7, v.floats).int(20, ATTR_FLOATS);
  else w.message(5, encodeTensor(v.tensor)).int(20, ATTR_TENSOR);
  return w.finish();
}

export interface NodeDef {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrValue>;
}

export function encodeNode(n: NodeDef): Encoded {
  const w = new MessageWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w.finish();
}

/** A graph input/output: element type and shape (numbers are fixed dims, strings symbolic). */
export interface ValueInfoDef {
  name: string;
  dataType: DataTypeId;
  shape: (number | string)[];
}

export function encodeValueInfo(v: ValueInfoDef): Encoded {
  const shape = new MessageWriter();
  for (const d of v.shape) {
    const dim = new MessageWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim.finish());
  }
  const tensorType = new MessageWriter().int(1, v.dataType).message(2, shape.finish()).finish();
  const type = new MessageWriter().message(1, tensorType).finish();
  return new MessageWriter().string(1, v.name).message(2, type).finish();
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorDef[];
  inputs: ValueInfoDef[];
  outputs: ValueInfoDef[];
}

export function encodeGraph(g: GraphDef): Encoded {
  const w = new MessageWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const i of g.inputs) w.message(11, encodeValueInfo(i));
  for (const o of g.outputs) w.message(12, encodeValueInfo(o));
  return w.finish();
}

export interface ModelDef {
  graph: GraphDef;
  /** Operator sets: domain "" is the default ONNX domain. */
  opsets: { domain: string; version: number }[];
  producer?: string;
  irVersion?: number;
}

export function encodeModel(m: ModelDef): Encoded {
  const w = new MessageWriter();
  w.int(1, m.irVersion ?? 8);
  w.string(2, m.producer ?? "redrafter");
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsets) w.message(8, new MessageWriter().string(1, o.domain).int(2, o.version).finish());
  return w.finish();
}
