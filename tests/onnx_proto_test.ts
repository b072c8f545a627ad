import assert from "node:assert/strict";
import { DataType, encodeAttribute, encodeTensor, MessageWriter, toBytes } from "../backends/onnx/proto.ts";
import { GraphBuilder } from "../backends/onnx/graph.ts";
import * as ort from "onnxruntime-node";

Deno.test("proto: varints, negative int64, floats and strings match protobuf's wire format", () => {
  const w = new MessageWriter().int(1, 150).int(2, -1).float(3, 1.5).string(4, "ab");
  assert.deepEqual(
    [...toBytes(w.finish())],
    [
      0x08,
      0x96,
      0x01, // field 1 varint 150
      0x10,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0x01, // field 2 varint -1 (10 bytes)
      0x1d,
      0x00,
      0x00,
      0xc0,
      0x3f, // field 3 fixed32 1.5
      0x22,
      0x02,
      0x61,
      0x62, // field 4 "ab"
    ],
  );
});

Deno.test("proto: attribute and tensor encodings", () => {
  // AttributeProto{name:"axis", i:-1, type:INT}
  assert.deepEqual(
    [...toBytes(encodeAttribute("axis", -1))],
    [0x0a, 4, 0x61, 0x78, 0x69, 0x73, 0x18, ...new Array(9).fill(0xff), 0x01, 0xa0, 0x01, 2],
  );
  // TensorProto{dims:[2], data_type:INT64, name:"t", raw_data: 16 bytes}
  const raw = new Uint8Array(new BigInt64Array([1n, -2n]).buffer);
  const bytes = toBytes(encodeTensor({ name: "t", dataType: DataType.INT64, dims: [2], raw }));
  assert.deepEqual([...bytes.subarray(0, 9)], [0x08, 2, 0x10, 7, 0x42, 1, 0x74, 0x4a, 16]);
  assert.deepEqual([...bytes.subarray(9)], [...raw]);
  assert.throws(() => encodeAttribute("alpha", 0.5), /alpha/);
});

Deno.test("proto: a built graph loads and runs in onnxruntime (inline and external weights)", async () => {
  for (const external of [false, true]) {
    const g = new GraphBuilder(external ? "w.bin" : null, 16);
    const x = g.input({ name: "x", dataType: DataType.FLOAT, shape: ["n", 3] });
    const w = g.f32("w", [3, 2], new Float32Array([1, 2, 3, 4, 5, 6]));
    const y = g.op("MatMul", [x, w]);
    const z = g.op("Mul", [y, g.f32c([0.5], true)]);
    const t = g.op("Transpose", [z], { perm: [1, 0] });
    const s = g.op("Softmax", [t], { axis: -1 });
    const r = g.op("ReduceSum", [t, g.i64([1])], { keepdims: 0 });
    const e = g.op("LeakyRelu", [g.op("Neg", [r])], { alpha: { f: 0.25 } });
    g.output(s, { name: "s", dataType: DataType.FLOAT, shape: [2, "n"] });
    g.output(e, { name: "e", dataType: DataType.FLOAT, shape: [2] });
    const model = toBytes(g.encode("test"));
    const dir = Deno.makeTempDirSync();
    try {
      Deno.writeFileSync(`${dir}/m.onnx`, model);
      if (external) {
        assert.equal(g.externalChunks.length > 0, true);
        Deno.writeFileSync(
          `${dir}/w.bin`,
          toBytes({ chunks: g.externalChunks, length: g.externalChunks.reduce((a, c) => a + c.length, 0) }),
        );
      }
      const sess = await ort.InferenceSession.create(`${dir}/m.onnx`);
      const out = await sess.run({
        x: new ort.Tensor("float32", new Float32Array([1, 0, 0, 0, 1, 1]), [2, 3]),
      });
      // y = [[1,2],[8,10]] * 0.5 = [[0.5,1],[4,5]]; t = [[0.5,4],[1,5]]
      const sm = out.s.data as Float32Array;
      const a = 1 / (1 + Math.exp(3.5)), b = 1 / (1 + Math.exp(4));
      assert.ok(Math.abs(sm[0] - a) < 1e-6 && Math.abs(sm[2] - b) < 1e-6);
      assert.deepEqual([...(out.e.data as Float32Array)], [-4.5 * 0.25, -6 * 0.25]);
      await sess.release();
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
});
