/**
 * `deno task bench`: sweep beam width x beam length for greedy and exact sampling over a prompt set, with
 * the autoregressive baseline measured in the same run, interleaved (each batch of prompts runs through the
 * baseline and then through every shape, so slow drift of a shared machine hits all of them alike), and
 * report tau, tokens/s and speedup. Recommends the fastest shape for
 * this machine and backend, and writes bench.json plus SVG charts (speedup heatmaps, accepted-length
 * histograms) to --out. Several --backend names (comma-separated) are benched one after another.
 *
 * Speedups are ratios of tokens/s within one run; absolute tokens/s depend on the machine and its load.
 *
 * @module
 */
import { join } from "node:path";
import type { SamplingOptions } from "../core/options.ts";
import { checkBeamShape } from "../core/beam_search.ts";
import { LOOKUP_LENGTHS, LOOKUP_MODES, type LookupLength, type LookupMode } from "../core/lookup.ts";
import { defaultTreeChildren, MAX_TREE_CHILDREN, MAX_TREE_NODES } from "../core/draft_tree.ts";
import { recommendedDrafting } from "../core/drafting.ts";
import {
  choiceFlag,
  type FlagValues,
  intFlag,
  intListFlag,
  numberFlag,
  parseFlags,
  runMain,
  UsageError,
} from "./args.ts";
import { batches, readPrompts } from "./prompts.ts";
import {
  asUsage,
  checkDrafterWeights,
  checkOnnxWeights,
  DEFAULT_PROMPTS,
  defaultDrafterWeights,
  drafterBackendFor,
  encodeConversation,
  fitContext,
  loadPair,
  type Pair,
  promptStyle,
} from "./setup.ts";
import { type RunMode, type RunSettings, runToEnd, streamFor } from "./run.ts";
import { fmt, summarize, type Summary } from "./report.ts";
import { progressBar, renderTable } from "./term.ts";
import { heatmapSvg, histogramSvg } from "./svg.ts";
import { type DraftingFlags, draftVocabFlag } from "./generate.ts";
import { AR_MODELS, runArSuite } from "./bench_ar.ts";
import { checkBackend, loadDraftModel, type LoadTargetOptions } from "../backends/mod.ts";
import { defaultThreads } from "../kernels/mod.ts";
import type { RunMetrics } from "../core/metrics.ts";

export const USAGE = `usage: deno task bench [flags]

Sweeps beam width x beam length for ReDrafter against the autoregressive baseline on this machine.

  --model DIR|org/name    target (default: the embedded models/default/target)
  --drafter DIR|org/name  drafter (default: models/default/drafter with the default model)
  --backend LIST          backends, comma-separated to compare (default cpu): cpu, onnx-wasm, onnx-webgpu,
                          onnx-node, onnx-cuda
  --threads N             threads: the CPU backend's matmuls and attention (default: cores, at most 8) or
                          ONNX intra-op threads
  --onnx-weights W        ONNX target weights: fp32 (default), fp16, q4, q8, q4g128, q8g128 or q4g128h4
  --drafter-threads N     the drafter's threads (default: --threads next to a cpu target, 1 next to
                          onnx-node / onnx-wasm and for a drafter graph)
  --drafter-weights W     drafter weights: q7 (default for a cpu drafter), q8 (default for an onnx-node
                          drafter) or fp32 (default elsewhere); fp16, q4, q4g128, q8g128, q4g128h4 too on onnx-*
                          (never changes the text, only speed and acceptance)
  --drafter-backend B     where the drafter runs: cpu, or the --backend itself (default: cpu, on one
                          thread next to onnx-node / onnx-wasm; onnx-cuda next to onnx-cuda)
  --draft-vocab LIST      draft vocabularies: N (the N most frequent tokens of the drafter's
                          draft_vocab.json) or all; each value is one more sweep dimension (default: the
                          file's default_size, 2048 for the embedded drafter, else all)
  --prompts FILE          prompt set (default models/default/prompts.jsonl); MT-bench, JSONL or text
  --num-prompts N         first N prompts (default 4)
  --max-new-tokens N      new tokens per prompt (default 64)
  --batch-size B          prompts per call (default 1)
  --beam-widths LIST      beam widths W (default 1,2,4,8)
  --beam-lengths LIST     beam lengths L, INCLUDING the init token (drafts per beam = L-1) (default 2,3,4,5)
  --lookup LIST           prompt lookup drafts per round next to the drafter's beams (0 = off; default 0):
                          each value is one more sweep dimension, e.g. 0,4 times pure ReDrafter and
                          ReDrafter with up to 4 lookup drafts in the same run
  --lookup-mode LIST      branch (default), first, or both: first verifies a round's lookup drafts alone
                          and skips the drafter where it finds some (see \`generate --help\`); each value
                          is one more sweep dimension for every --lookup value above 0
  --lookup-length LIST    fixed (default), match, or both: match scales a round's lookup drafts to the
                          matched context (n/2 tokens for a match of n, at most --lookup); one more sweep
                          dimension for every --lookup value above 0
  --tree-nodes LIST       dynamic draft trees of N nodes instead of W beams (0 = beams; default 0, or 0,32
                          when every --backend is onnx-webgpu / onnx-cuda): each value is one more sweep
                          dimension; a tree of shape W x L drafts L-1 steps, each expanding the W likeliest
                          nodes (see \`generate --help\`)
  --tree-children C       next tokens per expanded node of a tree (default: W)
  --modes LIST            greedy, exact (exact sampling) or both (default greedy,exact)
  --adaptive on|off       adaptive drafting in every ReDrafter run (see \`generate --help\`; default off, so
                          that the sweep times each shape itself, also where generate would turn it on)
  --temperature T         temperature of the exact-sampling runs (default 1)
  --seed S                sampling seed (default 0)
  --chat / --raw          prompt format (default: chat when the tokenizer has a chat template)
  --no-tree               verify beams as separate chains
  --suite NAME            redrafter (default): the sweep above; ar: autoregressive tokens/s of each --backend
                          next to Hugging Face transformers (torch CPU) on stories260K, a random ~25M Llama
                          and the default target (tools/hf_compare.py; needs python3 + torch)
  --ar-models LIST        the ar suite's models: stories260k, random-25m, random-100m, default (default all;
                          the random ones are written to .cache/bench/ on first use, the ~100M one 400 MB)
  --peers                 also run Hugging Face transformers generate() (plain, and prompt-lookup assisted
                          generation) on the same model, prompts and budget (tools/hf_compare.py, torch CPU)
  --repeats N             repetitions: of the whole sweep, each against its own interleaved baseline (the
                          table shows the median speedup and the range; default 1); per model in
                          --suite ar (median; default 3)
  --out DIR               where bench.json and the SVG charts go (default bench-out)
  --json                  print bench.json to stdout instead of the tables`;

const FLAGS = {
  model: { type: "string" },
  drafter: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string" },
  "onnx-weights": { type: "string" },
  "drafter-weights": { type: "string" },
  "drafter-threads": { type: "string" },
  "drafter-backend": { type: "string" },
  "draft-vocab": { type: "string" },
  adaptive: { type: "string" },
  "ar-models": { type: "string" },
  prompts: { type: "string" },
  "num-prompts": { type: "string" },
  "max-new-tokens": { type: "string" },
  "batch-size": { type: "string" },
  "beam-widths": { type: "string" },
  "beam-lengths": { type: "string" },
  lookup: { type: "string" },
  "lookup-mode": { type: "string" },
  "lookup-length": { type: "string" },
  "tree-nodes": { type: "string" },
  "tree-children": { type: "string" },
  modes: { type: "string" },
  temperature: { type: "string" },
  seed: { type: "string" },
  chat: { type: "boolean" },
  raw: { type: "boolean" },
  "no-tree": { type: "boolean" },
  out: { type: "string" },
  suite: { type: "string" },
  repeats: { type: "string" },
  peers: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type BenchMode = "greedy" | "exact";

/** One shape's result: its drafting (lookup 0: pure ReDrafter; treeNodes 0: beam search) and numbers. */
export interface ShapeResult extends DraftingFlags {
  backend: string;
  mode: BenchMode;
  /** Tokens the drafter drafts from (--draft-vocab; the vocabulary size when all). */
  draftVocab: number;
  tau: number;
  tokensPerSecond: number;
  /** Median over the repeats of the sweep (--repeats; one repeat: the speedup of that run). */
  speedup: number;
  /** Per repeat of the sweep: ReDrafter tokens/s over that repeat's interleaved baseline. */
  speedups: number[];
  /**
   * The same ratio for decoding alone (Summary.decodeTokensPerSecond: the prompts' prefill, identical in
   * both, left out of the time), median over the repeats.
   */
  decodeSpeedup: number;
  /** ReDrafter ids equal the baseline's for every prompt. */
  identical: boolean;
  acceptanceByPosition: number[];
  histogram: number[];
  meanDraftMs: number;
  meanVerifyMs: number;
  /** Rounds that ran without drafts (--adaptive on), over all prompts and repeats. */
  plainSteps: number;
}

export interface Baseline {
  backend: string;
  mode: BenchMode;
  /** Over all prompts (timed interleaved with the shapes). */
  tokensPerSecond: number;
  /** Over the first and the second half of the batches: how far the machine drifted during the sweep. */
  firstHalf: number;
  secondHalf: number;
}

function listFlag(
  values: FlagValues,
  name: string,
  choices: readonly string[],
  fallback: string[],
): string[] {
  const v = values[name];
  if (v === undefined) return fallback;
  const items = String(v).split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new UsageError(`--${name} needs at least one value`);
  for (const it of items) {
    if (!choices.includes(it)) {
      throw new UsageError(`--${name} must list values from ${choices.join(", ")}; got '${it}'`);
    }
  }
  return [...new Set(items)];
}

/** Metrics of every batch one configuration ran, and every prompt's ids, in order. */
interface Runs {
  metrics: RunMetrics[];
  ids: number[][];
}

async function runBatch(s: RunSettings, batch: number[][], maxNew: number, into: Runs): Promise<void> {
  const r = await runToEnd(streamFor(s, batch, maxNew));
  into.metrics.push(r.metrics);
  into.ids.push(...r.ids);
}

const same = (a: number[][], b: number[][]) =>
  a.length === b.length &&
  a.every((row, i) => row.length === b[i].length && row.every((t, j) => t === b[i][j]));

async function benchBackend(
  backend: string,
  values: FlagValues,
  opts: {
    widths: number[];
    lengths: number[];
    /**
     * Lookup settings swept: [K, mode, length], K = 0 (off) once, each K above 0 in each --lookup-mode and
     * --lookup-length.
     */
    lookups: LookupSetting[];
    /** Draft tree sizes swept (0: beam search), and the children per expanded node (undefined: W). */
    trees: number[];
    treeChildren?: number;
    modes: BenchMode[];
    /** Adaptive drafting in the ReDrafter runs (--adaptive). */
    adaptive: "on" | "off";
    numPrompts: number;
    maxNew: number;
    batchSize: number;
    temperature: number;
    seed: number;
    promptsFile: string;
    repeats: number;
    draftVocabs: DraftVocabChoice[];
  },
): Promise<{ pair: Pair; results: ShapeResult[]; baselines: Baseline[] }> {
  const threads = values.threads === undefined ? undefined : intFlag(values, "threads", 1, { min: 1 });
  const pair = await loadPair({
    model: values.model as string | undefined,
    drafter: values.drafter as string | undefined,
    backend,
    threads,
    onnxWeights: backend.startsWith("onnx-") ? values["onnx-weights"] as string | undefined : undefined,
    drafterWeights: values["drafter-weights"] as string | undefined,
    drafterBackend: values["drafter-backend"] as string | undefined,
    drafterThreads: values["drafter-threads"] === undefined
      ? undefined
      : intFlag(values, "drafter-threads", 1, { min: 1 }),
    draftVocab: opts.draftVocabs[0],
  });
  if (!pair.drafter) throw new UsageError("bench needs a drafter (--drafter DIR|org/name)");
  // One drafter per --draft-vocab value: the pair's for the first, the others loaded next to it.
  const V = pair.target.config.vocabSize;
  const drafters = [{ drafter: pair.drafter, size: pair.draftVocab ?? V }];
  for (const v of opts.draftVocabs.slice(1)) {
    const drafter = await asUsage("--draft-vocab", () =>
      loadDraftModel(pair.drafterDir!, pair.target, {
        backend,
        threads,
        drafterThreads: values["drafter-threads"] === undefined
          ? undefined
          : intFlag(values, "drafter-threads", 1, { min: 1 }),
        drafterWeights: pair.drafterWeights as LoadTargetOptions["drafterWeights"],
        drafterBackend: pair.drafterBackend ?? undefined,
        draftVocab: v === "all" ? undefined : v,
      }));
    drafters.push({ drafter, size: drafter.draftVocab ?? V });
  }
  const widest = Math.max(...opts.widths), smallest = Math.min(...drafters.map((d) => d.size));
  if (widest > smallest) {
    throw new UsageError(
      `--beam-widths ${widest} is more than the draft vocabulary of ${smallest} tokens (--draft-vocab): ` +
        `each beam step picks W tokens from it`,
    );
  }
  const tok = pair.tokenizer;
  if (!tok) throw new UsageError("bench needs a tokenizer; this model has no tokenizer.json");
  const cfg = pair.target.config;
  for (const w of opts.widths) {
    await asUsage("--beam-widths", () => checkBeamShape(w, 2, cfg.vocabSize));
  }
  const set = await asUsage(
    "--prompts",
    () => readPrompts(opts.promptsFile, { maxNumPrompts: opts.numPrompts }),
  );
  const style = promptStyle(tok, { chat: values.chat as boolean, raw: values.raw as boolean });
  const prompts = set.prompts.map((p) =>
    encodeConversation(tok, style, [{ role: "user", content: p.turns[0] }])
  );
  let maxNew = opts.maxNew;
  const depth = Math.max(...opts.lengths, ...opts.lookups.map(([K]) => K + 1));
  for (const [i, p] of prompts.entries()) {
    maxNew = fitContext(
      p.length,
      maxNew,
      cfg.maxPositionEmbeddings,
      depth,
      `${opts.promptsFile}:${set.prompts[i].line}`,
    );
  }
  const base = (
    mode: RunMode,
    sampling: SamplingOptions | undefined,
    W = 1,
    L = 2,
    K = 0,
    M: LookupMode = "branch",
    G: LookupLength = "fixed",
    N = 0,
    D = 0,
  ): RunSettings => ({
    target: pair.target,
    drafter: drafters[D].drafter,
    mode,
    beamWidth: W,
    beamLength: L,
    lookup: K,
    lookupMode: M,
    lookupLength: G,
    draftTree: N > 0 ? { nodes: N, children: opts.treeChildren ?? defaultTreeChildren(W) } : undefined,
    tree: !values["no-tree"],
    sampling,
    adaptive: opts.adaptive,
    stop: [],
  });

  // Warm-up (JIT, caches, lazily built graphs): the first prompt through the baseline and one shape per mode.
  for (const mode of opts.modes) {
    const sampling = samplingFor(mode, opts);
    const scratch: Runs = { metrics: [], ids: [] };
    await runBatch(base("autoregressive", sampling), [prompts[0]], maxNew, scratch);
    await runBatch(
      base(
        "redrafter",
        sampling,
        opts.widths.at(-1)!,
        opts.lengths.at(-1)!,
        ...opts.lookups.at(-1)!,
        opts.trees.at(-1)!,
      ),
      [prompts[0]],
      maxNew,
      scratch,
    );
  }

  const results: ShapeResult[] = [];
  const baselines: Baseline[] = [];
  const grid = drafters.flatMap((_, D) =>
    opts.lookups.flatMap(([K, M, G]) =>
      opts.trees.flatMap((N) =>
        opts.widths.flatMap((W) => opts.lengths.map((L) => [W, L, K, M, G, N, D] as const))
      )
    )
  );
  const promptBatches = [...batches(prompts, opts.batchSize)];
  const total = opts.repeats * opts.modes.length * promptBatches.length * (grid.length + 1);
  const bar = progressBar({ label: `bench ${backend}`, total });
  for (const mode of opts.modes) {
    const sampling = samplingFor(mode, opts);
    const ar: Runs = { metrics: [], ids: [] };
    const runs: Runs[] = grid.map(() => ({ metrics: [], ids: [] }));
    const speedups: number[][] = grid.map(() => []);
    const decodeSpeedups: number[][] = grid.map(() => []);
    for (let rep = 0; rep < opts.repeats; rep++) {
      const arRep: Runs = { metrics: [], ids: [] };
      const shapeRuns: Runs[] = grid.map(() => ({ metrics: [], ids: [] }));
      for (const batch of promptBatches) {
        await runBatch(base("autoregressive", sampling), batch, maxNew, arRep);
        bar.tick();
        for (const [j, [W, L, K, M, G, N, D]] of grid.entries()) {
          await runBatch(base("redrafter", sampling, W, L, K, M, G, N, D), batch, maxNew, shapeRuns[j]);
          bar.tick();
        }
      }
      const arSummary = summarize(arRep.metrics);
      const repTps = arSummary.tokensPerSecond, repDecode = arSummary.decodeTokensPerSecond;
      for (const j of grid.keys()) {
        const shape = summarize(shapeRuns[j].metrics);
        speedups[j].push(repTps > 0 ? shape.tokensPerSecond / repTps : 0);
        decodeSpeedups[j].push(repDecode > 0 ? shape.decodeTokensPerSecond / repDecode : 0);
        runs[j].metrics.push(...shapeRuns[j].metrics);
        runs[j].ids.push(...shapeRuns[j].ids);
      }
      ar.metrics.push(...arRep.metrics);
      ar.ids.push(...arRep.ids);
    }
    const tps = summarize(ar.metrics).tokensPerSecond;
    const half = Math.ceil(ar.metrics.length / 2);
    baselines.push({
      backend: pair.target.backend,
      mode,
      tokensPerSecond: tps,
      firstHalf: summarize(ar.metrics.slice(0, half)).tokensPerSecond,
      secondHalf: summarize(ar.metrics.length > 1 ? ar.metrics.slice(half) : ar.metrics).tokensPerSecond,
    });
    for (const [j, [W, L, K, M, G, N, D]] of grid.entries()) {
      const r: Summary = summarize(runs[j].metrics);
      results.push({
        backend: pair.target.backend,
        mode,
        beamWidth: W,
        beamLength: L,
        lookup: K,
        lookupMode: M,
        lookupLength: G,
        treeNodes: N,
        draftVocab: drafters[D].size,
        tau: r.tau,
        tokensPerSecond: r.tokensPerSecond,
        speedup: median(speedups[j]),
        speedups: speedups[j],
        decodeSpeedup: median(decodeSpeedups[j]),
        identical: same(runs[j].ids, ar.ids),
        acceptanceByPosition: r.acceptanceByPosition,
        histogram: r.histogram,
        meanDraftMs: r.meanDraftMs,
        meanVerifyMs: r.meanVerifyMs,
        plainSteps: r.plainSteps,
      });
    }
  }
  bar.finish();
  for (const d of drafters.slice(1)) d.drafter.dispose();
  return { pair, results, baselines };
}

/** Drift between the halves of a baseline above which a single sweep's speedups deserve repeats. */
const DRIFT_WARN = 0.1;

/** A backend's best shape as the generate flags that run it, or a note that autoregression was faster. */
export interface Recommendation {
  backend: string;
  mode: BenchMode;
  beamWidth?: number;
  beamLength?: number;
  lookup?: number;
  lookupMode?: LookupMode;
  lookupLength?: LookupLength;
  treeNodes?: number;
  draftVocab?: number;
  speedup?: number;
}

/** The "recommended on this machine" line of one backend. */
export function recommendedLine(
  r: Recommendation,
  treeChildren: number | undefined,
  withVocabs: boolean,
  adaptive = false,
): string {
  if (r.beamWidth === undefined) return `${r.backend}: no result`;
  return `recommended on this machine for ${r.backend} (${r.mode}): --beam-width ${r.beamWidth} ` +
    `--beam-length ${r.beamLength}${treeFlags(r.treeNodes, r.treeNodes ? treeChildren : undefined)}${
      lookupFlags(r.lookup, r.lookupMode, r.lookupLength)
    }${withVocabs && r.draftVocab !== undefined ? ` --draft-vocab ${r.draftVocab}` : ""}${
      adaptive ? " --adaptive on" : ""
    } (${fmt(r.speedup, 2)}x)${
      r.speedup !== undefined && r.speedup < 1
        ? "; every shape was slower than autoregression here: --autoregressive is faster"
        : ""
    }`;
}

/**
 * Warnings for baselines whose two halves differ by more than 10%: the machine changed speed during the
 * sweep (a shared VM), so speedups of one sweep can be off by that much. None with repeats (their
 * medians and ranges show it already).
 */
export function driftWarnings(baselines: Baseline[], repeats: number): string[] {
  if (repeats > 1) return [];
  return baselines.flatMap((b) => {
    const lo = Math.min(b.firstHalf, b.secondHalf), hi = Math.max(b.firstHalf, b.secondHalf);
    if (!(lo > 0) || hi / lo - 1 <= DRIFT_WARN) return [];
    return [
      `warning: the ${b.backend} (${b.mode}) baseline ran at ${
        b.firstHalf.toFixed(1)
      } tok/s in the first half ` +
      `of the sweep and ${b.secondHalf.toFixed(1)} in the second (${
        ((hi / lo - 1) * 100).toFixed(0)
      }% apart): ` +
      `this machine changed speed, so these speedups may be off by as much; rerun with --repeats 3`,
    ];
  });
}

function median(a: number[]): number {
  const s = a.slice().sort((x, y) => x - y), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function samplingFor(mode: BenchMode, o: { temperature: number; seed: number }): SamplingOptions | undefined {
  return mode === "greedy" ? undefined : { mode: "exact", temperature: o.temperature, seed: o.seed };
}

/** A --draft-vocab value: a size, "all", or undefined (the drafter's own default). */
type DraftVocabChoice = number | "all" | undefined;

/**
 * --tree-nodes left out: beams only, plus the recommended draft tree (core/drafting.ts) when every backend
 * of the run recommends one (the GPU ones), so that the sweep holds the shape `generate` drafts by default.
 */
export function defaultTreeList(backends: string[], noTree: boolean): number[] {
  const nodes = backends.map((b) => recommendedDrafting(b).draftTree?.nodes ?? 0);
  if (noTree || nodes.some((n) => n === 0)) return [0];
  return [0, ...new Set(nodes)];
}

/** --draft-vocab LIST: each value as generate's --draft-vocab, deduplicated; [undefined] when absent. */
export function draftVocabList(values: FlagValues): DraftVocabChoice[] {
  const v = values["draft-vocab"];
  if (v === undefined) return [undefined];
  const out: DraftVocabChoice[] = [];
  for (const item of String(v).split(",").map((x) => x.trim())) {
    const choice = draftVocabFlag({ "draft-vocab": item });
    if (!out.includes(choice)) out.push(choice);
  }
  return out;
}

/**
 * A lookup setting of the sweep: K drafts per round (0: off), how they join the round, and how many a match
 * proposes.
 */
type LookupSetting = [number, LookupMode, LookupLength];

/** A result's lookup setting as the table shows it: K, "K first", "K match" or "K first match". */
function lookupLabel(r: { lookup: number; lookupMode: LookupMode; lookupLength?: LookupLength }): string {
  if (!r.lookup) return "0";
  return `${r.lookup}${r.lookupMode === "first" ? " first" : ""}${
    r.lookupLength === "match" ? " match" : ""
  }`;
}

/** The generate flags of a lookup setting ("" without lookup drafts). */
function lookupFlags(
  lookup: number | undefined,
  mode: LookupMode | undefined,
  length: LookupLength | undefined,
): string {
  if (!lookup) return "";
  return ` --lookup ${lookup}${mode === "first" ? " --lookup-mode first" : ""}${
    length === "match" ? " --lookup-length match" : ""
  }`;
}

/** The generate flags of a draft tree setting ("" for beams). */
function treeFlags(nodes: number | undefined, children: number | undefined): string {
  if (!nodes) return "";
  return ` --tree-nodes ${nodes}${children === undefined ? "" : ` --tree-children ${children}`}`;
}

/** A result's drafting as titles show it: " lookup K", " tree N", both, or "". */
function draftingLabel(
  r: { lookup: number; lookupMode: LookupMode; lookupLength?: LookupLength; treeNodes: number },
): string {
  return (r.treeNodes ? ` tree ${r.treeNodes}` : "") + (r.lookup ? ` lookup ${lookupLabel(r)}` : "");
}

function best(results: ShapeResult[], backend: string, mode: BenchMode): ShapeResult | undefined {
  return results.filter((r) => r.backend === backend && r.mode === mode)
    .reduce<ShapeResult | undefined>((a, b) => (!a || b.speedup > a.speedup ? b : a), undefined);
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, FLAGS);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const backends = (values.backend ?? "cpu").split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (backends.length === 0) throw new UsageError("--backend needs at least one name");
  for (const b of backends) {
    try {
      checkBackend(b);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (values["onnx-weights"] !== undefined) {
    // Checked once against an onnx-* backend of the list; the cpu entries of a mixed list ignore it.
    checkOnnxWeights(values["onnx-weights"], backends.find((b) => b.startsWith("onnx-")) ?? backends[0]);
  }
  const drafterBackends = backends.map((b) =>
    drafterBackendFor(values["drafter-backend"] as string | undefined, b)
  );
  for (const d of drafterBackends) checkDrafterWeights(values["drafter-weights"] as string | undefined, d);
  if (values.chat && values.raw) throw new UsageError("--chat and --raw exclude each other");
  const suite = values.suite ?? "redrafter";
  if (suite !== "redrafter" && suite !== "ar") {
    throw new UsageError(`--suite must be redrafter or ar, got ${JSON.stringify(suite)}`);
  }
  if (suite === "ar") {
    const rows = await runArSuite({
      backends,
      maxNewTokens: intFlag(values, "max-new-tokens", 64, { min: 1 }),
      threads: intFlag(values, "threads", 1, { min: 1 }),
      repeats: intFlag(values, "repeats", 3, { min: 1 }),
      onnxWeights: values["onnx-weights"] as LoadTargetOptions["onnxWeights"],
      models: listFlag(values, "ar-models", AR_MODELS, [...AR_MODELS]),
    });
    const out = values.out ?? "bench-out";
    Deno.mkdirSync(out, { recursive: true });
    Deno.writeTextFileSync(join(out, "bench_ar.json"), JSON.stringify(rows, null, 2) + "\n");
    return 0;
  }
  const lookupKs = [...new Set(intListFlag(values, "lookup", [0], { min: 0, max: 64 }))];
  if (values["lookup-mode"] !== undefined && !lookupKs.some((k) => k > 0)) {
    throw new UsageError("--lookup-mode needs --lookup with a value of 1 or more");
  }
  const lookupModes = listFlag(values, "lookup-mode", LOOKUP_MODES, ["branch"]) as LookupMode[];
  if (values["lookup-length"] !== undefined && !lookupKs.some((k) => k > 0)) {
    throw new UsageError("--lookup-length needs --lookup with a value of 1 or more");
  }
  const lookupLengths = listFlag(values, "lookup-length", LOOKUP_LENGTHS, ["fixed"]) as LookupLength[];
  const trees = [
    ...new Set(
      intListFlag(values, "tree-nodes", defaultTreeList(backends, values["no-tree"] === true), {
        min: 0,
        max: MAX_TREE_NODES,
      }),
    ),
  ];
  if (values["tree-children"] !== undefined && !trees.some((n) => n > 0)) {
    throw new UsageError("--tree-children needs --tree-nodes with a value of 1 or more");
  }
  if (values["no-tree"] && trees.some((n) => n > 0)) {
    throw new UsageError("--tree-nodes needs tree verification; drop --no-tree");
  }
  const opts = {
    draftVocabs: draftVocabList(values),
    widths: [...new Set(intListFlag(values, "beam-widths", [1, 2, 4, 8], { min: 1, max: 1024 }))],
    lengths: [...new Set(intListFlag(values, "beam-lengths", [2, 3, 4, 5], { min: 2, max: 64 }))],
    lookups: lookupKs.flatMap((K): LookupSetting[] =>
      K === 0
        ? [[0, "branch", "fixed"]]
        : lookupModes.flatMap((M) => lookupLengths.map((G): LookupSetting => [K, M, G]))
    ),
    trees,
    treeChildren: values["tree-children"] === undefined
      ? undefined
      : intFlag(values, "tree-children", 1, { min: 1, max: MAX_TREE_CHILDREN }),
    modes: listFlag(values, "modes", ["greedy", "exact"], ["greedy", "exact"]) as BenchMode[],
    adaptive: choiceFlag(values, "adaptive", ["on", "off"] as const, "off"),
    numPrompts: intFlag(values, "num-prompts", 4, { min: 1 }),
    maxNew: intFlag(values, "max-new-tokens", 64, { min: 1 }),
    batchSize: intFlag(values, "batch-size", 1, { min: 1 }),
    temperature: numberFlag(values, "temperature", 1, { min: 0.01, max: 100 }),
    seed: intFlag(values, "seed", 0, { min: 0 }),
    promptsFile: values.prompts ?? DEFAULT_PROMPTS,
    repeats: intFlag(values, "repeats", 1, { min: 1 }),
  };
  const out = values.out ?? "bench-out";

  const results: ShapeResult[] = [];
  const baselines: Baseline[] = [];
  let modelDir = "", drafterDir: string | null = null, draftVocab: number | null = null;
  for (const b of backends) {
    const r = await benchBackend(b, values, opts);
    results.push(...r.results);
    baselines.push(...r.baselines);
    modelDir = r.pair.modelDir;
    drafterDir = r.pair.drafterDir;
    draftVocab = r.pair.draftVocab;
    r.pair.dispose();
  }

  const recommended = backends.map((b): Recommendation => {
    const g = best(results, b, opts.modes[0]);
    return {
      backend: b,
      mode: opts.modes[0],
      beamWidth: g?.beamWidth,
      beamLength: g?.beamLength,
      lookup: g?.lookup,
      lookupMode: g?.lookupMode,
      lookupLength: g?.lookupLength,
      treeNodes: g?.treeNodes,
      draftVocab: g?.draftVocab,
      speedup: g?.speedup,
    };
  });
  const peers = values.peers
    ? await runPeers(
      modelDir,
      opts.promptsFile,
      opts.numPrompts,
      opts.maxNew,
      // The same thread count as ours (the CPU backend's default: the machine's cores, at most 8).
      intFlag(values, "threads", defaultThreads(), { min: 1 }),
    )
    : null;
  const report = {
    peers,
    machine: {
      os: Deno.build.os,
      arch: Deno.build.arch,
      cpus: navigator.hardwareConcurrency,
      deno: Deno.version.deno,
    },
    model: modelDir,
    drafter: drafterDir,
    settings: {
      ...opts,
      tree: !values["no-tree"],
      onnxWeights: values["onnx-weights"] ?? "fp32",
      drafterWeights: values["drafter-weights"] ??
        drafterBackends.map((d) => defaultDrafterWeights(d)).join(","),
      drafterBackend: drafterBackends.join(","),
      draftVocab: opts.draftVocabs.length > 1
        ? [...new Set(results.map((r) => r.draftVocab))]
        : draftVocab ?? "all",
    },
    baselines,
    results,
    recommended,
  };
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(join(out, "bench.json"), JSON.stringify(report, null, 2) + "\n");
  const charts: string[] = [];
  for (const b of backends) {
    for (const mode of opts.modes) {
      const sizes = [...new Set(results.filter((r) => r.backend === b).map((r) => r.draftVocab))];
      for (
        const [K, M, G, N, DV] of sizes.flatMap((DV) =>
          opts.lookups.flatMap(([K, M, G]) => opts.trees.map((N) => [K, M, G, N, DV] as const))
        )
      ) {
        // One heatmap per lookup, tree and draft vocabulary setting (named _treeN, _lookupK, _lookupK_first,
        // _lookupK[_first]_match, _vocabN past the first).
        const rs = results.filter((r) =>
          r.backend === b && r.mode === mode && r.lookup === K && r.lookupMode === M &&
          r.lookupLength === G &&
          r.treeNodes === N &&
          r.draftVocab === DV
        );
        const vocabTag = sizes.length > 1 ? `_vocab${DV}` : "";
        const cell = (W: number, L: number) =>
          rs.find((r) => r.beamWidth === W && r.beamLength === L)?.speedup ?? null;
        const heat = join(
          out,
          `speedup_${b}_${mode}${N ? `_tree${N}` : ""}${
            K ? `_lookup${K}${M === "first" ? "_first" : ""}${G === "match" ? "_match" : ""}` : ""
          }${vocabTag}.svg`,
        );
        await Deno.writeTextFile(
          heat,
          heatmapSvg({
            title: `ReDrafter speedup over autoregressive (${b}, ${mode}${
              N ? `, draft tree of ${N} nodes` : ""
            }${K ? `, lookup ${lookupLabel({ lookup: K, lookupMode: M, lookupLength: G })}` : ""}${
              vocabTag ? `, draft vocabulary ${DV}` : ""
            })`,
            xLabel: "beam length L (incl. init token)",
            yLabel: "beam width W",
            xTicks: opts.lengths,
            yTicks: opts.widths,
            values: opts.widths.map((W) => opts.lengths.map((L) => cell(W, L))),
            format: (v) => `${v.toFixed(2)}x`,
            colorLabel: "speedup",
          }),
        );
        charts.push(heat);
      }
      const top = best(results, b, mode);
      if (top) {
        const hist = join(out, `accepted_${b}_${mode}.svg`);
        await Deno.writeTextFile(
          hist,
          histogramSvg({
            title: `Accepted drafts per step, W=${top.beamWidth} L=${top.beamLength}${
              draftingLabel(top)
            } (${b}, ${mode})`,
            xLabel: "accepted drafts n",
            yLabel: "steps",
            bins: top.histogram.map((count, n) => ({ label: n, count })),
          }),
        );
        charts.push(hist);
      }
    }
  }

  if (values.json) {
    console.log(JSON.stringify(report));
    return 0;
  }
  const withLookup = opts.lookups.some(([K]) => K > 0);
  const withTrees = opts.trees.some((N) => N > 0);
  const withVocabs = opts.draftVocabs.length > 1;
  const rows = results.map((r) => [
    r.backend,
    r.mode,
    r.beamWidth,
    r.beamLength,
    ...(withVocabs ? [r.draftVocab] : []),
    ...(withTrees ? [r.treeNodes || "-"] : []),
    ...(withLookup ? [lookupLabel(r)] : []),
    fmt(r.tau, 2),
    fmt(r.tokensPerSecond, 1),
    r.speedups.length > 1
      ? `${fmt(r.speedup, 2)}x (${fmt(Math.min(...r.speedups), 2)}-${fmt(Math.max(...r.speedups), 2)})`
      : `${fmt(r.speedup, 2)}x`,
    `${fmt(r.decodeSpeedup, 2)}x`,
    r.identical ? "yes" : "NO",
  ]);
  const headers = [
    "backend",
    "mode",
    "W",
    "L",
    ...(withVocabs ? ["vocab"] : []),
    ...(withTrees ? ["tree"] : []),
    ...(withLookup ? ["lookup"] : []),
    "tau",
    "tok/s",
    "speedup",
    "decode only",
  ];
  headers.push("same as AR");
  console.log(renderTable(headers, rows, { align: headers.map((_, j) => j < 2 ? "left" : "right") }));
  console.log();
  // Backends against the CPU reference (benched one after another, so machine drift is not balanced here).
  const cpuAr = (mode: BenchMode) => baselines.find((b) => b.backend === "cpu" && b.mode === mode);
  const vsCpu = backends.length > 1 && backends.includes("cpu");
  console.log(renderTable(
    [
      "backend",
      "mode",
      "AR tok/s",
      "1st half",
      "2nd half",
      "best ReDrafter tok/s",
      ...(vsCpu ? ["AR x cpu", "ReDrafter x cpu AR"] : []),
    ],
    baselines.map((b) => {
      const top = best(results, b.backend, b.mode);
      const ref = cpuAr(b.mode)?.tokensPerSecond;
      return [
        b.backend,
        b.mode,
        fmt(b.tokensPerSecond, 1),
        fmt(b.firstHalf, 1),
        fmt(b.secondHalf, 1),
        top ? fmt(top.tokensPerSecond, 1) : "-",
        ...(vsCpu && ref
          ? [
            `${(b.tokensPerSecond / ref).toFixed(2)}x`,
            top ? `${(top.tokensPerSecond / ref).toFixed(2)}x` : "-",
          ]
          : vsCpu
          ? ["-", "-"]
          : []),
      ];
    }),
    { align: ["left", "left", "right", "right", "right", "right", "right", "right"] },
  ));
  console.log();
  for (const r of recommended) {
    console.log(recommendedLine(r, opts.treeChildren, withVocabs, opts.adaptive === "on"));
  }
  for (const w of driftWarnings(baselines, opts.repeats)) console.log(w);
  if (results.some((r) => !r.identical)) {
    console.log(
      "warning: some ReDrafter outputs differ from the baseline (expected identical for greedy/exact)",
    );
  }
  if (peers && "modes" in peers) {
    const ar = baselines.find((b) => b.mode === "greedy") ?? baselines[0];
    const top = best(results, backends[0], "greedy");
    console.log();
    console.log(renderTable(
      ["system (greedy)", "tok/s", "vs our autoregressive"],
      [
        [`ours, autoregressive (${ar.backend})`, fmt(ar.tokensPerSecond, 1), "1.00x"],
        ...(top
          ? [[
            `ours, ReDrafter W=${top.beamWidth} L=${top.beamLength}${draftingLabel(top)} (${top.backend})`,
            fmt(top.tokensPerSecond, 1),
            `${fmt(top.tokensPerSecond / ar.tokensPerSecond, 2)}x`,
          ]]
          : []),
        ...Object.entries(peers.modes).map(([mode, r]) => [
          `transformers generate(), ${mode === "lookup" ? "prompt-lookup assisted" : mode}`,
          fmt(r.tokens_per_second, 1),
          `${fmt(r.tokens_per_second / ar.tokensPerSecond, 2)}x`,
        ]),
      ],
      { align: ["left", "right", "right"] },
    ));
    console.log(`transformers: torch ${peers.torch} CPU, fp32, eager attention, ${peers.threads} thread(s)`);
  } else if (peers) console.log(`peers: ${peers.error}`);
  console.log(`wrote ${join(out, "bench.json")} and ${charts.length} charts in ${out}/`);
  return 0;
}

/** What tools/hf_compare.py prints, or why it could not run. */
type PeerReport =
  | { torch: string; threads: number; modes: Record<string, { tokens_per_second: number; tokens: number }> }
  | { error: string };

async function runPeers(
  model: string,
  prompts: string,
  numPrompts: number,
  maxNew: number,
  threads: number,
): Promise<PeerReport> {
  const script = new URL("../tools/hf_compare.py", import.meta.url).pathname;
  const args = [script, "--model", model, "--prompts", prompts, "--num-prompts", String(numPrompts)];
  args.push("--max-new-tokens", String(maxNew), "--modes", "plain,lookup", "--threads", String(threads));
  try {
    const r = await new Deno.Command(Deno.env.get("PYTHON") ?? "python3", {
      args,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!r.success) {
      return {
        error: new TextDecoder().decode(r.stderr).trim().split("\n").pop() ?? "transformers run failed",
      };
    }
    const parsed = JSON.parse(new TextDecoder().decode(r.stdout));
    for (const m of Object.values(parsed.modes) as { ids?: unknown }[]) delete m.ids;
    return parsed;
  } catch (e) {
    return { error: `python3 not runnable: ${(e as Error).message}` };
  }
}

if (import.meta.main) await runMain(main);
