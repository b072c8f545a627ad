/**
 * A static file server for the browser example: the repository root (models/, examples/) and the bundle
 * folder (dist/web by default) at /dist/web/. The page posts its results to /result, which `onResult`
 * receives (tests/browser_test.ts uses that).
 *
 *   deno task build:web && deno run -A examples/browser/serve.ts [--port 8000] [--dist dist/web]
 *
 * @module
 */
import { parseArgs } from "node:util";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".jsonl": "application/json",
  ".wasm": "application/wasm",
  ".jinja": "text/plain; charset=utf-8",
};

export interface ServeOptions {
  port?: number;
  /** The folder served at /dist/web/ (tools/build_web.ts's output). */
  dist: string;
  /** Receives each JSON body POSTed to /result. */
  onResult?: (body: unknown) => void;
  /** Called with each path served (tests check which files a page fetched). */
  onFile?: (path: string) => void;
}

/** Serve the repository and the bundle; returns the server (its `addr.port` when `port` is 0). */
export function serveExample(opts: ServeOptions): Deno.HttpServer<Deno.NetAddr> {
  const root = new URL("../../", import.meta.url).pathname;
  return Deno.serve({ port: opts.port ?? 8000, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method === "POST" && url.pathname === "/result") {
      opts.onResult?.(await req.json());
      return new Response("ok");
    }
    let path = decodeURIComponent(url.pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    if (path.endsWith("/")) path += "index.html";
    const file = path.startsWith("/dist/web/") ? `${opts.dist}/${path.slice(10)}` : `${root}${path.slice(1)}`;
    try {
      const body = await Deno.readFile(file);
      const ext = file.slice(file.lastIndexOf("."));
      opts.onFile?.(path);
      return new Response(body, {
        headers: {
          "content-type": TYPES[ext] ?? "application/octet-stream",
          "cache-control": "no-store",
          // Cross-origin isolation: SharedArrayBuffer, so the CPU kernels' workers and WASM threads can run.
          "cross-origin-opener-policy": "same-origin",
          "cross-origin-embedder-policy": "require-corp",
        },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { port: { type: "string", default: "8000" }, dist: { type: "string", default: "dist/web" } },
  });
  const server = serveExample({
    port: Number(values.port),
    dist: values.dist!,
    onResult: (r) => console.log(r),
  });
  console.log(`open http://127.0.0.1:${server.addr.port}/examples/browser/`);
}
