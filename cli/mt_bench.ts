/**
 * MT-bench prompts from the Hugging Face Hub dataset HuggingFaceH4/mt_bench_prompts (file raw/question.jsonl,
 * the one Apple's reference evaluates on), cached the way huggingface_hub caches datasets:
 *
 * ```text
 * $HF_HUB_CACHE/datasets--HuggingFaceH4--mt_bench_prompts/
 *   blobs/<etag>  refs/main  snapshots/<commit>/raw/question.jsonl -> ../../../blobs/<etag>
 * ```
 *
 * Offline (HF_HUB_OFFLINE=1 or the Hub unreachable) it uses the cached copy, else the shared copy at
 * ../shared/data/mt_bench/question.jsonl (relative to the repository), else fails with one line.
 *
 * The Hub file names the turns "prompt"; FastChat's question.jsonl names them "turns". Both are read.
 *
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { hubCacheDir } from "../loader/hub.ts";

export const MT_BENCH_REPO = "HuggingFaceH4/mt_bench_prompts";
export const MT_BENCH_FILE = "raw/question.jsonl";
export const SHARED_MT_BENCH = fileURLToPath(
  new URL("../../shared/data/mt_bench/question.jsonl", import.meta.url),
);

export interface MtBenchOptions {
  endpoint?: string;
  cacheDir?: string;
  offline?: boolean;
  /** Fallback file when offline and nothing is cached; default the shared copy. */
  fallback?: string;
  log?: (line: string) => void;
  env?: (name: string) => string | undefined;
}

export interface MtBenchSource {
  /** The text, turned into MT-bench question.jsonl lines ("turns"). */
  text: string;
  /** Where it was read from. */
  path: string;
}

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Rewrites Hub rows ({"prompt": [...]}) as question.jsonl rows ({"turns": [...]}); other lines unchanged. */
export function normalizeMtBench(text: string): string {
  return text.split("\n").map((line) => {
    if (!line.trim().startsWith("{")) return line;
    try {
      const o = JSON.parse(line);
      if (o && Array.isArray(o.prompt) && o.turns === undefined) {
        const { prompt, ...rest } = o;
        return JSON.stringify({ ...rest, turns: prompt });
      }
    } catch { /* left for the prompt parser to report with its line number */ }
    return line;
  }).join("\n");
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/** The MT-bench questions: downloaded (and cached), cached, or the shared copy. */
export async function fetchMtBench(opts: MtBenchOptions = {}): Promise<MtBenchSource> {
  const env = opts.env ?? defaultEnv;
  const log = opts.log ?? ((line: string) => console.error(line));
  const endpoint = (opts.endpoint ?? env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, "");
  const repoDir = join(opts.cacheDir ?? hubCacheDir(env), `datasets--${MT_BENCH_REPO.replace("/", "--")}`);
  const offline = opts.offline ??
    ["1", "on", "yes", "true"].includes((env("HF_HUB_OFFLINE") ?? "").toLowerCase());
  let why = "HF_HUB_OFFLINE is set";
  if (!offline) {
    try {
      return await download(endpoint, repoDir, env);
    } catch (e) {
      why = (e as Error).message;
    }
  }
  const commit = (await readIfExists(join(repoDir, "refs", "main")))?.trim();
  if (commit) {
    const path = join(repoDir, "snapshots", commit, MT_BENCH_FILE);
    const text = await readIfExists(path);
    if (text !== null) {
      if (!offline) log(`warning: ${why}; using the cached ${MT_BENCH_REPO}`);
      return { text: normalizeMtBench(text), path };
    }
  }
  const fallback = opts.fallback ?? SHARED_MT_BENCH;
  const text = await readIfExists(fallback);
  if (text !== null) {
    log(`note: ${why}; using ${relative(Deno.cwd(), fallback) || fallback}`);
    return { text: normalizeMtBench(text), path: fallback };
  }
  throw new Error(`--eval-mt-bench: ${why}, and no copy of ${MT_BENCH_REPO} is cached in ${repoDir}`);
}

async function download(
  endpoint: string,
  repoDir: string,
  env: (name: string) => string | undefined,
): Promise<MtBenchSource> {
  const token = env("HF_TOKEN");
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const get = async (url: string) => {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(15_000) });
    } catch (e) {
      throw new Error(`cannot reach ${new URL(url).origin} (${(e as Error).message.split("\n")[0]})`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${url}: HTTP ${res.status}`);
    }
    return res;
  };
  const info = await (await get(`${endpoint}/api/datasets/${MT_BENCH_REPO}/revision/main`)).json();
  const commit = info?.sha;
  if (typeof commit !== "string" || !/^[0-9a-f]{40}$/.test(commit)) {
    throw new Error(`${endpoint}: the dataset info of ${MT_BENCH_REPO} has no commit sha`);
  }
  const snapshot = join(repoDir, "snapshots", commit, MT_BENCH_FILE);
  let text = await readIfExists(snapshot);
  if (text === null) {
    const res = await get(`${endpoint}/datasets/${MT_BENCH_REPO}/resolve/${commit}/${MT_BENCH_FILE}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const rawEtag = res.headers.get("x-linked-etag") ?? res.headers.get("etag");
    const etag = rawEtag?.replace(/^W\//, "").replaceAll('"', "");
    const name = etag && /^[\w.-]+$/.test(etag) ? etag : await sha256(bytes);
    const blob = join(repoDir, "blobs", name);
    await Deno.mkdir(dirname(blob), { recursive: true });
    await Deno.writeFile(blob, bytes);
    await Deno.mkdir(dirname(snapshot), { recursive: true });
    await Deno.remove(snapshot).catch(() => {});
    await Deno.symlink(relative(dirname(snapshot), blob), snapshot);
    text = new TextDecoder().decode(bytes);
  }
  await Deno.mkdir(join(repoDir, "refs"), { recursive: true });
  await Deno.writeTextFile(join(repoDir, "refs", "main"), commit);
  return { text: normalizeMtBench(text), path: snapshot };
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
