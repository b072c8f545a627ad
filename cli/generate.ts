/**
 * `deno task generate`: text generation with ReDrafter speculative decoding (or the autoregressive baseline).
 * Three modes: one prompt (--prompt / --prompt-ids), batch evaluation (--eval FILE / --eval-mt-bench), and an
 * interactive chat (the default). See USAGE below and the README's CLI section.
 *
 * @module
 */
import type { SamplingOptions } from "../core/options.ts";
import { resolveSampling } from "../core/options.ts";
import { checkBeamShape } from "../core/beam_search.ts";
import {
  defaultTreeChildren,
  type DraftTreeOptions,
  MAX_TREE_CHILDREN,
  MAX_TREE_NODES,
} from "../core/draft_tree.ts";
import type { LookupLength, LookupMode } from "../core/lookup.ts";
import { RoundChooser } from "../core/adaptive.ts";
import { recommendedDrafting } from "../core/drafting.ts";
import { MIN_DRAFT_VOCAB } from "../drafter/vocab.ts";
import {
  checkRange,
  choiceFlag,
  type FlagValues,
  intFlag,
  numberFlag,
  parseFlags,
  runMain,
  UsageError,
} from "./args.ts";
import {
  encodeConversation,
  fitContext,
  isEmbeddedDrafter,
  loadPair,
  lookupLengthFlag,
  lookupModeFlag,
  type Pair,
  type PairOptions,
  parsePromptIds,
  promptStyle,
} from "./setup.ts";
import {
  ADAPTIVE_CHOICES,
  type AdaptiveChoice,
  type RunMode,
  type RunSettings,
  runToEnd,
  statsLine,
  streamFor,
} from "./run.ts";
import { stdoutWrite, textWriter } from "./stream_text.ts";
import { colors } from "./term.ts";
import { runChat } from "./chat.ts";
import { runEval } from "./eval.ts";

export const USAGE = `usage: deno task generate [flags]

Modes (interactive chat when none of --prompt, --prompt-ids, --eval, --eval-mt-bench is given):
  --prompt TEXT            generate for one prompt, streaming the text to stdout
  --prompt-ids 1,2,3       the prompt as token ids (for checkpoints without tokenizer.json: no text output)
  --eval FILE              batch evaluation over a prompt file: MT-bench question.jsonl, JSONL {"prompt"},
                           or one prompt per line
  --eval-mt-bench          batch evaluation over MT-bench (HuggingFaceH4/mt_bench_prompts from the Hub;
                           offline: ../shared/data/mt_bench/question.jsonl when present)

Model:
  --model DIR|org/name     target checkpoint (default: the embedded models/default/target)
  --drafter DIR|org/name   recurrent drafter (default: models/default/drafter with the default model; with
                           another model and no --drafter, generation is autoregressive)
  --backend NAME           cpu (default), onnx-wasm, onnx-webgpu, onnx-node, onnx-cuda
  --threads N              threads: the CPU backend's matmuls and attention (default: cores, at most 8) or
                           ONNX intra-op threads
  --onnx-weights W         ONNX target weights: fp32 (default), fp16, q4 or q8 (MatMulNBits; faster, not
                           bit-exact: greedy tokens agree with fp32 about 99% (q8) / 89-91% (q4) of the time),
                           q4g128 / q8g128 (blocks of 128 instead of 32: smaller, faster, a little less exact),
                           q4g128h4 (q4g128 with a 4-bit LM head: faster again, about 86% agreement)
  --drafter-threads N      the drafter's threads (default: --threads next to a cpu target; 1 next to
                           onnx-node / onnx-wasm and for a drafter graph, whose steps are small; raise it for
                           big batches)
  --drafter-weights W      drafter weights: q7 (default for a cpu drafter; int8 against 7-bit activations,
                           q8 without WASM relaxed SIMD), q8 (default for an onnx-node drafter) or fp32 (default
                           elsewhere); fp16, q4, q4g128, q8g128, q4g128h4 too on onnx-*. The target verifies every
                           draft: speed and acceptance change, never the text
  --drafter-backend B      where the drafter runs: cpu, or the --backend itself (default: cpu, on one
                           thread next to onnx-node / onnx-wasm; onnx-cuda next to onnx-cuda)
  --draft-vocab N|all      draft only the N most frequent tokens (ranked by the drafter's draft_vocab.json;
                           default: its default_size, 2048 for the embedded drafter, else all): each drafter
                           step gets cheaper, the text stays the same

Generation:
  --max-new-tokens N       new tokens per prompt (default 128)
  --greedy                 greedy decoding (the default unless a sampling flag is given)
  --temperature T          sample at temperature T (default 1 once sampling); 0 means greedy
  --top-k K / --top-p P    sampling filters (default off)
  --seed S                 sampling seed (default 0); same seed, same text, with or without a drafter
  --sampling exact|apple   exact (default): token-identical to autoregressive sampling;
                           apple: the reference's P/Q acceptance rule (not exact; no top-k/top-p)
  --beam-width W           beams drafted per step (default: 1, or 4 on onnx-webgpu / onnx-cuda;
                           \`deno task bench\` finds the best shape for a machine, backend or model)
  --beam-length L          tokens per beam INCLUDING the init token, as in Apple's reference;
                           drafts per beam = L-1 (default 3, or 7 on onnx-webgpu / onnx-cuda)
  --no-tree                verify the beams as W separate chains instead of a deduplicated prefix tree
  --tree-nodes N           draft a dynamic tree of the N likeliest tokens instead of W beams (0: beams):
                           L-1 drafter steps, each expanding the W likeliest nodes of the step before
                           (greedy and exact sampling; pays where verifying many tokens costs little more
                           than one, as on a GPU: default 32 on onnx-webgpu / onnx-cuda, 0 elsewhere)
  --tree-children C        next tokens drafted per expanded node (default: W)
  --lookup N               also draft up to N tokens per round by prompt lookup (what followed the last
                           earlier occurrence of the context's final 2-3 tokens), verified with the beams
                           (greedy and exact sampling; default: 6 on cpu and 4 on onnx-node / onnx-wasm
                           with the embedded drafter, 0 (off) otherwise)
  --lookup-mode M          branch: lookup drafts join the drafter's beams; first: a round that finds some
                           verifies them alone and skips the drafter (pays where a drafter step is dear
                           next to a target step, as with the default pair; its default there, branch
                           otherwise)
  --lookup-length fixed|match
                           fixed: every match proposes N drafts; match: a match of the last n tokens
                           proposes n/2 of them, at most N (long matches are loops and quotes, short ones
                           often chance; pays where each verified token costs: the default with the
                           default pair on cpu, fixed otherwise)
  --adaptive on|off|auto   adaptive drafting: each round drafts, or runs the target on the last token
                           alone, whichever has cost less per token so far (it probes the other now and
                           then), so a pair whose drafts are rarely accepted runs about as fast as plain
                           decoding instead of slower; auto (default): on when sampling (exact), off for
                           greedy decoding and --sampling apple
  --autoregressive         plain decoding, one token per target call (the baseline)
  --stop TEXT              stop when TEXT appears (repeatable; needs a tokenizer)
  --chat / --raw           apply the model's chat template, or use the text as is (default: --chat when
                           the tokenizer has a chat template, --raw otherwise)
  --system TEXT            a system message for --chat prompts and the interactive chat

Output:
  --json                   one JSON object per prompt (ids, text, finish reason, stats with the metrics)
  --no-color               no colour (drafted-and-accepted tokens are cyan on a terminal otherwise)

Batch evaluation:
  --turns 1|2              MT-bench turns (2: the second question follows the model's first answer)
  --max-num-prompts N      only the first N prompts
  --batch-size B           prompts per batch (default 1; the last partial batch runs too)
  --output FILE            write every generation as JSONL
  --compare                run ReDrafter and the autoregressive baseline on the same prompts; report the
                           speedup and whether the outputs are identical

Interactive chat: type a message and Enter; 'exit', 'quit' or end of input (Ctrl-D) leaves; Ctrl-C stops
the current answer. After each answer a stats line (tokens, tau, tok/s) goes to stderr.`;

export const FLAGS = {
  model: { type: "string" },
  drafter: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string" },
  "onnx-weights": { type: "string" },
  "drafter-weights": { type: "string" },
  "drafter-threads": { type: "string" },
  "drafter-backend": { type: "string" },
  "draft-vocab": { type: "string" },
  prompt: { type: "string" },
  "prompt-ids": { type: "string" },
  "max-new-tokens": { type: "string" },
  greedy: { type: "boolean" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
  sampling: { type: "string" },
  "beam-width": { type: "string" },
  "beam-length": { type: "string" },
  "no-tree": { type: "boolean" },
  lookup: { type: "string" },
  "lookup-mode": { type: "string" },
  "lookup-length": { type: "string" },
  adaptive: { type: "string" },
  "tree-nodes": { type: "string" },
  "tree-children": { type: "string" },
  autoregressive: { type: "boolean" },
  stop: { type: "string", multiple: true },
  chat: { type: "boolean" },
  raw: { type: "boolean" },
  system: { type: "string" },
  json: { type: "boolean" },
  "no-color": { type: "boolean" },
  eval: { type: "string" },
  "eval-mt-bench": { type: "boolean" },
  turns: { type: "string" },
  "max-num-prompts": { type: "string" },
  "batch-size": { type: "string" },
  output: { type: "string" },
  compare: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * A drafting in the flags' terms (--beam-width, --beam-length, --lookup, --lookup-mode, --lookup-length,
 * --tree-nodes): how a run drafts where its flags leave it open (`draftingDefaults`), and the shape of
 * each `deno task bench` result.
 */
export interface DraftingFlags {
  beamWidth: number;
  beamLength: number;
  /** Prompt lookup drafts per round (0: off). */
  lookup: number;
  /** How they join each round. */
  lookupMode: LookupMode;
  /** How many drafts a match proposes. */
  lookupLength: LookupLength;
  /** Nodes of a dynamic draft tree (0: W beams); a default one is dropped with --no-tree and apple. */
  treeNodes: number;
}

/**
 * The drafting a run uses for every shape, lookup or tree flag it is not given: core/drafting.ts
 * `recommendedDrafting` (the shapes `deno task bench` measured best per backend), in the flags' terms. The
 * embedded drafter counts as the default pair (lookup first on a CPU).
 */
export function draftingDefaults(backend: string, embeddedDrafter: boolean): DraftingFlags {
  const r = recommendedDrafting(backend, { defaultPair: embeddedDrafter });
  return {
    beamWidth: r.beamWidth,
    beamLength: r.beamLength,
    lookup: r.lookup?.maxDrafts ?? 0,
    lookupMode: r.lookup?.mode ?? "branch",
    lookupLength: r.lookup?.length ?? "fixed",
    treeNodes: r.draftTree?.nodes ?? 0,
  };
}

/** Sampling options from the flags; undefined means greedy. */
export function samplingFromFlags(values: FlagValues): SamplingOptions | undefined {
  const given = ["temperature", "top-k", "top-p", "sampling"].filter((f) => values[f] !== undefined);
  if (values.greedy) {
    if (given.length > 0) throw new UsageError(`--greedy excludes --${given.join(", --")}`);
    return undefined;
  }
  if (given.length === 0) return undefined;
  const s: SamplingOptions = {
    mode: choiceFlag(values, "sampling", ["exact", "apple"] as const, "exact"),
    temperature: numberFlag(values, "temperature", 1, { min: 0, max: 100 }),
    topK: intFlag(values, "top-k", 0, { min: 0 }),
    topP: numberFlag(values, "top-p", 1, { min: 0, max: 1 }),
    seed: intFlag(values, "seed", 0, { min: 0 }),
  };
  if (s.topP === 0) throw new UsageError("--top-p must be above 0 (1 turns it off)");
  try {
    resolveSampling(s);
  } catch (e) {
    const msg = (e as Error).message
      .replace("sampling.topK / sampling.topP", "--top-k / --top-p")
      .replace(/sampling\.(\w+)/g, "--$1");
    throw new UsageError(msg);
  }
  return s.temperature === 0 ? undefined : s;
}

/** Beam shape from the flags (`defaults` for those not given), checked against the vocabulary. */
export function beamShape(
  values: FlagValues,
  vocab: number,
  defaults: Pick<DraftingFlags, "beamWidth" | "beamLength">,
): { beamWidth: number; beamLength: number } {
  const beamWidth = intFlag(values, "beam-width", Math.min(defaults.beamWidth, vocab), {
    min: 1,
    max: Math.min(vocab, 1024),
  });
  const beamLength = intFlag(values, "beam-length", defaults.beamLength, { min: 2, max: 64 });
  checkRange("beam-width", beamWidth, 1, vocab);
  checkBeamShape(beamWidth, beamLength, vocab);
  return { beamWidth, beamLength };
}

/**
 * --lookup N: prompt lookup drafts per round (0: off; `fallback` when not given); refused with --sampling
 * apple, which needs Q (where the flag is not given, apple sampling turns the fallback off instead).
 */
export function lookupFlag(values: FlagValues, fallback = 0): number {
  if (values.lookup === undefined && values.sampling === "apple") return 0;
  const n = intFlag(values, "lookup", fallback, { min: 0, max: 64 });
  if (n > 0 && values.sampling === "apple") {
    throw new UsageError("--lookup needs greedy or --sampling exact: the apple rule reads the drafter's Q");
  }
  return n;
}

/** --adaptive on|off|auto (default auto); "on" is refused with --sampling apple, which drafts every round. */
export function adaptiveFlag(values: FlagValues): AdaptiveChoice {
  const choice = choiceFlag(values, "adaptive", ADAPTIVE_CHOICES, "auto");
  if (choice === "on" && values.sampling === "apple") {
    throw new UsageError(
      "--adaptive on needs greedy or --sampling exact: the apple rule reads every round's Q",
    );
  }
  return choice;
}

/**
 * --tree-nodes N [--tree-children C]: a dynamic draft tree (undefined for beams, N = 0); refused with
 * --sampling apple and --no-tree. Left out, it takes `fallback` (the backend's default), except next to
 * --sampling apple or --no-tree, which drop a default tree rather than refuse it.
 */
export function treeFlags(values: FlagValues, beamWidth: number, fallback = 0): DraftTreeOptions | undefined {
  const given = values["tree-nodes"] !== undefined;
  const dropDefault = values.sampling === "apple" || values["no-tree"] === true;
  const nodes = intFlag(values, "tree-nodes", dropDefault ? 0 : fallback, { min: 0, max: MAX_TREE_NODES });
  if (nodes === 0) {
    if (values["tree-children"] !== undefined) {
      throw new UsageError(
        given || fallback === 0
          ? "--tree-children needs --tree-nodes N with N >= 1"
          : "--tree-children needs a draft tree, which --sampling apple and --no-tree turn off",
      );
    }
    return undefined;
  }
  if (values.sampling === "apple") {
    throw new UsageError(
      "--tree-nodes needs greedy or --sampling exact: the apple rule reads beam search's Q",
    );
  }
  if (values["no-tree"]) throw new UsageError("--tree-nodes needs tree verification; drop --no-tree");
  const children = values["tree-children"] === undefined
    ? defaultTreeChildren(beamWidth)
    : intFlag(values, "tree-children", 1, { min: 1, max: MAX_TREE_CHILDREN });
  return { nodes, children };
}

/** --draft-vocab N|all: a size (>= MIN_DRAFT_VOCAB), "all", or undefined (the drafter's default). */
export function draftVocabFlag(values: FlagValues): number | "all" | undefined {
  const v = values["draft-vocab"];
  if (v === undefined || v === "all") return v;
  return intFlag(values, "draft-vocab", 0, { min: MIN_DRAFT_VOCAB });
}

/** What to load, from the model flags (--model, --drafter, --backend, --threads, ...). */
export function pairOptionsFromFlags(values: FlagValues): PairOptions {
  const optInt = (name: string) =>
    values[name] === undefined ? undefined : intFlag(values, name, 1, { min: 1, max: 1024 });
  return {
    model: values.model as string | undefined,
    drafter: values.drafter as string | undefined,
    backend: values.backend as string | undefined,
    threads: optInt("threads"),
    onnxWeights: values["onnx-weights"] as string | undefined,
    drafterWeights: values["drafter-weights"] as string | undefined,
    drafterBackend: values["drafter-backend"] as string | undefined,
    drafterThreads: optInt("drafter-threads"),
    draftVocab: draftVocabFlag(values),
    noDrafter: values.autoregressive === true,
  };
}

/** Everything a generation call needs, from the flags and the loaded pair. */
export function settingsFrom(values: FlagValues, pair: Pair, mode: RunMode): RunSettings {
  const vocab = pair.target.config.vocabSize;
  const stop = (values.stop as string[] | undefined) ?? [];
  if (stop.length > 0 && !pair.tokenizer) {
    throw new UsageError("--stop needs a tokenizer; this model has no tokenizer.json");
  }
  if (stop.some((s) => s === "")) throw new UsageError("--stop needs a non-empty text");
  const tok = pair.tokenizer;
  const defaults = draftingDefaults(pair.target.backend, isEmbeddedDrafter(pair));
  const lookup = lookupFlag(values, defaults.lookup);
  const shape = beamShape(values, vocab, defaults);
  if (pair.draftVocab !== null && shape.beamWidth > pair.draftVocab) {
    throw new UsageError(
      `--beam-width ${shape.beamWidth} is more than the draft vocabulary of ${pair.draftVocab} tokens ` +
        `(--draft-vocab): each beam step picks W tokens from it`,
    );
  }
  return {
    target: pair.target,
    drafter: pair.drafter,
    mode,
    ...shape,
    tree: !values["no-tree"],
    draftTree: treeFlags(values, shape.beamWidth, defaults.treeNodes),
    lookup,
    lookupMode: lookupModeFlag(values, lookup > 0, defaults.lookupMode),
    lookupLength: lookupLengthFlag(values, lookup > 0, defaults.lookupLength),
    adaptive: adaptiveFlag(values),
    chooser: new RoundChooser(),
    sampling: samplingFromFlags(values),
    stop,
    decode: tok ? (ids) => tok.decode(ids, { skipSpecialTokens: true }) : undefined,
  };
}

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>["values"];

function checkModeFlags(values: Values): "single" | "eval" | "chat" {
  const single = values.prompt !== undefined || values["prompt-ids"] !== undefined;
  const evalMode = values.eval !== undefined || values["eval-mt-bench"] === true;
  if (values.prompt !== undefined && values["prompt-ids"] !== undefined) {
    throw new UsageError("--prompt and --prompt-ids exclude each other");
  }
  if (values.eval !== undefined && values["eval-mt-bench"]) {
    throw new UsageError("--eval and --eval-mt-bench exclude each other");
  }
  if (single && evalMode) throw new UsageError("--prompt/--prompt-ids and --eval exclude each other");
  if (values.compare && values.autoregressive) {
    throw new UsageError("--compare and --autoregressive exclude each other");
  }
  const mode = single ? "single" : evalMode ? "eval" : "chat";
  if (mode !== "eval") {
    for (const f of ["compare", "turns", "max-num-prompts", "batch-size", "output"] as const) {
      if (values[f] !== undefined) throw new UsageError(`--${f} needs --eval or --eval-mt-bench`);
    }
  }
  if (mode === "chat" && values.json) throw new UsageError("--json needs --prompt, --prompt-ids or --eval");
  return mode;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, FLAGS);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const mode = checkModeFlags(values);
  // Cheap flag checks before loading anything.
  samplingFromFlags(values);
  const maxNew = intFlag(values, "max-new-tokens", 128, { min: 1, max: 1_000_000 });
  const pair = await loadPair(pairOptionsFromFlags(values));
  try {
    if (values.compare && !pair.drafter) {
      throw new UsageError("--compare needs a drafter (--drafter DIR|org/name)");
    }
    const runMode: RunMode = pair.drafter && !values.autoregressive ? "redrafter" : "autoregressive";
    const settings = settingsFrom(values, pair, runMode);
    const c = colors({ noColor: values["no-color"], isTTY: Deno.stdout.isTerminal() });
    if (mode === "chat") return await runChat(pair, settings, values, maxNew, c);
    if (mode === "eval") return await runEval(pair, settings, values, maxNew);
    return await runSingle(pair, settings, values, maxNew, c);
  } finally {
    pair.dispose();
  }
}

async function runSingle(
  pair: Pair,
  s: RunSettings,
  values: Values,
  maxNew: number,
  c: ReturnType<typeof colors>,
): Promise<number> {
  const tok = pair.tokenizer;
  const cfg = pair.target.config;
  let ids: number[];
  let style: string | null = null;
  if (values["prompt-ids"] !== undefined) ids = parsePromptIds(values["prompt-ids"], cfg.vocabSize);
  else {
    if (!tok) {
      throw new UsageError("--prompt needs a tokenizer; this model has no tokenizer.json (use --prompt-ids)");
    }
    const st = promptStyle(tok, { chat: values.chat, raw: values.raw });
    style = st;
    const messages = st === "chat" && values.system !== undefined
      ? [{ role: "system", content: values.system }, { role: "user", content: values.prompt! }]
      : [{ role: "user", content: values.prompt! }];
    ids = encodeConversation(tok, st, messages);
  }
  const depth = s.mode === "redrafter" ? Math.max(s.beamLength, 1 + (s.lookup ?? 0)) : 0;
  const budget = fitContext(ids.length, maxNew, cfg.maxPositionEmbeddings, depth, "the prompt");
  const gen = streamFor(s, [ids], budget);
  if (values.json) {
    const result = await runToEnd(gen);
    const out: Record<string, unknown> = {
      mode: s.mode,
      backend: pair.target.backend,
      prompt_style: style,
      prompt_ids: ids,
      ids: result.ids[0],
      finish: result.finish[0],
    };
    if (result.text) out.text = result.text[0];
    if (s.mode === "redrafter") {
      Object.assign(out, {
        beam_width: s.beamWidth,
        beam_length: s.beamLength,
        lookup: s.lookup ?? 0,
        lookup_mode: s.lookupMode ?? "branch",
        lookup_length: s.lookupLength ?? "fixed",
        tree_nodes: s.draftTree?.nodes ?? 0,
        draft_vocab: pair.draftVocab ?? pair.target.config.vocabSize,
      });
    }
    out.sampling = s.sampling ?? { mode: "greedy" };
    out.stats = result.metrics;
    console.log(JSON.stringify(out));
    return 0;
  }
  const writer = textWriter(tok, c);
  const result = await runToEnd(gen, (ev) => writer.onEvent(ev));
  writer.finish();
  stdoutWrite("\n");
  console.error(colors({ noColor: values["no-color"] }).dim(statsLine(result.metrics, s.mode, s)));
  return 0;
}

if (import.meta.main) await runMain(main);
