/**
 * Rank a target's tokens by frequency over a corpus and write `draft_vocab.json` (drafter/vocab.ts), the
 * ranking that `--draft-vocab N` cuts the drafter's head to.
 *
 *   deno run -A tools/draft_vocab.ts --tokenizer TARGET_DIR --out DRAFTER_DIR/draft_vocab.json
 *     [--split train] [--default-size N] FILE...
 *
 * FILE: `.jsonl` (each line's "text", else "prompt"; with --split, only lines whose "split" is that) or
 * plain text (paragraphs split at blank lines). Special tokens are not added. Every token id appears in the
 * ranking: counted ones by count (ties to the lower id), then the unseen ones in id order. --default-size
 * records the size the CLIs use when `--draft-vocab` is not given (without it they draft the whole
 * vocabulary).
 *
 * @module
 */
import { toolArgs } from "./tool_args.ts";
import { loadTokenizer } from "../loader/tokenizer.ts";

/** Token ids of a vocabulary of V, most frequent first (ties and unseen ids in id order). */
export function rankByCount(counts: Float64Array): number[] {
  return Array.from(counts.keys()).sort((a, b) => counts[b] - counts[a] || a - b);
}

/** The texts of one corpus file (see the module comment). */
export function* corpusTexts(path: string, split?: string): Generator<string> {
  const text = Deno.readTextFileSync(path);
  if (path.endsWith(".jsonl")) {
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === "") continue;
      let row: { text?: unknown; prompt?: unknown; split?: unknown };
      try {
        row = JSON.parse(lines[i]);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
      if (split !== undefined && row.split !== split) continue;
      const t = row.text ?? row.prompt;
      if (typeof t !== "string") throw new Error(`${path}:${i + 1}: no string "text" or "prompt" field`);
      yield t;
    }
    return;
  }
  for (const para of text.split(/\n\s*\n/)) if (para.trim() !== "") yield para;
}

if (import.meta.main) {
  const { values, positionals } = toolArgs(import.meta.url, {
    args: Deno.args,
    allowPositionals: true,
    options: {
      tokenizer: { type: "string" },
      out: { type: "string" },
      split: { type: "string" },
      "default-size": { type: "string" },
    },
  });
  if (!values.tokenizer || !values.out || positionals.length === 0) {
    console.error("usage: tools/draft_vocab.ts --tokenizer TARGET_DIR --out FILE [--split NAME] FILE...");
    Deno.exit(2);
  }
  const tok = await loadTokenizer(values.tokenizer);
  const defaultSize = values["default-size"] === undefined ? null : Number(values["default-size"]);
  if (
    defaultSize !== null &&
    !(Number.isInteger(defaultSize) && defaultSize >= 50 && defaultSize <= tok.vocabSize)
  ) {
    throw new Error(
      `--default-size must be an integer in 50..${tok.vocabSize}, got ${values["default-size"]}`,
    );
  }
  const counts = new Float64Array(tok.vocabSize);
  let texts = 0;
  const t0 = performance.now();
  for (const path of positionals) {
    for (const text of corpusTexts(path, values.split)) {
      for (const id of tok.encode(text, { addSpecialTokens: false })) counts[id]++;
      if (++texts % 500 === 0) {
        const sum = counts.reduce((a, b) => a + b, 0);
        console.error(
          `${path}: ${texts} texts, ${sum} tokens, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
        );
      }
    }
  }
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) throw new Error(`no tokens counted in ${positionals.join(", ")}`);
  const ranked = rankByCount(counts);
  const seen = counts.reduce((n, c) => n + (c > 0 ? 1 : 0), 0);
  const out = {
    ...(defaultSize === null ? {} : { default_size: defaultSize }),
    ranked_ids: ranked,
    tokens_counted: total,
    distinct_tokens_seen: seen,
    sources: positionals.map((p) => p.split("/").pop()),
    split: values.split ?? null,
  };
  Deno.writeTextFileSync(values.out, JSON.stringify(out) + "\n");
  const cover = (n: number) => ranked.slice(0, n).reduce((s, id) => s + counts[id], 0) / total;
  const at = [512, 1024, 2048, 4096].filter((n) => n < tok.vocabSize);
  console.log(
    `wrote ${values.out}: ${texts} texts, ${total} tokens, ${seen} of ${tok.vocabSize} ids seen; ` +
      `the top ${at.join(" / ")} cover ${at.map((n) => (100 * cover(n)).toFixed(1) + "%").join(" / ")}`,
  );
}
