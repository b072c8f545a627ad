/**
 * config.json / generation_config.json -> ModelConfig. Accepts the transformers 4 spellings (`rope_theta`,
 * `rope_scaling` with `type` or `rope_type`) and the transformers 5 ones (`rope_parameters`). Anything we do
 * not run (architectures, RoPE types, mixed per-layer sliding windows) is refused with the file and the field.
 *
 * @module
 */
import type { Architecture, ModelConfig, RopeScaling } from "../core/types.ts";
import type { GenerationConfig } from "./types.ts";

/** A config.json / generation_config.json problem; the message starts with the file name. */
export class ConfigError extends Error {
  /** An error whose message is `${file}: ${message}`; message should name the field at fault. */
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ConfigError";
  }
}

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
};

type Json = Record<string, unknown>;

function req(raw: Json, file: string, key: string): number {
  const v = raw[key];
  if (v === undefined || v === null) throw new ConfigError(file, `missing required field '${key}'`);
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ConfigError(file, `field '${key}' must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function reqInt(raw: Json, file: string, key: string): number {
  const v = req(raw, file, key);
  if (!Number.isInteger(v) || v <= 0) {
    throw new ConfigError(file, `field '${key}' must be a positive integer, got ${v}`);
  }
  return v;
}

function opt(raw: Json, file: string, key: string, fallback: number): number {
  return raw[key] === undefined || raw[key] === null ? fallback : req(raw, file, key);
}

function optBool(raw: Json, file: string, key: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new ConfigError(file, `field '${key}' must be a boolean`);
  return v;
}

/** An id field that may be null, an integer, or a list of integers. */
export function idList(raw: Json, file: string, key: string): number[] {
  const v = raw[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const x of list) {
    if (!Number.isInteger(x) || x < 0) {
      throw new ConfigError(
        file,
        `field '${key}' must be a token id or a list of ids, got ${JSON.stringify(v)}`,
      );
    }
  }
  return list as number[];
}

function idOrNull(raw: Json, file: string, key: string): number | null {
  const ids = idList(raw, file, key);
  return ids.length ? ids[0] : null;
}

/** RoPE theta and scaling from `rope_parameters` (v5) or `rope_theta` + `rope_scaling` (v4). */
function parseRope(raw: Json, file: string): { theta: number; scaling: RopeScaling | null } {
  const params = raw.rope_parameters as Json | undefined | null;
  let theta: number;
  let scaling: Json | null = null;
  let where: string;
  if (params && typeof params === "object") {
    // transformers 5: one dict (per-layer-type dicts are for other architectures).
    theta = params.rope_theta == null ? opt(raw, file, "rope_theta", 10000) : req(params, file, "rope_theta");
    scaling = params;
    where = "rope_parameters";
  } else {
    theta = opt(raw, file, "rope_theta", 10000);
    const s = raw.rope_scaling;
    if (s !== undefined && s !== null) {
      if (typeof s !== "object") throw new ConfigError(file, "field 'rope_scaling' must be an object");
      scaling = s as Json;
    }
    where = "rope_scaling";
  }
  if (!scaling) return { theta, scaling: null };
  const type = (scaling.rope_type ?? scaling.type ?? "default") as string;
  const num = (key: string, fallback?: number): number => {
    const v = scaling![key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(file, `missing required field '${where}.${key}' for rope type '${type}'`);
    }
    if (typeof v !== "number") throw new ConfigError(file, `field '${where}.${key}' must be a number`);
    return v;
  };
  if (type === "default") return { theta, scaling: null };
  if (type === "linear") return { theta, scaling: { type: "linear", factor: num("factor") } };
  if (type === "llama3") {
    return {
      theta,
      scaling: {
        type: "llama3",
        factor: num("factor"),
        lowFreqFactor: num("low_freq_factor"),
        highFreqFactor: num("high_freq_factor"),
        originalMaxPositionEmbeddings: num(
          "original_max_position_embeddings",
          opt(raw, file, "max_position_embeddings", 2048),
        ),
      },
    };
  }
  throw new ConfigError(
    file,
    `unsupported rope type '${type}' in '${where}' (supported: default, linear, llama3)`,
  );
}

/** Sliding window for Mistral (`sliding_window`) and Qwen2 (`use_sliding_window` + `max_window_layers`). */
function parseSlidingWindow(raw: Json, file: string, arch: Architecture, numLayers: number): number | null {
  if (arch === "llama") return null;
  if (raw.sliding_window === undefined || raw.sliding_window === null) return null;
  const window = reqInt(raw, file, "sliding_window");
  if (arch === "mistral") return window;
  // Qwen2: the window applies only when use_sliding_window is set, and then only to layers >= max_window_layers.
  if (!optBool(raw, file, "use_sliding_window", false)) return null;
  let layerTypes = raw.layer_types as string[] | undefined;
  if (!Array.isArray(layerTypes)) {
    const maxWindowLayers = opt(raw, file, "max_window_layers", 28);
    layerTypes = Array.from(
      { length: numLayers },
      (_, i) => i >= maxWindowLayers ? "sliding_attention" : "full_attention",
    );
  }
  if (layerTypes.every((t) => t === "full_attention")) return null;
  if (layerTypes.every((t) => t === "sliding_attention")) return window;
  throw new ConfigError(
    file,
    "mixed per-layer sliding windows ('use_sliding_window' with 'max_window_layers' / 'layer_types' " +
      "between 0 and num_hidden_layers) are not supported",
  );
}

/** Normalize a parsed config.json. `file` is only used in error messages. */
export function parseModelConfig(raw: Record<string, unknown>, file = "config.json"): ModelConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(file, "not a JSON object");
  }
  const archs = raw.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== "string") {
    throw new ConfigError(file, "missing required field 'architectures'");
  }
  const architecture = ARCHITECTURES[archs[0]];
  if (!architecture) {
    throw new ConfigError(
      file,
      `unsupported architecture '${archs[0]}' (supported: ${Object.keys(ARCHITECTURES).join(", ")})`,
    );
  }
  const hiddenSize = reqInt(raw, file, "hidden_size");
  const numHeads = reqInt(raw, file, "num_attention_heads");
  const numLayers = reqInt(raw, file, "num_hidden_layers");
  const numKvHeads = raw.num_key_value_heads == null ? numHeads : reqInt(raw, file, "num_key_value_heads");
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      file,
      `'num_attention_heads' (${numHeads}) is not a multiple of 'num_key_value_heads' (${numKvHeads})`,
    );
  }
  let headDim: number;
  if (raw.head_dim == null) {
    if (hiddenSize % numHeads !== 0) {
      throw new ConfigError(file, `'hidden_size' ${hiddenSize} is not divisible by 'num_attention_heads'`);
    }
    headDim = hiddenSize / numHeads;
  } else {
    headDim = reqInt(raw, file, "head_dim");
  }
  if (headDim % 2 !== 0) throw new ConfigError(file, `'head_dim' must be even for RoPE, got ${headDim}`);
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new ConfigError(file, `unsupported 'hidden_act' ${JSON.stringify(act)} (need silu)`);
  }
  const rope = parseRope(raw, file);
  const llamaAttentionBias = architecture === "llama" && optBool(raw, file, "attention_bias", false);
  return {
    architecture,
    vocabSize: reqInt(raw, file, "vocab_size"),
    hiddenSize,
    intermediateSize: reqInt(raw, file, "intermediate_size"),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: opt(raw, file, "rms_norm_eps", 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositionEmbeddings: reqInt(raw, file, "max_position_embeddings"),
    tieWordEmbeddings: optBool(raw, file, "tie_word_embeddings", false),
    attentionBias: architecture === "qwen2" || llamaAttentionBias,
    outputBias: llamaAttentionBias,
    mlpBias: architecture === "llama" && optBool(raw, file, "mlp_bias", false),
    slidingWindow: parseSlidingWindow(raw, file, architecture, numLayers),
    bosTokenId: idOrNull(raw, file, "bos_token_id"),
    eosTokenIds: idList(raw, file, "eos_token_id"),
    padTokenId: idOrNull(raw, file, "pad_token_id"),
  };
}

/** Normalize a parsed generation_config.json. */
export function parseGenerationConfig(
  raw: Record<string, unknown>,
  file = "generation_config.json",
): GenerationConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(file, "not a JSON object");
  }
  const out: GenerationConfig = {
    eosTokenIds: idList(raw, file, "eos_token_id"),
    bosTokenId: idOrNull(raw, file, "bos_token_id"),
    padTokenId: idOrNull(raw, file, "pad_token_id"),
  };
  if (raw.temperature != null) out.temperature = req(raw, file, "temperature");
  if (raw.top_k != null) out.topK = req(raw, file, "top_k");
  if (raw.top_p != null) out.topP = req(raw, file, "top_p");
  if (raw.do_sample != null) out.doSample = optBool(raw, file, "do_sample", false);
  return out;
}

/** The config's EOS ids with the generation config's appended (deduplicated, config order first). */
export function mergeGeneration(config: ModelConfig, gen: GenerationConfig | null): ModelConfig {
  if (!gen) return config;
  const eos = [...config.eosTokenIds];
  for (const id of gen.eosTokenIds) if (!eos.includes(id)) eos.push(id);
  return {
    ...config,
    eosTokenIds: eos,
    bosTokenId: config.bosTokenId ?? gen.bosTokenId,
    padTokenId: config.padTokenId ?? gen.padTokenId,
  };
}

/** Read a JSON file, naming it in any error. */
export function readJsonFile(path: string): Json {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new ConfigError(path, "file not found");
    throw new ConfigError(path, `cannot read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, `malformed JSON: ${(e as Error).message}`);
  }
}
