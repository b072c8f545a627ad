// The browser example: load the default pair over HTTP with the bundle (tools/build_web.ts), then generate
// with autoregression and with ReDrafter on the chosen backend. `?auto=cpu,onnx-wasm&tokens=24&prompt=...`
// runs each backend without the UI and POSTs the ids to /result (tests/browser_test.ts).
import * as rd from "../../dist/web/redrafter.js";

const TARGET = new URL("../../models/default/target/", location.href);
const DRAFTER = new URL("../../models/default/drafter/", location.href);
const $ = (id) => document.getElementById(id);
const log = (line) => {
  $("log").textContent = line;
  console.log(line);
};

let checkpoint = null;
let tokenizer = null;
const pairs = new Map();

// A backend name, or "cpu:N" for the CPU backend on N threads (matmul workers: needs a cross-origin-isolated
// page, see serve.ts).
async function pair(spec) {
  if (pairs.has(spec)) return pairs.get(spec);
  const [backend, n] = spec.split(":");
  const threads = Number(n ?? 1);
  checkpoint ??= await rd.loadCheckpointFromUrl(TARGET, {
    progress: (url, loaded, total) => total && log(`${url}: ${(100 * loaded / total).toFixed(0)}%`),
  });
  tokenizer ??= await rd.loadTokenizerFromUrl(TARGET);
  log(`building the ${backend} target`);
  const target = backend === "cpu"
    ? rd.createCpuModel(checkpoint, { threads })
    : await rd.createOnnxModel(checkpoint, { provider: backend, threads: 1 });
  const drafter = await rd.loadDrafterFromUrl(DRAFTER, target, { threads, weights: "q8" });
  const p = { target, drafter };
  pairs.set(spec, p);
  return p;
}

async function run(backend, prompt, maxNewTokens, beamWidth, beamLength) {
  const { target, drafter } = await pair(backend);
  const ids = tokenizer.encode(prompt);
  const opts = { maxNewTokens, decode: (t) => tokenizer.decode(t) };
  let t0 = performance.now();
  const ar = await rd.generate(target, [ids], opts);
  const arMs = performance.now() - t0;
  t0 = performance.now();
  const sp = await rd.speculativeGenerate(target, drafter, [ids], { ...opts, beamWidth, beamLength });
  const rdMs = performance.now() - t0;
  return {
    backend,
    promptIds: ids,
    ar: ar.ids[0],
    rd: sp.ids[0],
    text: sp.text[0],
    tau: sp.metrics.tau,
    arTokensPerSecond: (1000 * ar.ids[0].length) / arMs,
    rdTokensPerSecond: (1000 * sp.ids[0].length) / rdMs,
  };
}

const params = new URLSearchParams(location.search);
if (params.has("auto")) {
  const results = [];
  for (const backend of params.get("auto").split(",")) {
    try {
      results.push(
        await run(
          backend,
          params.get("prompt") ?? $("prompt").value,
          Number(params.get("tokens") ?? 24),
          2,
          3,
        ),
      );
    } catch (e) {
      results.push({ backend, error: String(e && e.stack || e) });
    }
  }
  await fetch("/result", {
    method: "POST",
    body: JSON.stringify({
      userAgent: navigator.userAgent,
      webgpu: "gpu" in navigator,
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      results,
    }),
  });
  log("done");
} else {
  $("run").onclick = async () => {
    $("run").disabled = true;
    try {
      const r = await run(
        $("backend").value,
        $("prompt").value,
        Number($("tokens").value),
        Number($("width").value),
        Number($("length").value),
      );
      $("ar").textContent = `${tokenizer.decode(r.ar)}\n\n${r.arTokensPerSecond.toFixed(1)} tok/s`;
      const same = r.ar.length === r.rd.length && r.ar.every((t, i) => t === r.rd[i]);
      $("rd").textContent = `${r.text}\n\n${r.rdTokensPerSecond.toFixed(1)} tok/s, ` +
        `${(r.rdTokensPerSecond / r.arTokensPerSecond).toFixed(2)}x, tau ${r.tau.toFixed(2)}, ` +
        `${same ? "token-identical" : "DIFFERENT from autoregression"}`;
      log("");
    } catch (e) {
      log(String(e));
    } finally {
      $("run").disabled = false;
    }
  };
}
