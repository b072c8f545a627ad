/**
 * Loading over HTTP (loader/remote.ts), as browsers and Deno Deploy do: checkpoints (single and sharded),
 * tokenizers and drafters fetched from a local server equal the same files read from disk, bad answers name
 * the URL at fault, and ONNX graphs built in memory (cacheDir null) equal the disk-cached ones and write
 * nothing.
 */
import assert from "node:assert/strict";
import {
  createCpuModel,
  fileUrl,
  generate,
  loadCheckpoint,
  loadCheckpointFromUrl,
  loadDrafter,
  loadDrafterFromUrl,
  loadTokenizer,
  loadTokenizerFromUrl,
  readDrafterFromUrl,
  speculativeGenerate,
} from "../mod.ts";
import { createOnnxModel } from "../backends/onnx/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Serve the repository read-only; `status` forces an HTTP status for paths that contain its key. */
function serve(status: Record<string, number> = {}): { base: string; close: () => Promise<void> } {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    for (const [key, code] of Object.entries(status)) {
      if (path.includes(key)) return new Response("forced", { status: code });
    }
    try {
      return new Response(await Deno.readFile(ROOT + path.slice(1)));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { base: `http://127.0.0.1:${server.addr.port}/`, close: () => server.shutdown() };
}

Deno.test("fileUrl joins a folder URL and a name, with or without the trailing slash", () => {
  assert.equal(fileUrl("http://h/a/b", "config.json"), "http://h/a/b/config.json");
  assert.equal(fileUrl("http://h/a/b/", "config.json"), "http://h/a/b/config.json");
  assert.equal(fileUrl(new URL("http://h/a/"), "x.safetensors"), "http://h/a/x.safetensors");
  assert.throws(() => fileUrl("relative/dir", "config.json"), /relative\/dir\/: not a URL/);
});

Deno.test("default pair over HTTP: same tensors, tokenizer and ReDrafter output as from disk", async () => {
  const srv = serve();
  try {
    const progress: number[] = [];
    const remote = await loadCheckpointFromUrl(`${srv.base}models/default/target`, {
      progress: (url, loaded, total) => {
        if (url.endsWith("model.safetensors")) progress.push(loaded / total);
      },
    });
    const local = await loadCheckpoint(`${ROOT}models/default/target`);
    assert.deepEqual(remote.config, local.config);
    assert.deepEqual(remote.tensors.names().sort(), local.tensors.names().sort());
    assert.ok(progress.length > 0 && progress[progress.length - 1] === 1, "progress reaches the whole file");
    const name = "model.layers.3.mlp.down_proj.weight";
    assert.deepEqual(remote.tensors.readF32(name), local.tensors.readF32(name));

    const tokR = await loadTokenizerFromUrl(`${srv.base}models/default/target/`);
    const tokL = await loadTokenizer(`${ROOT}models/default/target`);
    const text = "Call me Ishmael. Some years ago — never mind how long precisely";
    assert.deepEqual(tokR.encode(text), tokL.encode(text));
    assert.equal(tokR.eosToken?.id, tokL.eosToken?.id);

    const tR = createCpuModel(remote, { threads: 1 }), tL = createCpuModel(local, { threads: 1 });
    const dR = await loadDrafterFromUrl(`${srv.base}models/default/drafter`, tR, { threads: 1 });
    const dL = await loadDrafter(`${ROOT}models/default/drafter`, tL, { threads: 1 });
    const prompt = [tokL.encode(text)];
    const opts = { maxNewTokens: 12, beamWidth: 2, beamLength: 3 };
    const ar = await generate(tL, prompt, opts);
    const sR = await speculativeGenerate(tR, dR, prompt, opts);
    const sL = await speculativeGenerate(tL, dL, prompt, opts);
    assert.deepEqual(sR.ids, ar.ids);
    assert.deepEqual(sR.ids, sL.ids);
    assert.equal(sR.metrics.tau, sL.metrics.tau);
    // A draft vocabulary over HTTP: "default" is draft_vocab.json's default_size, as loadDrafter's 2048.
    const vR = await loadDrafterFromUrl(`${srv.base}models/default/drafter`, tR, {
      threads: 1,
      draftVocab: "default",
    });
    const vL = await loadDrafter(`${ROOT}models/default/drafter`, tL, { threads: 1, draftVocab: 2048 });
    const wR = await readDrafterFromUrl(`${srv.base}models/default/drafter`, tR, { draftVocab: 1000 });
    assert.equal(wR.draftVocab?.length, 1000);
    const vsR = await speculativeGenerate(tR, vR, prompt, opts);
    const vsL = await speculativeGenerate(tL, vL, prompt, opts);
    assert.deepEqual(vsR.ids, ar.ids);
    assert.equal(vsR.metrics.tau, vsL.metrics.tau);
    const fx = await loadCheckpoint(`${ROOT}tests/fixtures/drafter/target`);
    const fxLender = { config: fx.config, embeddingTable: () => new Float32Array(0) };
    await assert.rejects(
      () => readDrafterFromUrl(`${srv.base}tests/fixtures/drafter/drafter`, fxLender, { draftVocab: 60 }),
      /draft_vocab.json: draft vocabulary ranking not found \(HTTP 404\)/,
    );
    // "default" without a ranking file drafts the whole vocabulary.
    const fxAll = await readDrafterFromUrl(`${srv.base}tests/fixtures/drafter/drafter`, fxLender, {
      draftVocab: "default",
    });
    assert.equal(fxAll.draftVocab, undefined);
    fx.tensors.close();
    for (const m of [tR, tL]) m.dispose?.();
    remote.tensors.close();
    local.tensors.close();
  } finally {
    await srv.close();
  }
});

Deno.test("sharded checkpoint over HTTP equals the one on disk", async () => {
  const srv = serve();
  try {
    const remote = await loadCheckpointFromUrl(`${srv.base}tests/fixtures/models/llama_sharded`);
    const local = await loadCheckpoint(`${ROOT}tests/fixtures/models/llama_sharded`);
    assert.deepEqual(remote.tensors.names().sort(), local.tensors.names().sort());
    for (const n of local.tensors.names()) {
      assert.deepEqual(remote.tensors.readF32(n), local.tensors.readF32(n), n);
    }
    assert.match(
      remote.tensors.info(local.tensors.names()[0]).file,
      /^http:\/\/127\.0\.0\.1:\d+\/.*-of-00003/,
    );
  } finally {
    await srv.close();
  }
});

Deno.test("HTTP loading errors name the URL and what is missing", async () => {
  const srv = serve({ "llama_sharded/model-00002": 404, "qwen2/model.safetensors": 500 });
  try {
    await assert.rejects(
      () => loadCheckpointFromUrl(`${srv.base}no/such/model`),
      /no\/such\/model\/: no config.json at this URL \(HTTP 404\)/,
    );
    await assert.rejects(
      () => loadCheckpointFromUrl(`${srv.base}tests/fixtures/models/llama_sharded`),
      /model.safetensors.index.json: shard model-00002-of-00003.safetensors is missing \(HTTP 404/,
    );
    await assert.rejects(
      () => loadCheckpointFromUrl(`${srv.base}tests/fixtures/models/qwen2`),
      /qwen2\/model.safetensors: HTTP 500/,
    );
    await assert.rejects(
      () => loadCheckpointFromUrl(`${srv.base}tests/fixtures/tokenizer`),
      /tokenizer\/: no config.json/,
    );
    await assert.rejects(
      () => loadTokenizerFromUrl(`${srv.base}tests/fixtures/models/llama`),
      /llama\/tokenizer.json: not found/,
    );
    const target = createCpuModel(await loadCheckpoint(`${ROOT}tests/fixtures/models/llama`), { threads: 1 });
    await assert.rejects(
      () => loadDrafterFromUrl(`${srv.base}models/default/drafter`, target),
      /drafter\/config.json: drafter does not fit the target/,
    );
    await assert.rejects(
      () => loadCheckpointFromUrl("http://127.0.0.1:9/closed"),
      /127\.0\.0\.1:9\/closed\/config.json: fetch failed/,
    );
  } finally {
    await srv.close();
  }
});

Deno.test("onnx-wasm: a graph built in memory (cacheDir null) equals the disk-cached one and writes nothing", async () => {
  const ckpt = await loadCheckpoint(`${ROOT}tests/fixtures/models/llama`);
  const cacheDir = Deno.makeTempDirSync({ prefix: "onnx-mem-" });
  try {
    const disk = await createOnnxModel(ckpt, { provider: "onnx-wasm", cacheDir, threads: 1 });
    const mem = await createOnnxModel(ckpt, { provider: "onnx-wasm", cacheDir: null, threads: 1 });
    const entries = () => [...Deno.readDirSync(cacheDir)].length;
    assert.equal(entries(), 1, "the disk model wrote one cached graph");
    const prompt = [[1, 5, 9, 2, 7, 3]];
    const a = await generate(disk, prompt, { maxNewTokens: 6 });
    const b = await generate(mem, prompt, { maxNewTokens: 6 });
    assert.deepEqual(b.ids, a.ids);
    assert.equal(entries(), 1, "the in-memory model wrote nothing");
  } finally {
    ckpt.tensors.close();
    Deno.removeSync(cacheDir, { recursive: true });
  }
});

Deno.test("onnx-wasm: where the graph cache cannot be written (no --allow-write), the model builds in memory", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "onnx-ro-" });
  try {
    const script = `${dir}/ro.ts`;
    Deno.writeTextFileSync(
      script,
      `import { loadCheckpoint } from "${ROOT}loader/checkpoint.ts";
import { createOnnxModel } from "${ROOT}backends/onnx/mod.ts";
import { generate } from "${ROOT}core/mod.ts";
const ck = await loadCheckpoint("${ROOT}tests/fixtures/models/llama");
const m = await createOnnxModel(ck, { provider: "onnx-wasm", cacheDir: "${dir}/cache", threads: 1 });
console.log(JSON.stringify((await generate(m, [[1, 5, 9, 2]], { maxNewTokens: 5 })).ids[0]));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", "--config", `${ROOT}deno.json`, script],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).slice(-2000));
    const ckpt = await loadCheckpoint(`${ROOT}tests/fixtures/models/llama`);
    const ref =
      (await generate(createCpuModel(ckpt, { threads: 1 }), [[1, 5, 9, 2]], { maxNewTokens: 5 })).ids[0];
    ckpt.tensors.close();
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), ref);
    assert.throws(() => Deno.statSync(`${dir}/cache`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("HTTP loading: a gzip-encoded safetensors loads; a body shorter than its content-length is an error", async () => {
  const file = Deno.readFileSync(`${ROOT}tests/fixtures/models/llama/model.safetensors`);
  const gz = new Uint8Array(
    await new Response(new Blob([file]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const name = path.slice(path.lastIndexOf("/") + 1);
    if (name === "model.safetensors" && path.includes("/gz/")) {
      return new Response(gz, {
        headers: { "content-encoding": "gzip", "content-length": String(gz.length) },
      });
    }
    if (name === "model.safetensors" && path.includes("/short/")) {
      // Announce the whole file, send half of it, then end the body.
      const body = new ReadableStream({
        start(c) {
          c.enqueue(file.subarray(0, file.length >> 1));
          c.close();
        },
      });
      return new Response(body, { headers: { "content-length": String(file.length) } });
    }
    try {
      return new Response(await Deno.readFile(`${ROOT}tests/fixtures/models/llama/${name}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const ck = await loadCheckpointFromUrl(`${base}/gz/llama`);
    const local = await loadCheckpoint(`${ROOT}tests/fixtures/models/llama`);
    for (const n of local.tensors.names()) {
      assert.deepEqual(ck.tensors.readF32(n), local.tensors.readF32(n), n);
    }
    local.tensors.close();
    await assert.rejects(
      () => loadCheckpointFromUrl(`${base}/short/llama`),
      /short\/llama\/model.safetensors: (the download broke off after \d+ bytes|got \d+ bytes, the server announced)/,
    );
  } finally {
    await server.shutdown();
  }
});
