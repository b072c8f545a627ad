/**
 * Checkpoints, tokenizers and drafters fetched over HTTP(S): the files of a checkpoint folder under a base
 * URL, read into memory. This is how browsers and Deno Deploy load models (no file system); Deno can use it
 * too. A relative base URL resolves against the page (`location.href`).
 *
 * @module
 */
import type { DraftModel } from "../core/types.ts";
import type { Checkpoint } from "./types.ts";
import { ConfigError, mergeGeneration, parseGenerationConfig, parseModelConfig } from "./config.ts";
import { bufferSource, openSafetensors, openShardedFrom } from "./safetensors.ts";
import { type Tokenizer, tokenizerFromTexts, TokenizerNotFoundError } from "./tokenizer.ts";
import { parseDrafterConfig } from "../drafter/config.ts";
import { checkDrafterFits, type DrafterTarget, readDrafterWeights } from "../drafter/load.ts";
import { cpuDrafter, type CpuDrafterOptions, type DrafterWeights } from "../drafter/cpu.ts";
import {
  DRAFT_VOCAB_FILE,
  type DraftVocabOption,
  resolveDraftVocab,
  restrictDraftVocab,
} from "../drafter/vocab.ts";

/** How files are fetched. */
export interface FetchOptions {
  /** The fetch to use (default globalThis.fetch): add headers, credentials or a cache around it. */
  fetch?: typeof fetch;
  /** Called as a file's bytes arrive: its URL, bytes so far, and its total (0 when the server gives none). */
  progress?: (url: string, loaded: number, total: number) => void;
}

/** The URL of `name` in the folder `base` (a trailing slash is added when missing). */
export function fileUrl(base: string | URL, name: string): string {
  let href = typeof base === "string" ? base : base.href;
  if (!href.endsWith("/")) href += "/";
  const page = (globalThis as { location?: { href: string } }).location?.href;
  let folder: URL;
  try {
    folder = new URL(href, page);
  } catch {
    throw new Error(`${href}: not a URL (a relative URL needs a page to resolve against)`);
  }
  return new URL(name, folder).href;
}

/** GET a URL; null on 404 (an optional file that is absent), an error naming the URL otherwise. */
async function get(url: string, opts: FetchOptions): Promise<Response | null> {
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url);
  } catch (e) {
    throw new Error(`${url}: fetch failed: ${(e as Error).message}`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  }
  return res;
}

/** The text of a file, or null when it is absent. */
export async function fetchText(url: string, opts: FetchOptions = {}): Promise<string | null> {
  const res = await get(url, opts);
  return res === null ? null : await res.text();
}

/** The bytes of a file (streamed, with progress), or null when it is absent. */
export async function fetchBytes(url: string, opts: FetchOptions = {}): Promise<Uint8Array | null> {
  const res = await get(url, opts);
  if (res === null) return null;
  // A compressed body's content-length counts the compressed bytes, not the ones the stream yields.
  const encoding = res.headers.get("content-encoding");
  const compressed = encoding !== null && encoding !== "identity";
  const total = compressed ? 0 : Number(res.headers.get("content-length") ?? 0) || 0;
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  // One buffer of the announced size (no second copy); chunks are joined only when no size was given.
  let out = new Uint8Array(total);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch (e) {
      throw new Error(`${url}: the download broke off after ${loaded} bytes: ${(e as Error).message}`);
    }
    const { done, value } = next;
    if (done) break;
    if (total > 0 && loaded + value.length > total) {
      throw new Error(`${url}: the server sent more than the ${total} bytes it announced`);
    }
    if (total > 0) out.set(value, loaded);
    else chunks.push(value);
    loaded += value.length;
    opts.progress?.(url, loaded, total);
  }
  if (total > 0 && loaded !== total) {
    throw new Error(`${url}: got ${loaded} bytes, the server announced ${total} (truncated download?)`);
  }
  if (total === 0) {
    out = new Uint8Array(loaded);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
  }
  return out;
}

function parseJson(text: string, url: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(url, `malformed JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(url, "expected a JSON object at the top level");
  }
  return value as Record<string, unknown>;
}

/**
 * A Hugging Face checkpoint under a base URL: config.json, optional generation_config.json, and
 * model.safetensors or model.safetensors.index.json with its shards, all fetched into memory.
 */
export async function loadCheckpointFromUrl(
  base: string | URL,
  opts: FetchOptions = {},
): Promise<Checkpoint> {
  const configUrl = fileUrl(base, "config.json");
  const dir = configUrl.slice(0, -"config.json".length);
  const configText = await fetchText(configUrl, opts);
  if (configText === null) throw new ConfigError(dir, "no config.json at this URL (HTTP 404)");
  const rawConfig = parseJson(configText, configUrl);
  let config = parseModelConfig(rawConfig, configUrl);
  const genUrl = fileUrl(base, "generation_config.json");
  const genText = await fetchText(genUrl, opts);
  const generation = genText === null ? null : parseGenerationConfig(parseJson(genText, genUrl), genUrl);
  config = mergeGeneration(config, generation);
  const single = fileUrl(base, "model.safetensors");
  const bytes = await fetchBytes(single, opts);
  if (bytes !== null) {
    return { dir, config, rawConfig, generation, tensors: openSafetensors(single, bufferSource(bytes)) };
  }
  const indexUrl = fileUrl(base, "model.safetensors.index.json");
  const indexText = await fetchText(indexUrl, opts);
  if (indexText === null) {
    throw new ConfigError(
      dir,
      "neither model.safetensors nor model.safetensors.index.json at this URL (HTTP 404)",
    );
  }
  // Fetch every shard first (openShardedFrom opens them synchronously).
  const shards = new Map<string, Uint8Array>();
  const weightMap = (parseJson(indexText, indexUrl).weight_map ?? {}) as Record<string, string>;
  for (const shard of new Set(Object.values(weightMap))) {
    const url = dir + shard;
    const b = await fetchBytes(url, opts);
    if (b === null) throw new ConfigError(indexUrl, `shard ${shard} is missing (HTTP 404 at ${url})`);
    shards.set(url, b);
  }
  const tensors = openShardedFrom(indexUrl, indexText, (url) => bufferSource(shards.get(url)!));
  return { dir, config, rawConfig, generation, tensors };
}

/** The tokenizer under a base URL: tokenizer.json, optional tokenizer_config.json and chat_template.jinja. */
export async function loadTokenizerFromUrl(base: string | URL, opts: FetchOptions = {}): Promise<Tokenizer> {
  const dir = fileUrl(base, "tokenizer.json").slice(0, -"tokenizer.json".length);
  const tokenizer = await fetchText(fileUrl(base, "tokenizer.json"), opts);
  if (tokenizer === null) throw new TokenizerNotFoundError(dir);
  const config = await fetchText(fileUrl(base, "tokenizer_config.json"), opts);
  const chatTemplate = await fetchText(fileUrl(base, "chat_template.jinja"), opts);
  return tokenizerFromTexts({ dir, tokenizer, config, chatTemplate });
}

/**
 * The weights of an Apple-format drafter under a base URL (config.json + model.safetensors), checked against
 * the target: for cpuDrafter, or createOnnxDrafter.
 */
export async function readDrafterFromUrl(
  base: string | URL,
  target: DrafterTarget,
  opts: FetchOptions & DraftVocabUrlOption = {},
): Promise<DrafterWeights> {
  const configUrl = fileUrl(base, "config.json");
  const text = await fetchText(configUrl, opts);
  if (text === null) throw new ConfigError(configUrl, "drafter config.json not found (HTTP 404)");
  const config = parseDrafterConfig(parseJson(text, configUrl), configUrl);
  checkDrafterFits(config, target, configUrl);
  const rankUrl = fileUrl(base, DRAFT_VOCAB_FILE);
  const want = opts.draftVocab;
  const ranking = want === undefined ? null : await fetchText(rankUrl, opts);
  const vocab = resolveDraftVocab(
    want,
    ranking,
    config.vocabSize,
    rankUrl,
    "draftVocab",
    () => new ConfigError(rankUrl, "draft vocabulary ranking not found (HTTP 404)"),
  );
  const url = fileUrl(base, "model.safetensors");
  const bytes = await fetchBytes(url, opts);
  if (bytes === null) throw new ConfigError(url, "drafter model.safetensors not found (HTTP 404)");
  const store = openSafetensors(url, bufferSource(bytes));
  try {
    const weights = readDrafterWeights(store, config);
    return vocab ? restrictDraftVocab(weights, vocab) : weights;
  } finally {
    store.close();
  }
}

/** The draft vocabulary option of the URL loaders. */
export interface DraftVocabUrlOption {
  /**
   * Keep the head rows of this many most frequent tokens of `<base>/draft_vocab.json` (drafter/vocab.ts);
   * "default": its default_size when the file and the field exist, else all. Default: all.
   */
  draftVocab?: DraftVocabOption;
}

/** A CPU drafter under a base URL, next to its target (see readDrafterFromUrl). */
export async function loadDrafterFromUrl(
  base: string | URL,
  target: DrafterTarget,
  opts: FetchOptions & CpuDrafterOptions & DraftVocabUrlOption = {},
): Promise<DraftModel> {
  return cpuDrafter(await readDrafterFromUrl(base, target, opts), target.embeddingTable(), opts);
}
