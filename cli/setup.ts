/**
 * What generate and bench share before generating: find the model and drafter (a directory, an `org/name`
 * Hub repo, or the embedded default pair), load them on a backend, load the tokenizer when there is one, and
 * turn prompts into token ids (chat template or raw text). Every mistake here is the caller's input, so it
 * surfaces as a UsageError (one line, exit code 2).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { DraftModel, TargetModel } from "../core/types.ts";
import type { Checkpoint } from "../loader/types.ts";
import { loadCheckpoint } from "../loader/checkpoint.ts";
import { resolveModel } from "../loader/hub.ts";
import { loadTokenizer, type Tokenizer, TokenizerNotFoundError } from "../loader/tokenizer.ts";
import type { ChatMessage } from "../loader/chat_template.ts";
import {
  BackendChoiceError,
  checkDrafterBackend,
  checkDrafterWeights as checkBackendDrafterWeights,
  defaultDrafterBackend,
  loadDraftModel,
  loadTarget,
  type LoadTargetOptions,
  ONNX_WEIGHTS,
} from "../backends/mod.ts";
import { choiceFlag, type FlagValues, UsageError } from "./args.ts";
import { LOOKUP_LENGTHS, LOOKUP_MODES, type LookupLength, type LookupMode } from "../core/lookup.ts";
import { progressBar } from "./term.ts";

/** The embedded default pair, next to this module's parent directory. */
export const DEFAULT_TARGET = fileURLToPath(new URL("../models/default/target", import.meta.url));
export const DEFAULT_DRAFTER = fileURLToPath(new URL("../models/default/drafter", import.meta.url));
export const DEFAULT_PROMPTS = fileURLToPath(new URL("../models/default/prompts.jsonl", import.meta.url));

export interface PairOptions {
  /** --model: DIR or org/name; default the embedded target. */
  model?: string;
  /** --drafter: DIR or org/name; default the embedded drafter when the model is the default one. */
  drafter?: string;
  backend?: string;
  threads?: number;
  /** --onnx-weights: weight format of the ONNX target graph (one of ONNX_WEIGHTS). */
  onnxWeights?: string;
  /** --drafter-threads: the drafter's threads (default: loadDraftModel's, see LoadTargetOptions). */
  drafterThreads?: number;
  /** --drafter-weights: the drafter's weight format (default defaultDrafterWeights(drafter backend)). */
  drafterWeights?: string;
  /** --drafter-backend: cpu or the target's backend (default defaultDrafterBackend(backend)). */
  drafterBackend?: string;
  /**
   * --draft-vocab: the drafter drafts only this many most frequent tokens; "all": the whole vocabulary;
   * default the drafter's draft_vocab.json default_size, or all.
   */
  draftVocab?: number | "all";
  /** Skip the drafter (autoregressive runs). */
  noDrafter?: boolean;
  /** Notes for the user (stderr). */
  log?: (line: string) => void;
}

export interface Pair {
  target: TargetModel;
  drafter: DraftModel | null;
  tokenizer: Tokenizer | null;
  ckpt: Checkpoint;
  modelDir: string;
  drafterDir: string | null;
  /** The drafter's weight format (--drafter-weights, or its default), or null without a drafter. */
  drafterWeights: string | null;
  /** Where the drafter runs (--drafter-backend, or its default), or null without a drafter. */
  drafterBackend: string | null;
  /** The draft vocabulary size (--draft-vocab), or null: the whole vocabulary (or no drafter). */
  draftVocab: number | null;
  dispose(): void;
}

/** Whether a pair's drafter is the embedded default one (DEFAULT_DRAFTER), however its path was written. */
export function isEmbeddedDrafter(pair: Pick<Pair, "drafterDir">): boolean {
  return pair.drafterDir !== null && resolve(pair.drafterDir) === resolve(DEFAULT_DRAFTER);
}

/** Runs fn; any error becomes a UsageError prefixed with `what` (a flag, usually). */
export async function asUsage<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof BackendChoiceError) throw new UsageError(e.message);
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new UsageError(`${what}: ${msg}`);
  }
}

async function resolveDir(flag: string, spec: string): Promise<string> {
  return await asUsage(flag, async () => {
    const r = await resolveModel(spec, {
      progress: (label, total, initial) => progressBar({ label, total, initial, unit: "bytes" }),
    });
    return r.dir;
  });
}

/** The --onnx-weights value, checked against the backend (it only applies to the onnx-* ones). */
export function checkOnnxWeights(
  value: string | undefined,
  backend: string | undefined,
): LoadTargetOptions["onnxWeights"] {
  if (value === undefined) return undefined;
  if (!(ONNX_WEIGHTS as readonly string[]).includes(value)) {
    throw new UsageError(`--onnx-weights must be one of ${ONNX_WEIGHTS.join(", ")}; got '${value}'`);
  }
  if (!(backend ?? "cpu").startsWith("onnx-")) {
    throw new UsageError(`--onnx-weights applies to the onnx-* backends, not --backend ${backend ?? "cpu"}`);
  }
  return value as LoadTargetOptions["onnxWeights"];
}

/**
 * The CLIs' drafter weights when --drafter-weights is not given, by where the drafter runs: int8 where it was
 * measured faster, the cpu drafter (q7: int8 against 7-bit activations, kernels/q7.ts; its rounds 22% cheaper
 * than q8's at the same tau; q8 where the runtime lacks relaxed SIMD) and onnx-node (q8,
 * MatMulNBits); fp32 elsewhere: onnx-wasm runs MatMulNBits about 12x slower than its fp32 MatMul (a 12.9 ms
 * drafter step against 1.05 ms on the default pair), and on the WebGPU and CUDA EPs it could not be timed
 * here. A drafter only proposes tokens the target verifies, so any of them is exact; the library's own
 * default is fp32.
 */
export function defaultDrafterWeights(drafterBackend: string): "q7" | "q8" | "fp32" {
  return drafterBackend === "cpu" ? "q7" : drafterBackend === "onnx-node" ? "q8" : "fp32";
}

/** The --drafter-backend value (default defaultDrafterBackend), checked against the target's backend. */
export function drafterBackendFor(value: string | undefined, backend: string | undefined): string {
  try {
    return value === undefined ? defaultDrafterBackend(backend) : checkDrafterBackend(value, backend);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The --drafter-weights value (default defaultDrafterWeights), checked against the drafter's backend. */
export function checkDrafterWeights(
  value: string | undefined,
  drafterBackend: string,
): LoadTargetOptions["drafterWeights"] {
  try {
    return checkBackendDrafterWeights(value ?? defaultDrafterWeights(drafterBackend), drafterBackend);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Loads target, drafter and tokenizer (see PairOptions for the defaults). */
export async function loadPair(opts: PairOptions): Promise<Pair> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const isDefault = opts.model === undefined;
  if (isDefault && !existsSync(DEFAULT_TARGET)) {
    throw new UsageError(
      `the embedded default model (${DEFAULT_TARGET}) is missing from this build; pass --model DIR|org/name`,
    );
  }
  const onnxWeights = checkOnnxWeights(opts.onnxWeights, opts.backend);
  const drafterBackend = drafterBackendFor(opts.drafterBackend, opts.backend);
  const drafterWeights = checkDrafterWeights(opts.drafterWeights, drafterBackend);
  const modelDir = isDefault ? DEFAULT_TARGET : await resolveDir("--model", opts.model!);
  const ckpt = await asUsage("--model", () => loadCheckpoint(modelDir));
  const target = await asUsage(
    "--backend",
    () => loadTarget(ckpt, { backend: opts.backend, threads: opts.threads, onnxWeights }),
  );
  let drafter: DraftModel | null = null;
  let drafterDir: string | null = null;
  if (!opts.noDrafter) {
    if (opts.drafter !== undefined) drafterDir = await resolveDir("--drafter", opts.drafter);
    else if (isDefault && existsSync(DEFAULT_DRAFTER)) drafterDir = DEFAULT_DRAFTER;
    else {
      log(
        isDefault
          ? `note: the embedded default drafter (${DEFAULT_DRAFTER}) is missing; generating autoregressively`
          : "note: no --drafter given for this --model; generating autoregressively",
      );
    }
    if (drafterDir !== null) {
      const dir = drafterDir;
      // --draft-vocab N, "all", or by default the drafter's draft_vocab.json default_size.
      const want = opts.draftVocab === "all" ? undefined : opts.draftVocab ?? "default";
      drafter = await asUsage(
        opts.draftVocab === undefined ? "--drafter" : "--draft-vocab",
        () =>
          loadDraftModel(dir, target, {
            backend: opts.backend,
            threads: opts.threads,
            drafterThreads: opts.drafterThreads,
            drafterWeights,
            drafterBackend,
            draftVocab: want,
          }),
      );
    }
  }
  let tokenizer: Tokenizer | null = null;
  try {
    tokenizer = await loadTokenizer(modelDir);
  } catch (e) {
    if (!(e instanceof TokenizerNotFoundError)) {
      throw new UsageError(`--model: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return {
    target,
    drafter,
    tokenizer,
    ckpt,
    modelDir,
    drafterDir,
    drafterWeights: drafter ? drafterWeights ?? null : null,
    drafterBackend: drafter ? drafterBackend : null,
    draftVocab: drafter?.draftVocab ?? null,
    dispose() {
      drafter?.dispose();
      target.dispose();
      ckpt.tensors.close();
    },
  };
}

/** How text prompts become ids: through the chat template, or as raw text (BOS added by the tokenizer). */
export type PromptStyle = "chat" | "raw";

/**
 * --chat / --raw, defaulting to chat when the tokenizer has a chat template (the drafter was trained on
 * what the target says in its own chat format) and raw text otherwise.
 */
export function promptStyle(
  tokenizer: Tokenizer | null,
  flags: { chat?: boolean; raw?: boolean },
  log: (line: string) => void = (line) => console.error(line),
): PromptStyle {
  if (flags.chat && flags.raw) throw new UsageError("--chat and --raw exclude each other");
  if (flags.raw) return "raw";
  let hasTemplate = false;
  if (tokenizer) {
    try {
      hasTemplate = tokenizer.chatTemplate !== null;
    } catch (e) {
      if (flags.chat) throw new UsageError(`--chat: ${(e as Error).message.split("\n")[0]}`);
      log(`note: ${(e as Error).message.split("\n")[0]}; using raw prompts`);
    }
  }
  if (flags.chat && !hasTemplate) {
    throw new UsageError(
      tokenizer
        ? `--chat: the model has no chat template (chat_template.jinja or tokenizer_config.json); use --raw`
        : "--chat: the model has no tokenizer (use --prompt-ids)",
    );
  }
  return hasTemplate ? "chat" : "raw";
}

/** Token ids of a conversation (chat: with the generation prompt) or of raw text. */
export function encodeConversation(
  tokenizer: Tokenizer,
  style: PromptStyle,
  messages: ChatMessage[],
): number[] {
  if (style === "chat") return tokenizer.encodeChat(messages, { addGenerationPrompt: true });
  // Raw: the turns are one running text (a continuation), BOS once at the start.
  return tokenizer.encode(messages.map((m) => m.content).join(""));
}

/** Parses --prompt-ids "1,2,3" (whitespace allowed), checking ids against the vocabulary. */
export function parsePromptIds(s: string, vocab: number): number[] {
  const parts = s.split(/[\s,]+/).filter((p) => p !== "");
  if (parts.length === 0) throw new UsageError("--prompt-ids needs at least one token id, e.g. 1,2,3");
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`--prompt-ids: '${p}' is not a token id`);
    const id = Number(p);
    if (id >= vocab) throw new UsageError(`--prompt-ids: ${id} is outside the vocabulary [0, ${vocab})`);
    return id;
  });
}

/**
 * The new-token budget that fits the model's context: errors when the prompt alone does not fit, shrinks
 * maxNew (with a note) when prompt + maxNew + the draft tree's depth would pass max_position_embeddings.
 */
export function fitContext(
  promptLength: number,
  maxNew: number,
  maxPositions: number,
  treeDepth: number,
  what: string,
  log: (line: string) => void = (line) => console.error(line),
): number {
  const room = maxPositions - promptLength - treeDepth;
  if (room < 1) {
    throw new UsageError(
      `${what} is ${promptLength} tokens; the model's context is ${maxPositions} (max_position_embeddings)` +
        (treeDepth > 0 ? `, ${treeDepth} of which the draft tree needs` : ""),
    );
  }
  if (maxNew > room) {
    log(`note: ${what}: --max-new-tokens ${maxNew} cut to ${room} to fit the context of ${maxPositions}`);
    return room;
  }
  return maxNew;
}

/** --lookup-mode branch|first (default `fallback`); refused unless lookup drafts are on (`lookupOn`). */
export function lookupModeFlag(
  values: FlagValues,
  lookupOn: boolean,
  fallback: LookupMode = "branch",
): LookupMode {
  return lookupChoiceFlag(values, "lookup-mode", LOOKUP_MODES, fallback, lookupOn);
}

/** --lookup-length fixed|match (default `fallback`); refused unless lookup drafts are on (`lookupOn`). */
export function lookupLengthFlag(
  values: FlagValues,
  lookupOn: boolean,
  fallback: LookupLength = "fixed",
): LookupLength {
  return lookupChoiceFlag(values, "lookup-length", LOOKUP_LENGTHS, fallback, lookupOn);
}

/** A choice flag that only means something next to lookup drafts: refused when given without them. */
function lookupChoiceFlag<const C extends string>(
  values: FlagValues,
  name: string,
  choices: readonly C[],
  fallback: C,
  lookupOn: boolean,
): C {
  const choice = choiceFlag(values, name, choices, fallback);
  if (values[name] !== undefined && !lookupOn) throw new UsageError(`--${name} needs --lookup N with N >= 1`);
  return choice;
}
