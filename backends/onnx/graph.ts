/**
 * A small graph-building helper over proto.ts: auto-named node outputs, int64/float constants as
 * initializers, and weight initializers that go inline or into an external data file.
 *
 * @module
 */
import {
  type AttrValue,
  DataType,
  type DataTypeId,
  type Encoded,
  encodeModel,
  type NodeDef,
  type TensorDef,
  type ValueInfoDef,
} from "./proto.ts";

export const MS_DOMAIN = "com.microsoft";

export class GraphBuilder {
  nodes: NodeDef[] = [];
  initializers: TensorDef[] = [];
  inputs: ValueInfoDef[] = [];
  outputs: ValueInfoDef[] = [];
  /** Weight bytes placed in the external data file, in order (when external data is on). */
  externalChunks: Uint8Array[] = [];
  private externalSize = 0;
  private counter = 0;
  private constCache = new Map<string, string>();

  /**
   * @param externalFile when set, initializers above `externalMin` bytes go to this file (relative name).
   */
  constructor(readonly externalFile: string | null = null, readonly externalMin = 1024) {}

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  /** Add a node; returns its output names (count given by `nOut`). */
  opN(
    opType: string,
    inputs: string[],
    nOut: number,
    attrs?: Record<string, AttrValue>,
    domain?: string,
  ): string[] {
    const outputs = Array.from({ length: nOut }, () => this.fresh(opType));
    this.nodes.push({ opType, inputs, outputs, name: outputs[0], attrs, domain });
    return outputs;
  }

  /** Add a single-output node; returns its output name. */
  op(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, domain?: string): string {
    return this.opN(opType, inputs, 1, attrs, domain)[0];
  }

  /** Rename a node's output to a fixed graph-output name by adding an Identity. */
  output(value: string, info: ValueInfoDef): void {
    this.nodes.push({ opType: "Identity", inputs: [value], outputs: [info.name], name: info.name });
    this.outputs.push(info);
  }

  input(info: ValueInfoDef): string {
    this.inputs.push(info);
    return info.name;
  }

  /** A weight initializer; large ones go to the external data file when one is configured. */
  weight(name: string, dataType: DataTypeId, dims: number[], raw: Uint8Array): string {
    if (this.externalFile && raw.length >= this.externalMin) {
      // Keep offsets 64-byte aligned (ORT can then map them directly).
      const pad = (64 - (this.externalSize % 64)) % 64;
      if (pad) {
        this.externalChunks.push(new Uint8Array(pad));
        this.externalSize += pad;
      }
      this.initializers.push({
        name,
        dataType,
        dims,
        external: { location: this.externalFile, offset: this.externalSize, length: raw.length },
      });
      this.externalChunks.push(raw);
      this.externalSize += raw.length;
    } else {
      this.initializers.push({ name, dataType, dims, raw });
    }
    return name;
  }

  f32(name: string, dims: number[], data: Float32Array): string {
    return this.weight(
      name,
      DataType.FLOAT,
      dims,
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
  }

  /** An int64 constant (1-D, or a scalar when `scalar`), deduplicated. */
  i64(values: number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    const name = this.fresh("const_i64");
    this.initializers.push({
      name,
      dataType: DataType.INT64,
      dims: scalar ? [] : [values.length],
      raw: new Uint8Array(data.buffer),
    });
    this.constCache.set(key, name);
    return name;
  }

  /** A float32 constant (1-D, or a scalar when `scalar`), deduplicated. */
  f32c(values: number[], scalar = false): string {
    const key = `f32:${scalar}:${values.join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const data = new Float32Array(values);
    const name = this.fresh("const_f32");
    this.initializers.push({
      name,
      dataType: DataType.FLOAT,
      dims: scalar ? [] : [values.length],
      raw: new Uint8Array(data.buffer),
    });
    this.constCache.set(key, name);
    return name;
  }

  /** Encode the model. Opset 17 for the default domain, 1 for com.microsoft. */
  encode(name: string): Encoded {
    return encodeModel({
      graph: {
        name,
        nodes: this.nodes,
        initializers: this.initializers,
        inputs: this.inputs,
        outputs: this.outputs,
      },
      opsets: [{ domain: "", version: 17 }, { domain: MS_DOMAIN, version: 1 }],
    });
  }
}
