/**
 * The drafter's config.json (Apple ml-recurrent-drafter `DrafterConfig`, model_type
 * `recurrent_drafting_drafter`), normalized to core's DrafterConfig. `num_lookback_tokens` is unused by the
 * reference and ignored here; MLX checkpoints may carry `emb_norm` / `rms_norm_eps`, which the reference
 * forward never uses, so they are tolerated and ignored too.
 *
 * @module
 */
import type { DrafterConfig } from "../core/types.ts";

/** The model_type a drafter config.json must declare. */
export const DRAFTER_MODEL_TYPE = "recurrent_drafting_drafter";

function positiveInt(raw: Record<string, unknown>, field: string, file: string): number {
  const v = raw[field];
  if (v === undefined) throw new Error(`${file}: missing field '${field}'`);
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new Error(`${file}: field '${field}' must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Normalize a parsed drafter config.json; `file` names the source in error messages. */
export function parseDrafterConfig(raw: unknown, file = "config.json"): DrafterConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${file}: expected a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  if (r.model_type !== DRAFTER_MODEL_TYPE) {
    throw new Error(
      `${file}: field 'model_type' is ${JSON.stringify(r.model_type)}, expected "${DRAFTER_MODEL_TYPE}" ` +
        `(is this a drafter checkpoint?)`,
    );
  }
  const hiddenSize = positiveInt(r, "hidden_size", file);
  const vocabSize = positiveInt(r, "vocab_size", file);
  // The reference trainer always writes exit_dim; a checkpoint without it (-1 class default) means 2H.
  const exitDim = r.exit_dim === undefined || r.exit_dim === -1
    ? 2 * hiddenSize
    : positiveInt(r, "exit_dim", file);
  const nl = r.num_draft_layers;
  if (typeof nl !== "number" || !Number.isInteger(nl) || nl < 0) {
    throw new Error(`${file}: field 'num_draft_layers' must be an integer >= 0, got ${JSON.stringify(nl)}`);
  }
  const rnn = r.rnn ?? false; // the reference class default
  if (typeof rnn !== "boolean") {
    throw new Error(`${file}: field 'rnn' must be true or false, got ${JSON.stringify(rnn)}`);
  }
  return { hiddenSize, vocabSize, exitDim, numDraftLayers: nl, rnn };
}

/** Read and normalize `<dir>/config.json`. */
export function readDrafterConfig(path: string): DrafterConfig {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${path}: file not found`);
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
  return parseDrafterConfig(raw, path);
}
