/**
 * Batch evaluation for `deno task generate --eval FILE | --eval-mt-bench`: prompts in batches (the last
 * partial batch runs), one or two MT-bench turns, a warm-up call per run kind before timing, a progress bar
 * on stderr, per-prompt and overall tables (or JSON lines), generations to --output as JSONL, and with
 * --compare the autoregressive baseline on the same batches, the speedup, and whether outputs are identical.
 *
 * @module
 */
import type { ChatMessage } from "../loader/chat_template.ts";
import type { FinishReason, GenerateResult } from "../core/options.ts";
import type { PromptMetrics, RunMetrics } from "../core/metrics.ts";
import { batches, parsePrompts, type Prompt, readPrompts } from "./prompts.ts";
import { type FlagValues, intFlag, UsageError } from "./args.ts";
import { asUsage, encodeConversation, fitContext, type Pair, promptStyle } from "./setup.ts";
import { lookupDescription, type RunMode, type RunSettings, runToEnd, streamFor } from "./run.ts";
import { fetchMtBench } from "./mt_bench.ts";
import { PromptCache } from "../core/prompt_cache.ts";
import { fmt, summarize, summaryTable } from "./report.ts";
import { progressBar, renderTable } from "./term.ts";

/** One generation of one prompt's turn by one run kind. */
export interface EvalRecord {
  id: string;
  turn: number;
  mode: RunMode;
  prompt: string;
  promptIds: number[];
  ids: number[];
  text?: string;
  finish: FinishReason;
  metrics: PromptMetrics;
  /** Prompt tokens found in the KV cache kept from the previous turn (batch 1), not fed again. */
  cachedPromptTokens: number;
}

async function loadPrompts(values: FlagValues): Promise<{ prompts: Prompt[]; file: string }> {
  const turns = intFlag(values, "turns", 1, { min: 1, max: 2 }) as 1 | 2;
  const max = values["max-num-prompts"] === undefined
    ? undefined
    : intFlag(values, "max-num-prompts", 0, { min: 1 });
  if (values["eval-mt-bench"]) {
    const src = await asUsage("--eval-mt-bench", () => fetchMtBench());
    const set = await asUsage(
      "--eval-mt-bench",
      () => parsePrompts(src.text, src.path, { turns, maxNumPrompts: max }),
    );
    return { prompts: set.prompts, file: src.path };
  }
  const file = values.eval as string;
  const set = await asUsage("--eval", () => readPrompts(file, { turns, maxNumPrompts: max }));
  return { prompts: set.prompts, file };
}

export async function runEval(
  pair: Pair,
  s: RunSettings,
  values: FlagValues,
  maxNew: number,
): Promise<number> {
  const batchSize = intFlag(values, "batch-size", 1, { min: 1, max: 4096 });
  const tok = pair.tokenizer;
  if (!tok) throw new UsageError("--eval needs a tokenizer; this model has no tokenizer.json");
  const { prompts, file } = await loadPrompts(values);
  const style = promptStyle(tok, { chat: values.chat as boolean, raw: values.raw as boolean });
  const system: ChatMessage[] = style === "chat" && typeof values.system === "string"
    ? [{ role: "system", content: values.system }]
    : [];
  const cfg = pair.target.config;
  const modes: RunMode[] = values.compare ? ["autoregressive", "redrafter"] : [s.mode];
  // Same depth reserve for both kinds under --compare, so both get the same token budget.
  const depth = modes.includes("redrafter") ? Math.max(s.beamLength, 1 + (s.lookup ?? 0)) : 0;
  const turns = prompts[0].turns.length;

  // Refuse prompts that cannot fit before spending time on the others.
  for (const p of prompts) {
    const ids = encodeConversation(tok, style, [...system, { role: "user", content: p.turns[0] }]);
    fitContext(ids.length, 1, cfg.maxPositionEmbeddings, depth, `${file}:${p.line} (prompt ${p.id})`);
  }

  // Warm-up: JIT and caches, so the first timed prompt is not penalized.
  const warm = encodeConversation(tok, style, [...system, { role: "user", content: prompts[0].turns[0] }]);
  for (const m of modes) await runToEnd(streamFor({ ...s, mode: m }, [warm], Math.min(8, maxNew)));

  const records: EvalRecord[] = [];
  const runs = new Map<RunMode, RunMetrics[]>(modes.map((m) => [m, []]));
  const bar = progressBar({ label: "prompts", total: prompts.length });
  const notes = new Set<string>();
  for (const batch of batches(prompts, batchSize)) {
    for (const mode of modes) {
      const convs = batch.map(() => [...system]);
      // A batch of one keeps its KV cache across turns, like the chat: turn 2 feeds only what turn 1's
      // history does not already hold. (Batched sessions are not cached; their rows would diverge.)
      const cache = turns > 1 && batch.length === 1 ? new PromptCache() : undefined;
      try {
        for (let t = 0; t < turns; t++) {
          batch.forEach((p, i) => convs[i].push({ role: "user", content: p.turns[t] }));
          const ids = convs.map((c) => encodeConversation(tok, style, c));
          let budget = maxNew;
          batch.forEach((p, i) => {
            budget = fitContext(
              ids[i].length,
              budget,
              cfg.maxPositionEmbeddings,
              depth,
              `${file}:${p.line} (prompt ${p.id}, turn ${t + 1})`,
              (line) => notes.add(line),
            );
          });
          const result: GenerateResult = await runToEnd(streamFor({ ...s, mode }, ids, budget, cache));
          runs.get(mode)!.push(result.metrics);
          batch.forEach((p, i) => {
            const text = result.text?.[i];
            records.push({
              id: p.id,
              turn: t + 1,
              mode,
              prompt: p.turns[t],
              promptIds: ids[i],
              ids: result.ids[i],
              text,
              finish: result.finish[i],
              metrics: result.metrics.prompts[i],
              cachedPromptTokens: cache?.reused ?? 0,
            });
            convs[i].push({ role: "assistant", content: text ?? "" });
          });
        }
      } finally {
        cache?.dispose();
      }
    }
    bar.tick(batch.length);
  }
  bar.finish();
  for (const n of notes) console.error(n);

  const byKey = new Map<string, EvalRecord>();
  for (const r of records) byKey.set(`${r.mode}\u0000${r.id}\u0000${r.turn}`, r);
  const arOf = (r: EvalRecord) => byKey.get(`autoregressive\u0000${r.id}\u0000${r.turn}`);
  const main = records.filter((r) => r.mode === modes[modes.length - 1]);
  const summaries = modes.map((m) => ({
    name: m,
    summary: summarize(runs.get(m)!),
    speculative: m === "redrafter",
  }));
  let identical: number | null = null;
  let speedup: number | null = null, decodeSpeedup: number | null = null;
  if (values.compare) {
    identical = main.filter((r) => sameIds(r.ids, arOf(r)?.ids)).length;
    const [ar, rd] = summaries.map((x) => x.summary);
    speedup = rd.totalMs > 0 ? ar.totalMs / rd.totalMs : null;
    // the prompts' prefill is the same forward in both: leave it out for the decoding alone
    decodeSpeedup = ar.decodeTokensPerSecond > 0 ? rd.decodeTokensPerSecond / ar.decodeTokensPerSecond : null;
  }
  const exactKind = s.sampling === undefined
    ? "greedy"
    : s.sampling.mode === "apple"
    ? null
    : "exact sampling";

  if (values.output !== undefined) {
    const lines = records.map((r) =>
      JSON.stringify({
        id: r.id,
        turn: r.turn,
        mode: r.mode,
        prompt: r.prompt,
        text: r.text,
        ids: r.ids,
        finish: r.finish,
      })
    );
    await Deno.writeTextFile(values.output as string, lines.join("\n") + "\n");
  }

  if (values.json) {
    for (const r of records) {
      console.log(JSON.stringify({
        id: r.id,
        turn: r.turn,
        mode: r.mode,
        prompt_ids: r.promptIds,
        ids: r.ids,
        text: r.text,
        finish: r.finish,
        cached_prompt_tokens: r.cachedPromptTokens,
        stats: r.metrics,
      }));
    }
    const summary: Record<string, unknown> = {
      summary: Object.fromEntries(summaries.map((x) => [x.name, x.summary])),
      backend: pair.target.backend,
      sampling: s.sampling ?? { mode: "greedy" },
    };
    if (modes.includes("redrafter")) {
      Object.assign(summary, {
        beam_width: s.beamWidth,
        beam_length: s.beamLength,
        tree_nodes: s.draftTree?.nodes ?? 0,
        draft_vocab: pair.draftVocab ?? pair.target.config.vocabSize,
      });
    }
    if (values.compare) Object.assign(summary, { speedup, identical, compared: main.length });
    console.log(JSON.stringify(summary));
    return 0;
  }

  const perPrompt = main.map((r) => {
    const cells = [r.id, r.turn, r.metrics.promptTokens, r.metrics.newTokens];
    if (r.mode === "redrafter") cells.push(fmt(r.metrics.tau, 2));
    cells.push(fmt(r.metrics.tokensPerSecond, 1));
    if (values.compare) {
      const ar = arOf(r);
      cells.push(fmt(ar?.metrics.tokensPerSecond, 1));
      cells.push(
        ar && ar.metrics.elapsedMs > 0 ? `${fmt(ar.metrics.elapsedMs / r.metrics.elapsedMs, 2)}x` : "-",
      );
      cells.push(sameIds(r.ids, ar?.ids) ? "yes" : "no");
    }
    return cells;
  });
  const headers = ["prompt", "turn", "prompt tokens", "new tokens"];
  if (main[0]?.mode === "redrafter") headers.push("tau");
  headers.push("tok/s");
  if (values.compare) headers.push("AR tok/s", "speedup", "same");
  console.log(renderTable(headers, perPrompt, { align: headers.map((_, j) => j === 0 ? "left" : "right") }));
  console.log();
  console.log(summaryTable(summaries));
  if (s.mode === "redrafter" || values.compare) {
    console.log(
      `\nbeam width ${s.beamWidth}, beam length ${s.beamLength} (${s.beamLength - 1} draft${
        s.beamLength === 2 ? "" : "s"
      } per beam)${
        s.draftTree
          ? `, dynamic draft tree of ${s.draftTree.nodes} nodes (${s.draftTree.children} children)`
          : ""
      }${lookupDescription(s)}, ` +
        `${s.tree ? "tree" : "chain"} verification, ${pair.target.backend} backend, ` +
        `${pair.drafterWeights ?? "no"} drafter weights${
          pair.draftVocab ? ` (draft vocabulary ${pair.draftVocab})` : ""
        }${
          pair.drafterBackend && pair.drafterBackend !== pair.target.backend
            ? ` (drafter on ${pair.drafterBackend})`
            : ""
        }, batch size ${batchSize}`,
    );
  }
  if (values.compare) {
    const what = exactKind === null
      ? "n/a (apple sampling is not token-exact)"
      : `${identical}/${main.length}${
        identical === main.length ? "" : " (expected all with " + exactKind + ")"
      }`;
    console.log(
      `speedup (autoregressive time / ReDrafter time): ${fmt(speedup, 2)}x; decoding alone (prefill left ` +
        `out): ${fmt(decodeSpeedup, 2)}x`,
    );
    console.log(`identical outputs: ${what}`);
  }
  return 0;
}

function sameIds(a: number[], b: number[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
