/**
 * The library in a real browser: tools/build_web.ts bundles web.ts, examples/browser/ loads the default pair
 * over HTTP in headless Chromium and generates with autoregression and ReDrafter on the cpu, onnx-wasm and
 * onnx-webgpu backends (WebGPU on Chromium's SwiftShader adapter where there is no GPU), and the cpu backend
 * on 2 threads (its matmul worker from the bundle folder, on the cross-origin-isolated page). Every backend's
 * output must equal Deno's autoregressive output, token for token. Ignored where no Chromium is installed
 * (CHROMIUM names one; CI installs Debian's `chromium`).
 */
import assert from "node:assert/strict";
import { createCpuModel, generate, loadCheckpoint, loadTokenizer } from "../mod.ts";
import { buildWeb } from "../tools/build_web.ts";
import { serveExample } from "../examples/browser/serve.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PROMPT = "It was the best of times, it was the worst of times, it was the age of wisdom,";
const TOKENS = 12;
/** "cpu:2": the CPU backend on 2 threads, its matmul worker bundled and started on an isolated page. */
const BACKENDS = ["cpu", "cpu:2", "onnx-wasm", "onnx-webgpu"];

function findChromium(): string | null {
  const named = Deno.env.get("CHROMIUM");
  for (const p of [named, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    if (!p) continue;
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return null;
}

interface PageResult {
  backend: string;
  error?: string;
  promptIds?: number[];
  ar?: number[];
  rd?: number[];
  tau?: number;
  /** ReDrafter with a dynamic draft tree (the page's `tree` parameter). */
  rdTree?: number[];
  treeTau?: number;
}

const chromium = findChromium();

/** Waits for `p` at most `ms` milliseconds (cleanup must not hang the suite). */
async function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let t: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => t = setTimeout(r, ms))]);
  clearTimeout(t);
}

/** Stop a browser process: SIGKILL (a hung GPU process can outlive SIGTERM), then wait a bounded time. */
async function stopBrowser(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await atMost(child.status, 10_000);
}

/** Remove a browser profile folder; Chromium's helper processes may still write to it for a moment. */
function removeLater(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    setTimeout(() => Deno.remove(dir, { recursive: true }).catch(() => {}), 2000);
  }
}

Deno.test({
  name:
    "browser (headless Chromium): cpu, onnx-wasm, onnx-webgpu give Deno's greedy tokens, AR and ReDrafter (beams and a draft tree); the page's button too",
  ignore: chromium === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A last guard: whatever hangs (the build, Chromium, the server), the test fails within 8 minutes
    // instead of holding up the suite.
    let guard: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      guard = setTimeout(() => reject(new Error("browser test: no end within 480 s")), 480_000);
    });
    try {
      await Promise.race([browserRun(), deadline]);
    } finally {
      clearTimeout(guard);
    }
  },
});

async function browserRun(): Promise<void> {
  const dist = Deno.makeTempDirSync({ prefix: "redrafter-web-" });
  const profile = Deno.makeTempDirSync({ prefix: "redrafter-chromium-" });
  await buildWeb(dist);
  /** Resolves the promise of the page's next POST to /result. */
  let resolve!: (v: unknown) => void;
  const posted = new Promise<{ results: PageResult[]; crossOriginIsolated: boolean }>((r) =>
    resolve = r as (v: unknown) => void
  );
  const served = new Set<string>();
  const server = serveExample({
    port: 0,
    dist,
    onResult: (b) => resolve(b),
    onFile: (p) => served.add(p),
  });
  const query = new URLSearchParams({
    auto: BACKENDS.join(","),
    tokens: String(TOKENS),
    prompt: PROMPT,
    length: "4",
    tree: "6", // and a dynamic draft tree of 6 nodes, depth 3
  });
  const url = `http://127.0.0.1:${server.addr.port}/examples/browser/index.html?${query}`;
  const browser = new Deno.Command(chromium!, {
    args: [
      "--headless=new",
      "--no-sandbox", // CI runs as root
      "--disable-dev-shm-usage",
      "--enable-unsafe-webgpu", // WebGPU on Linux (SwiftShader without a GPU)
      `--user-data-dir=${profile}`,
      url,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no result from ${url} in 300 s`)), 300_000);
    });
    const { results, crossOriginIsolated } = await Promise.race([posted, timeout]);

    // The reference: Deno, the CPU backend, autoregressive.
    const ckpt = await loadCheckpoint(`${ROOT}models/default/target`);
    const tok = await loadTokenizer(`${ROOT}models/default/target`);
    const target = createCpuModel(ckpt, { threads: 1 });
    const ids = tok.encode(PROMPT);
    const ref = (await generate(target, [ids], { maxNewTokens: TOKENS })).ids[0];
    ckpt.tensors.close();

    assert.deepEqual(results.map((r) => r.backend), BACKENDS);
    assert.ok(crossOriginIsolated, "the example page is not cross-origin isolated (COOP/COEP headers)");
    assert.ok(served.has("/dist/web/matmul_worker.js"), "cpu:2 started no matmul worker");
    for (const r of results) {
      assert.equal(r.error, undefined, `${r.backend} failed in the browser: ${r.error}`);
      assert.deepEqual(r.promptIds, ids, `${r.backend}: the browser tokenized the prompt differently`);
      assert.deepEqual(r.ar, ref, `${r.backend}: browser autoregression differs from Deno's`);
      assert.deepEqual(r.rd, ref, `${r.backend}: browser ReDrafter differs from autoregression`);
      assert.ok(r.tau! > 1, `${r.backend}: ReDrafter accepted no draft (tau ${r.tau})`);
      assert.deepEqual(
        r.rdTree,
        ref,
        `${r.backend}: browser ReDrafter with a draft tree differs from autoregression`,
      );
      assert.ok(r.treeTau! > 1, `${r.backend}: the draft tree accepted no draft (tau ${r.treeTau})`);
    }

    // The page's own button: both texts streamed into the page, and the same.
    const clicked = new Promise<{ log: string; ar: string; rd: string }>((
      r,
    ) => (resolve = r as typeof resolve));
    const ui = new Deno.Command(chromium!, {
      args: [
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        `--user-data-dir=${profile}-ui`,
        `http://127.0.0.1:${server.addr.port}/examples/browser/index.html?click`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const page = await Promise.race([clicked, timeout]);
      assert.match(page.log, /token-identical/, page.log);
      // The page starts at the library's recommended drafting for its first backend (cpu, default pair).
      assert.match(page.log, /; 1 x 3, lookup first 6\)/, page.log);
      assert.ok(
        page.ar.length > 20 && page.ar === page.rd,
        `${JSON.stringify(page.ar)} / ${JSON.stringify(page.rd)}`,
      );
    } finally {
      await stopBrowser(ui);
      removeLater(`${profile}-ui`);
    }
  } finally {
    clearTimeout(timer);
    await stopBrowser(browser);
    await atMost(server.shutdown(), 10_000);
    Deno.removeSync(dist, { recursive: true });
    removeLater(profile);
  }
}
