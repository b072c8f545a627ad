/**
 * Where a WebGPU step's time goes when the model is small: the fixed costs of onnxruntime-web's WebGPU EP
 * under Deno, apart from any model.
 *
 *   deno run -A --unstable-webgpu tools/webgpu_overhead.ts [--reps 40] [--dir models/default/target]
 *
 * Prints medians of:
 *   - one GPU -> CPU read-back with raw WebGPU (writeBuffer, copy, mapAsync), no ORT;
 *   - session.run of a chain of N elementwise ops (Sin on [1, 384]) for several N, output read back: the
 *     intercept is ORT's cost per run, the slope its cost per op dispatched;
 *   - the same chains with the output left on the GPU (no read-back);
 *   - the same chains under onnxruntime-web's graph capture (`enableGraphCapture`: input and output in
 *     fixed GPU buffers, the recorded commands replayed with no per-op dispatch), checked against Math.sin;
 *   - the node count of the --dir model's target graphs (standard and GQA attention), to multiply by it.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { GraphBuilder } from "../backends/onnx/graph.ts";
import { DataType, toBytes } from "../backends/onnx/proto.ts";
import { loadOrt, openSession } from "../backends/onnx/runtime.ts";
import { buildTargetGraph } from "../backends/onnx/build_target.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";

const { values } = toolArgs(import.meta.url, {
  options: {
    reps: { type: "string", default: "40" },
    dir: { type: "string" },
  },
});
const reps = Number(values.reps);
if (!Number.isInteger(reps) || reps < 3) {
  throw new Error(`--reps must be an integer >= 3, got ${values.reps}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

// 1. Raw WebGPU read-back.
type Gpu = {
  requestAdapter(o?: unknown): Promise<
    { requestDevice(): Promise<GPUDevice>; info: { description: string } } | null
  >;
};
const gpu = (navigator as unknown as { gpu?: Gpu }).gpu;
if (!gpu) throw new Error("navigator.gpu is missing (run with --unstable-webgpu)");
const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
console.log(`adapter: ${adapter.info.description}`);
const src = device.createBuffer({
  size: 4096,
  usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
});
const dst = device.createBuffer({ size: 4096, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const payload = new Float32Array(1024).fill(1);
const readback = await timeIt(async () => {
  device.queue.writeBuffer(src, 0, payload);
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, dst, 0, 4096);
  device.queue.submit([enc.finish()]);
  await dst.mapAsync(GPUMapMode.READ);
  dst.getMappedRange();
  dst.unmap();
});
console.log(`raw WebGPU write + copy + mapAsync (4 KiB): ${readback.toFixed(2)} ms`);
const submitted = await timeIt(async () => {
  device.queue.submit([device.createCommandEncoder().finish()]);
  await device.queue.onSubmittedWorkDone();
});
console.log(`raw WebGPU empty submit + onSubmittedWorkDone: ${submitted.toFixed(2)} ms`);
// onnxruntime-web's graph capture fails (a bind group's buffer "can not be converted to a GPUBuffer") when
// the process holds a second device, so this one goes before ORT starts.
src.destroy();
dst.destroy();
device.destroy();

// 2. ORT session.run over op chains.
const ort = await loadOrt({ provider: "onnx-webgpu" });
function chain(n: number): Uint8Array {
  const g = new GraphBuilder();
  let x = g.input({ name: "x", dataType: DataType.FLOAT, shape: [1, 384] });
  for (let i = 0; i < n; i++) x = g.op("Sin", [x]);
  g.output(x, { name: "y", dataType: DataType.FLOAT, shape: [1, 384] });
  return toBytes(g.encode(`chain${n}`));
}
const feed = { x: new ort.Tensor("float32", new Float32Array(384).fill(0.5), [1, 384]) };
type GpuTensorCtor = { fromGpuBuffer(b: GPUBuffer, o: { dataType: string; dims: number[] }): unknown };
type RunWithFetches = { run(feeds: unknown, fetches: unknown): Promise<unknown> };

/** Median ms of a captured chain of n Sin ops, after checking its output against Math.sin. */
async function captured(bytes: Uint8Array, n: number): Promise<number> {
  const session = await openSession(ort, bytes, {
    provider: "onnx-webgpu",
    extra: { enableGraphCapture: true },
  });
  const dev = await (ort.env as unknown as { webgpu: { device: GPUDevice | Promise<GPUDevice> } }).webgpu
    .device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const inBuf = dev.createBuffer({ size: 384 * 4, usage }),
    outBuf = dev.createBuffer({ size: 384 * 4, usage });
  dev.queue.writeBuffer(inBuf, 0, new Float32Array(384).fill(0.5));
  const T = ort.Tensor as unknown as GpuTensorCtor;
  const feeds = { x: T.fromGpuBuffer(inBuf, { dataType: "float32", dims: [1, 384] }) };
  const fetches = { y: T.fromGpuBuffer(outBuf, { dataType: "float32", dims: [1, 384] }) };
  const ms = await timeIt(() => (session as unknown as RunWithFetches).run(feeds, fetches));
  const rb = dev.createBuffer({ size: 384 * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = dev.createCommandEncoder();
  enc.copyBufferToBuffer(outBuf, 0, rb, 0, 384 * 4);
  dev.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const got = new Float32Array(rb.getMappedRange().slice(0))[0];
  let want = 0.5;
  for (let i = 0; i < n; i++) want = Math.sin(want);
  if (Math.abs(got - want) > 1e-5) throw new Error(`graph capture, N=${n}: y[0] = ${got}, expected ${want}`);
  return ms;
}

// Captured sessions first: after plain sessions of the same graphs ran, capture failed here (a bind group's
// buffer "can not be converted to a GPUBuffer").
const SIZES = [1, 64, 256, 1024];
const replays = new Map<number, number>();
for (const n of SIZES) replays.set(n, await captured(chain(n), n));
const rows: string[] = [];
for (const n of SIZES) {
  const bytes = chain(n);
  const cpuOut = await openSession(ort, bytes, { provider: "onnx-webgpu" });
  const gpuOut = await openSession(ort, bytes, {
    provider: "onnx-webgpu",
    extra: { preferredOutputLocation: "gpu-buffer" },
  });
  const withRead = await timeIt(async () => {
    const r = await cpuOut.run(feed);
    return r.y.data;
  });
  const noRead = await timeIt(async () => {
    const r = await gpuOut.run(feed);
    r.y.dispose();
  });
  const replay = replays.get(n)!;
  rows.push(
    `${String(n).padStart(5)}  ${withRead.toFixed(2).padStart(9)}  ${noRead.toFixed(2).padStart(9)}  ${
      replay.toFixed(2).padStart(9)
    }`,
  );
}
console.log(`\nsession.run of N Sin ops, median of ${reps} (ms)\n    N  read-back     on GPU   captured`);
for (const r of rows) console.log(r);

// 3. Node counts of the target graphs.
if (values.dir) {
  const ckpt = await loadCheckpoint(values.dir);
  for (const attention of ["standard", "gqa"] as const) {
    const g = buildTargetGraph(ckpt.config, ckpt.tensors, {
      weights: "fp32",
      fused: true,
      attention,
      externalFile: null,
      packed: true,
    });
    const kinds = new Map<string, number>();
    for (const n of g.nodes) kinds.set(n.opType, (kinds.get(n.opType) ?? 0) + 1);
    const top = [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(`${values.dir} target graph, ${attention}: ${g.nodes.length} nodes (${top})`);
  }
}
Deno.exit(0);
