/**
 * Bundles web.ts for browsers: dist/web/redrafter.js (one ES module, onnxruntime-web inside) and, next to it,
 * the onnxruntime-web .wasm and the CPU kernels' matmul worker (matmul_worker.js), which the bundle loads
 * from its own folder. The worker runs only on a cross-origin-isolated page (COOP/COEP headers, for
 * SharedArrayBuffer), as examples/browser/serve.ts serves it.
 *
 *   deno task build:web [--out dist/web]
 *
 * Then `deno run -A examples/browser/serve.ts` and open http://localhost:8000/examples/browser/.
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";

/** The onnxruntime-web runtime the bundled `onnxruntime-web/webgpu` entry loads (WASM and WebGPU EPs). */
export const ORT_WASM = "ort-wasm-simd-threaded.asyncify.wasm";

/** Bundle web.ts into `outDir` with onnxruntime-web's .wasm beside it; returns the bundle's path. */
export async function buildWeb(outDir: string, log: (line: string) => void = () => {}): Promise<string> {
  const root = new URL("../", import.meta.url).pathname;
  Deno.mkdirSync(outDir, { recursive: true });
  const bundle = `${outDir}/redrafter.js`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--platform",
      "browser",
      // Deno-only paths, imported dynamically and never reached in a browser.
      "--external",
      "onnxruntime-node",
      "--external",
      "node:worker_threads",
      "-o",
      bundle,
      `${root}web.ts`,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`build_web: deno bundle failed:\n${err}`);
  // The CPU kernels' matmul worker (threads > 1), loaded by the bundle from its own folder.
  const worker = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--platform",
      "browser",
      "--external",
      "node:worker_threads",
      "-o",
      `${outDir}/matmul_worker.js`,
      `${root}kernels/matmul_worker.ts`,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!worker.success) {
    throw new Error(
      `build_web: deno bundle of the matmul worker failed:\n${new TextDecoder().decode(worker.stderr)}`,
    );
  }
  const dist = new URL("./", import.meta.resolve("onnxruntime-web/webgpu")).pathname;
  Deno.copyFileSync(`${dist}${ORT_WASM}`, `${outDir}/${ORT_WASM}`);
  const mb = (p: string) => (Deno.statSync(p).size / 2 ** 20).toFixed(1);
  log(`wrote ${bundle} (${mb(bundle)} MiB) and ${outDir}/${ORT_WASM} (${mb(`${outDir}/${ORT_WASM}`)} MiB)`);
  return bundle;
}

if (import.meta.main) {
  const { values } = toolArgs(import.meta.url, {
    options: { out: { type: "string", default: "dist/web" } },
  });
  await buildWeb(values.out!, console.log);
}
