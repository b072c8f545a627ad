/**
 * Model directories from a local path or the Hugging Face Hub.
 *
 * `resolveModel("path/to/dir")` returns the directory as is. `resolveModel("org/name")` or
 * `resolveModel("org/name@revision")` downloads the files a checkpoint needs into the same cache that
 * huggingface_hub (and so transformers) uses, and returns the snapshot directory:
 *
 * ```text
 * $HF_HUB_CACHE (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
 *   models--org--name/
 *     blobs/<etag>                 file contents, named by ETag (sha256 for LFS files, git sha1 otherwise)
 *     blobs/<etag>.incomplete      a partial download, resumed with a Range request next time
 *     refs/main                    the commit that "main" pointed at
 *     snapshots/<commit>/<file>    relative symlinks to ../../blobs/<etag>
 * ```
 *
 * The protocol is the Hub's: `GET /api/models/{repo}/revision/{rev}` gives the commit (`sha`) and file list;
 * for each file, `HEAD /{repo}/resolve/{commit}/{file}` gives X-Repo-Commit, the ETag (X-Linked-Etag for LFS
 * files) and size (X-Linked-Size), following relative redirects (renamed repos) but not absolute ones (the
 * CDN), whose Location is then fetched without the token. HF_TOKEN (else the token file huggingface_hub
 * writes) is sent as a Bearer token to the Hub. With HF_HUB_OFFLINE=1, or when the Hub cannot be reached, the
 * cached snapshot is used.
 *
 * Intended use in a CLI (the progress bar lives in cli/term.ts, since loader/ must not import cli/):
 *
 * ```ts
 * import { resolveModel } from "../loader/hub.ts";
 * import { progressBar } from "./term.ts";
 * const { dir } = await resolveModel(values.model, {
 *   progress: (label, total, initial) => progressBar({ label, total, initial, unit: "bytes" }),
 * });
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";

/** Files a checkpoint directory may need, fetched when the repo has them (config.json is required). */
export const MODEL_FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "chat_template.jinja",
  "special_tokens_map.json",
];
const WEIGHTS = "model.safetensors";
const WEIGHTS_INDEX = "model.safetensors.index.json";

/** A running download's display; cli/term.ts progressBar fits. */
export interface DownloadProgress {
  update(done: number): void;
  finish(): void;
}
/** Makes a display for one file: label (file name), total bytes (null if unknown), bytes already on disk. */
export type ProgressFactory = (label: string, total: number | null, initial: number) => DownloadProgress;

export interface ResolveOptions {
  /** Hub URL; default HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Cache root; default HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Access token; default HF_TOKEN, else the token file. null: send none. */
  token?: string | null;
  /** Use only the cache; default from HF_HUB_OFFLINE. */
  offline?: boolean;
  /** More files to fetch when the repo has them (e.g. a drafter's files). */
  extraFiles?: string[];
  /** One progress display per downloaded file; none when absent. */
  progress?: ProgressFactory;
  /** Warnings (falling back to the cache, resuming); default: stderr. */
  log?: (line: string) => void;
  /** Resumes within one call after a dropped connection; default 3. */
  maxRetries?: number;
  /** Limit for metadata requests, and for a download stalled without data; default 10 s / 60 s. */
  timeoutMs?: number;
  stallTimeoutMs?: number;
  /** Environment lookup; default Deno.env.get. Tests pass their own. */
  env?: (name: string) => string | undefined;
}

export interface ResolvedModel {
  /** Directory holding config.json, weights and tokenizer files. */
  dir: string;
  /** "org/name" for Hub models, null for a local directory. */
  repo: string | null;
  revision: string | null;
  commit: string | null;
  /** True when the cache was used without asking the Hub (offline, or the Hub unreachable). */
  offline: boolean;
  /** Files ensured in dir, relative to it (empty for a local directory). */
  files: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Environment

function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}

function hfHome(env: (name: string) => string | undefined): string {
  const home = env("HF_HOME");
  if (home) return home;
  const xdg = env("XDG_CACHE_HOME");
  return join(xdg || join(env("HOME") || homedir(), ".cache"), "huggingface");
}

/** The cache root, as huggingface_hub picks it. */
export function hubCacheDir(env: (name: string) => string | undefined = defaultEnv): string {
  return env("HF_HUB_CACHE") || env("HUGGINGFACE_HUB_CACHE") || join(hfHome(env), "hub");
}

/** HF_TOKEN, else the token file that `huggingface-cli login` writes; null when neither. */
export function hubToken(env: (name: string) => string | undefined = defaultEnv): string | null {
  const fromEnv = env("HF_TOKEN") || env("HUGGING_FACE_HUB_TOKEN");
  if (fromEnv) return fromEnv.trim();
  try {
    const t = Deno.readTextFileSync(env("HF_TOKEN_PATH") || join(hfHome(env), "token")).trim();
    return t || null;
  } catch {
    return null;
  }
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && ["1", "on", "yes", "true"].includes(v.trim().toLowerCase());
}

/** "org/name" or "org/name@rev" -> parts; null when spec is not a repo id. */
export function parseRepoSpec(spec: string): { repo: string; revision: string } | null {
  const at = spec.indexOf("@");
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? "main" : spec.slice(at + 1);
  // huggingface_hub's validate_repo_id: word chars, '-', '.', no '--' or '..', at most 96 characters.
  const ok = /^[\w.-]+\/[\w.-]+$/.test(repo) && !/--|\.\./.test(repo) && repo.length <= 96 &&
    !/^[.-]|[.-]$/.test(repo.split("/")[0]) && !/^[.-]|[.-]$/.test(repo.split("/")[1]);
  if (!ok || revision === "") return null;
  return { repo, revision };
}

/** models--org--name under the cache root. */
export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.replaceAll("/", "--")}`);
}

const isCommit = (rev: string) => /^[0-9a-f]{40}$/.test(rev);

// ---------------------------------------------------------------------------------------------------------
// Entry point

interface Ctx {
  repo: string;
  revision: string;
  endpoint: string;
  cacheDir: string;
  repoDir: string;
  token: string | null;
  extraFiles: string[];
  progress?: ProgressFactory;
  log: (line: string) => void;
  maxRetries: number;
  timeoutMs: number;
  stallTimeoutMs: number;
}

/** A local directory as is, or a Hub repo's snapshot directory (downloaded as needed). See the module doc. */
export async function resolveModel(spec: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const local = await statOrNull(spec);
  if (local?.isDirectory) {
    return { dir: resolve(spec), repo: null, revision: null, commit: null, offline: false, files: [] };
  }
  if (local) throw new Error(`${spec}: is a file; expected a model directory or a Hub repo id (org/name)`);
  const parsed = parseRepoSpec(spec);
  if (!parsed) {
    throw new Error(
      `${spec}: no such directory, and not a Hub repo id (expected org/name or org/name@revision)`,
    );
  }
  const env = opts.env ?? defaultEnv;
  const cacheDir = resolve(opts.cacheDir ?? hubCacheDir(env));
  const ctx: Ctx = {
    ...parsed,
    endpoint: (opts.endpoint ?? env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, ""),
    cacheDir,
    repoDir: repoCacheDir(cacheDir, parsed.repo),
    token: opts.token === undefined ? hubToken(env) : opts.token,
    extraFiles: opts.extraFiles ?? [],
    progress: opts.progress,
    log: opts.log ?? ((line) => console.error(line)),
    maxRetries: opts.maxRetries ?? 3,
    timeoutMs: opts.timeoutMs ?? 10_000,
    stallTimeoutMs: opts.stallTimeoutMs ?? 60_000,
  };

  if (opts.offline ?? truthy(env("HF_HUB_OFFLINE"))) return await fromCache(ctx, "HF_HUB_OFFLINE is set");

  let info: { commit: string; files: string[] };
  try {
    info = await repoInfo(ctx);
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
    const cached = await fromCache(ctx, e.message);
    ctx.log(`warning: ${e.message}; using the cached snapshot ${cached.commit}`);
    return cached;
  }
  return await download(ctx, info.commit, info.files);
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

/** The Hub could not be reached at all (as opposed to answering with an error). */
class NetworkError extends Error {}
/** A download broke off mid-way; it can be resumed. */
class TransferError extends Error {}

function authHeaders(ctx: Ctx): Record<string, string> {
  return ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
}

/** fetch with a time limit on the whole exchange, body included (`use` reads it). */
async function request<T>(
  ctx: Ctx,
  url: string,
  init: RequestInit,
  use: (res: Response) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${ctx.timeoutMs} ms`)), ctx.timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: ac.signal });
    } catch (e) {
      throw new NetworkError(`cannot reach ${new URL(url).origin} (${errorText(e)})`);
    }
    return await use(res);
  } finally {
    clearTimeout(timer);
  }
}

/** First line of an error's message, plus the root cause's last clause ("Connection refused (os error 111)"). */
function errorText(e: unknown): string {
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  const cause = e instanceof Error ? e.cause : undefined;
  if (cause === undefined) return msg;
  const tail = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0].split(": ").at(-1);
  return `${msg}: ${tail}`;
}

/** A clear error for a Hub error response, naming the repo (and file) and what to do. */
async function hubError(ctx: Ctx, res: Response, file?: string): Promise<Error> {
  await res.body?.cancel();
  const code = res.headers.get("x-error-code") ?? "";
  const status = res.status;
  const ref = `${ctx.repo}@${ctx.revision}`;
  if (code === "RevisionNotFound") {
    return new Error(`${ctx.repo}: revision '${ctx.revision}' not found on ${ctx.endpoint}`);
  }
  if (code === "RepoNotFound" || (status === 404 && !file)) {
    const hint = ctx.token
      ? "check the name, and that the account behind HF_TOKEN can see it"
      : "check the name; if it is private or gated, set HF_TOKEN to a token with read access";
    return new Error(`${ctx.repo}: repository not found on ${ctx.endpoint} (HTTP ${status}); ${hint}`);
  }
  if (code === "EntryNotFound" || status === 404) {
    return new Error(`${file}: not found in ${ref} (HTTP ${status})`);
  }
  if (status === 401 || status === 403 || code === "GatedRepo") {
    const page = `${ctx.endpoint}/${ctx.repo}`;
    return new Error(
      ctx.token
        ? `${ctx.repo}: access denied (HTTP ${status}) with the HF_TOKEN given; the repo is gated or private: ` +
          `request access at ${page} with the account the token belongs to`
        : `${ctx.repo}: access denied (HTTP ${status}); the repo is gated or private: accept its terms at ${page} ` +
          `and set HF_TOKEN to a token with read access`,
    );
  }
  return new Error(`${file ?? "repo info"} of ${ref}: HTTP ${status} ${res.statusText} from ${ctx.endpoint}`);
}

async function repoInfo(ctx: Ctx): Promise<{ commit: string; files: string[] }> {
  const url = `${ctx.endpoint}/api/models/${ctx.repo}/revision/${encodeURIComponent(ctx.revision)}`;
  return await request(ctx, url, { headers: authHeaders(ctx) }, async (res) => {
    if (!res.ok) throw await hubError(ctx, res);
    let body: { sha?: unknown; siblings?: { rfilename?: unknown }[] };
    try {
      body = await res.json();
    } catch (e) {
      throw new Error(`${url}: answer is not JSON (${errorText(e)}); is HF_ENDPOINT a Hugging Face Hub?`);
    }
    if (typeof body.sha !== "string" || !isCommit(body.sha) || !Array.isArray(body.siblings)) {
      throw new Error(`${url}: answer lacks "sha" or "siblings"; is HF_ENDPOINT a Hugging Face Hub?`);
    }
    const files = body.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string");
    return { commit: body.sha, files };
  });
}

interface FileMeta {
  etag: string;
  size: number | null;
  commit: string | null;
  /** Where the bytes are: the resolve URL, or the CDN URL an absolute redirect named. */
  url: string;
}

/** HEAD on the resolve URL, as huggingface_hub's get_hf_file_metadata does. */
async function fileMeta(ctx: Ctx, commit: string, file: string): Promise<FileMeta> {
  let url = `${ctx.endpoint}/${ctx.repo}/resolve/${commit}/${
    file.split("/").map(encodeURIComponent).join("/")
  }`;
  for (let hop = 0; hop < 10; hop++) {
    const headers = { ...authHeaders(ctx), "accept-encoding": "identity" };
    const res = await request(ctx, url, { method: "HEAD", headers, redirect: "manual" }, async (r) => {
      await r.body?.cancel();
      return r;
    });
    const location = res.headers.get("location");
    const redirect = res.status >= 300 && res.status < 400;
    if (redirect && !location) throw new Error(`${file}: HTTP ${res.status} without Location from ${url}`);
    if (redirect && !/^([a-z][a-z0-9+.-]*:)?\/\//i.test(location!)) {
      url = new URL(location!, url).href; // relative: the repo was renamed or moved; follow with the token
      continue;
    }
    if (!redirect && !res.ok) throw await hubError(ctx, res, file);
    const rawEtag = res.headers.get("x-linked-etag") ?? res.headers.get("etag");
    if (!rawEtag) {
      throw new Error(`${file}: the Hub gave no ETag for ${url}; is HF_ENDPOINT a Hugging Face Hub?`);
    }
    const rawSize = res.headers.get("x-linked-size") ?? (redirect ? null : res.headers.get("content-length"));
    const size = rawSize !== null && /^\d+$/.test(rawSize) ? Number(rawSize) : null;
    return {
      etag: rawEtag.replace(/^W\//, "").replaceAll('"', ""),
      size,
      commit: res.headers.get("x-repo-commit"),
      url: redirect ? new URL(location!, url).href : url,
    };
  }
  throw new Error(`${file}: too many redirects from ${ctx.endpoint}`);
}

// ---------------------------------------------------------------------------------------------------------
// Download into the cache

async function download(ctx: Ctx, commit: string, listed: string[]): Promise<ResolvedModel> {
  const have = new Set(listed);
  const snapshot = join(ctx.repoDir, "snapshots", commit);
  if (!have.has("config.json")) {
    throw new Error(`${ctx.repo}@${ctx.revision}: has no config.json (files: ${shortList(listed)})`);
  }
  if (ctx.revision !== commit) {
    // refs/<revision> -> commit, as huggingface_hub writes it, so offline use can find the snapshot.
    const ref = join(ctx.repoDir, "refs", ctx.revision);
    await Deno.mkdir(dirname(ref), { recursive: true });
    await Deno.writeTextFile(ref, commit);
  }
  const files = [...MODEL_FILES, ...ctx.extraFiles].filter((f) => have.has(f));
  if (have.has(WEIGHTS)) files.push(WEIGHTS);
  else if (have.has(WEIGHTS_INDEX)) files.push(WEIGHTS_INDEX);
  else {
    throw new Error(
      `${ctx.repo}@${ctx.revision}: has no ${WEIGHTS} or ${WEIGHTS_INDEX} (files: ${shortList(listed)}); ` +
        `only safetensors checkpoints are supported`,
    );
  }
  for (const f of files) await ensureFile(ctx, commit, f);
  if (files.includes(WEIGHTS_INDEX)) {
    const shards = await shardsOf(join(snapshot, WEIGHTS_INDEX));
    for (const s of shards) {
      if (!have.has(s)) {
        throw new Error(`${WEIGHTS_INDEX} of ${ctx.repo}@${ctx.revision} names ${s}, which the repo lacks`);
      }
      await ensureFile(ctx, commit, s);
      files.push(s);
    }
  }
  return { dir: snapshot, repo: ctx.repo, revision: ctx.revision, commit, offline: false, files };
}

function shortList(files: string[]): string {
  return files.length > 12 ? `${files.slice(0, 12).join(", ")}, ...` : files.join(", ") || "none";
}

/** The shard files an index.json's weight_map names, in first-seen order. */
async function shardsOf(indexPath: string): Promise<string[]> {
  let index: { weight_map?: Record<string, unknown> };
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (e) {
    throw new Error(`${indexPath}: cannot read the shard index (${errorText(e)})`);
  }
  const map = index.weight_map;
  if (!map || typeof map !== "object") throw new Error(`${indexPath}: no "weight_map" object`);
  const shards = [...new Set(Object.values(map))];
  for (const s of shards) {
    if (typeof s !== "string" || s.includes("..") || s.startsWith("/")) {
      throw new Error(`${indexPath}: bad shard name ${JSON.stringify(s)} in weight_map`);
    }
  }
  return shards as string[];
}

/** Makes snapshots/<commit>/<file> exist, downloading its blob unless another revision already has it. */
async function ensureFile(ctx: Ctx, commit: string, file: string): Promise<void> {
  const pointer = join(ctx.repoDir, "snapshots", commit, file);
  if (await statOrNull(pointer)) return; // a commit's files never change (follows the symlink: blob present)
  const meta = await fileMeta(ctx, commit, file);
  if (meta.commit !== null && meta.commit !== commit) {
    throw new Error(`${file}: the Hub answered for commit ${meta.commit}, not the requested ${commit}`);
  }
  const blob = join(ctx.repoDir, "blobs", meta.etag);
  if (!/^[\w.-]+$/.test(meta.etag)) throw new Error(`${file}: unusable ETag ${JSON.stringify(meta.etag)}`);
  if (!(await statOrNull(blob))) {
    await Deno.mkdir(dirname(blob), { recursive: true });
    await downloadBlob(ctx, file, meta, blob);
  }
  await Deno.mkdir(dirname(pointer), { recursive: true });
  await Deno.remove(pointer).catch(() => {}); // a dangling link from an interrupted earlier run
  const depth = file.split("/").length - 1;
  await Deno.symlink(join("../".repeat(2 + depth), "blobs", meta.etag), pointer);
}

async function downloadBlob(ctx: Ctx, file: string, meta: FileMeta, blob: string): Promise<void> {
  const partial = `${blob}.incomplete`;
  for (let attempt = 0;; attempt++) {
    try {
      await fetchInto(ctx, file, meta, partial);
      break;
    } catch (e) {
      if (!(e instanceof TransferError)) throw e;
      if (attempt >= ctx.maxRetries) {
        throw new Error(`${e.message}; run again to resume (${partial})`);
      }
      ctx.log(`warning: ${e.message}; resuming (${attempt + 1}/${ctx.maxRetries})`);
    }
  }
  const size = (await Deno.stat(partial)).size;
  if (meta.size !== null && size !== meta.size) {
    await Deno.remove(partial);
    throw new Error(
      `${file} of ${ctx.repo}: got ${size} bytes, the Hub said ${meta.size}; removed, run again`,
    );
  }
  if (/^[0-9a-f]{64}$/.test(meta.etag)) {
    // LFS files are named by their sha256: check it, since a resumed download splices two transfers.
    const digest = await sha256File(partial);
    if (digest !== meta.etag) {
      await Deno.remove(partial);
      throw new Error(
        `${file} of ${ctx.repo}: sha256 ${digest} does not match the Hub's ${meta.etag}; removed, run again`,
      );
    }
  }
  await Deno.rename(partial, blob);
}

/** One GET into `partial`, resuming from its current size with a Range request. */
async function fetchInto(ctx: Ctx, file: string, meta: FileMeta, partial: string): Promise<void> {
  let have = (await statOrNull(partial))?.size ?? 0;
  if (meta.size !== null && have > meta.size) have = 0; // not a prefix of this file: start over
  if (meta.size !== null && have === meta.size && have > 0) return; // finished before a crash, not yet renamed
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  // The token goes only to the Hub itself, never to the CDN an absolute redirect pointed at.
  if (new URL(meta.url).origin === new URL(ctx.endpoint).origin) Object.assign(headers, authHeaders(ctx));
  if (have > 0) headers.range = `bytes=${have}-`;

  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(new Error(`stalled for ${ctx.stallTimeoutMs} ms`)), ctx.stallTimeoutMs);
  };
  arm();
  let out: Deno.FsFile | null = null;
  let bar: DownloadProgress | undefined;
  try {
    let res: Response;
    try {
      res = await fetch(meta.url, { headers, signal: ac.signal });
    } catch (e) {
      throw new TransferError(`${file}: cannot reach ${new URL(meta.url).origin} (${errorText(e)})`);
    }
    if (res.status === 416) {
      await res.body?.cancel();
      await Deno.remove(partial).catch(() => {});
      throw new TransferError(`${file}: the server refused to resume at byte ${have}; starting over`);
    }
    if (!res.ok) throw await hubError(ctx, res, file);
    if (have > 0 && res.status === 206) {
      const start = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1];
      if (start !== undefined && Number(start) !== have) {
        await res.body?.cancel();
        await Deno.remove(partial);
        throw new TransferError(`${file}: the server resumed at byte ${start}, not ${have}; starting over`);
      }
    } else {
      have = 0; // a 200 is the whole file: the server ignored the Range header
    }
    out = await Deno.open(partial, { write: true, create: true, append: have > 0, truncate: have === 0 });
    bar = ctx.progress?.(file, meta.size, have);
    try {
      for await (const chunk of res.body ?? []) {
        arm();
        for (let off = 0; off < chunk.length;) off += await out.write(chunk.subarray(off));
        have += chunk.length;
        bar?.update(have);
      }
    } catch (e) {
      throw new TransferError(`${file}: download interrupted after ${have} bytes (${errorText(e)})`);
    }
    if (meta.size !== null && have < meta.size) {
      throw new TransferError(`${file}: connection closed after ${have} of ${meta.size} bytes`);
    }
  } finally {
    clearTimeout(timer);
    out?.close();
    bar?.finish();
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using f = await Deno.open(path);
  for await (const chunk of f.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Offline

/** The cached snapshot for ctx's revision, checked for config.json and complete weights. */
async function fromCache(ctx: Ctx, why: string): Promise<ResolvedModel> {
  const ref = `${ctx.repo}@${ctx.revision}`;
  let commit: string | null = isCommit(ctx.revision) ? ctx.revision : null;
  if (commit === null) {
    try {
      commit = (await Deno.readTextFile(join(ctx.repoDir, "refs", ctx.revision))).trim();
    } catch { /* not cached */ }
  }
  const dir = commit ? join(ctx.repoDir, "snapshots", commit) : null;
  if (!dir || !(await statOrNull(dir))?.isDirectory) {
    throw new Error(`${why}, and nothing of ${ref} is cached in ${ctx.cacheDir}`);
  }
  const files = [...MODEL_FILES, ...ctx.extraFiles].filter((f) => existsSyncFile(join(dir, f)));
  const missing: string[] = [];
  if (!files.includes("config.json")) missing.push("config.json");
  if (existsSyncFile(join(dir, WEIGHTS))) files.push(WEIGHTS);
  else if (existsSyncFile(join(dir, WEIGHTS_INDEX))) {
    files.push(WEIGHTS_INDEX);
    for (const s of await shardsOf(join(dir, WEIGHTS_INDEX))) {
      if (existsSyncFile(join(dir, s))) files.push(s);
      else missing.push(s);
    }
  } else missing.push(WEIGHTS);
  if (missing.length > 0) {
    throw new Error(`${why}, and the cached snapshot of ${ref} (${dir}) lacks ${missing.join(", ")}`);
  }
  return { dir, repo: ctx.repo, revision: ctx.revision, commit, offline: true, files };
}

function existsSyncFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
