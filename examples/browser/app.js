// The browser example: load the default pair over HTTP with the bundle (tools/build_web.ts), then generate
// with autoregression and with ReDrafter on the chosen backend. `?auto=cpu,onnx-wasm&tokens=24&prompt=...`
// (optionally `&length=L&tree=N`: beams of length L, and also a draft tree of N nodes) runs each backend
// without the UI and POSTs the ids to /result (tests/browser_test.ts).
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
  const drafter = await rd.loadDrafterFromUrl(DRAFTER, target, {
    threads,
    weights: "q7", // int8 against 7-bit activations (relaxed SIMD); q8 where the browser lacks it
    draftVocab: "default",
  });
  const p = { target, drafter };
  pairs.set(spec, p);
  return p;
}

// Drafting options: W beams of L tokens, or (treeNodes > 0) a dynamic draft tree of that many nodes, and
// (lookup > 0) up to that many prompt lookup drafts, tried first (the default pair's drafter step is dear).
const drafting = (beamWidth, beamLength, treeNodes, lookup = 0, lookupLength = "fixed") => ({
  beamWidth,
  beamLength,
  draftTree: treeNodes > 0 ? { nodes: treeNodes } : undefined,
  lookup: lookup > 0 ? { maxDrafts: lookup, mode: "first", length: lookupLength } : undefined,
});

// The drafting the inputs ask for, as the CLI's stats line names it ("1 x 3, lookup first 6").
function shown() {
  const tree = Number($("tree").value), lookup = Number($("lookup").value);
  return `${$("width").value} x ${$("length").value}${tree > 0 ? `, tree ${tree}` : ""}` +
    `${lookup > 0 ? `, lookup first ${lookup}` : ""}`;
}

// The page's drafting inputs start at the library's measured best for the chosen backend
// (rd.recommendedDrafting: e.g. a 32-node draft tree on onnx-webgpu, 1 x 3 with lookup first on a CPU).
function showRecommended() {
  const r = rd.recommendedDrafting($("backend").value.split(":")[0], { defaultPair: true });
  $("width").value = r.beamWidth;
  $("length").value = r.beamLength;
  $("tree").value = r.draftTree?.nodes ?? 0;
  $("lookup").value = r.lookup?.maxDrafts ?? 0;
}

// Autoregression, then ReDrafter with beams, then (treeNodes > 0) with a dynamic draft tree.
async function run(backend, prompt, maxNewTokens, beamWidth, beamLength, treeNodes) {
  const { target, drafter } = await pair(backend);
  const ids = tokenizer.encode(prompt);
  const opts = { maxNewTokens, decode: (t) => tokenizer.decode(t) };
  let t0 = performance.now();
  const ar = await rd.generate(target, [ids], opts);
  const arMs = performance.now() - t0;
  t0 = performance.now();
  const sp = await rd.speculativeGenerate(target, drafter, [ids], {
    ...opts,
    ...drafting(beamWidth, beamLength, 0),
  });
  const rdMs = performance.now() - t0;
  const tree = treeNodes > 0
    ? await rd.speculativeGenerate(target, drafter, [ids], {
      ...opts,
      ...drafting(beamWidth, beamLength, treeNodes),
    })
    : null;
  return {
    rdTree: tree?.ids[0],
    treeTau: tree?.metrics.tau,
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
          Number(params.get("length") ?? 3),
          Number(params.get("tree") ?? 0),
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
  // Streams a generation into an element, yielding to the page between events so the text paints as it comes.
  const streamInto = async (el, gen) => {
    const decoder = rd.createStreamDecoder(tokenizer, { skipSpecialTokens: true });
    el.textContent = "";
    const t0 = performance.now();
    for (;;) {
      const it = await gen.next();
      if (it.done) {
        el.textContent += decoder.flush();
        return { result: it.value, ms: performance.now() - t0 };
      }
      el.textContent += decoder.push(it.value.tokens);
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  showRecommended();
  $("backend").onchange = showRecommended;
  $("run").onclick = async () => {
    $("run").disabled = true;
    try {
      const backend = $("backend").value.split(":")[0];
      const { target, drafter } = await pair($("backend").value);
      const ids = tokenizer.encode($("prompt").value);
      const opts = { maxNewTokens: Number($("tokens").value) };
      log("autoregressive...");
      const ar = await streamInto($("ar"), rd.generateStream(target, [ids], opts));
      log("ReDrafter...");
      const sp = await streamInto(
        $("rd"),
        rd.speculativeStream(target, drafter, [ids], {
          ...opts,
          ...drafting(
            Number($("width").value),
            Number($("length").value),
            Number($("tree").value),
            Number($("lookup").value),
            rd.recommendedDrafting(backend, { defaultPair: true }).lookup?.length,
          ),
        }),
      );
      const arTps = (1000 * ar.result.ids[0].length) / ar.ms;
      const rdTps = (1000 * sp.result.ids[0].length) / sp.ms;
      const same = ar.result.ids[0].length === sp.result.ids[0].length &&
        ar.result.ids[0].every((t, i) => t === sp.result.ids[0][i]);
      log(
        `autoregressive ${arTps.toFixed(1)} tok/s; ReDrafter ${rdTps.toFixed(1)} tok/s ` +
          `(${(rdTps / arTps).toFixed(2)}x, tau ${sp.result.metrics.tau.toFixed(2)}; ${shown()}), ` +
          `${same ? "token-identical" : "DIFFERENT from autoregression"}`,
      );
    } catch (e) {
      log(String(e));
    } finally {
      $("run").disabled = false;
    }
  };
}
// `?click`: press Generate once with the page's defaults and POST what the page shows (tests/browser_test.ts).
if (params.has("click")) {
  await $("run").onclick();
  await fetch("/result", {
    method: "POST",
    body: JSON.stringify({ log: $("log").textContent, ar: $("ar").textContent, rd: $("rd").textContent }),
  });
}
