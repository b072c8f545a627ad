/**
 * Prompt sets for generate/bench, in one of three formats, detected from the first non-blank line:
 *
 * - "mt-bench": MT-bench question.jsonl, one `{"question_id", "category", "turns": [...]}` per line. We take
 *   the first turn, or both turns with `turns: 2` (a two-turn conversation, replayed by the caller).
 * - "jsonl": one `{"prompt": "..."}` per line (an optional "id" is kept).
 * - "text": any other file, one prompt per line; blank lines are skipped.
 *
 * A malformed line is an error naming the file and the line number.
 *
 * Intended use:
 *
 * ```ts
 * import { batches, readPrompts } from "./prompts.ts";
 * const { prompts } = await readPrompts(values.prompts, { maxNumPrompts: 80 });
 * for (const batch of batches(prompts, batchSize)) { ... batch[i].turns[0] ... }
 * ```
 *
 * @module
 */

export type PromptFormat = "mt-bench" | "jsonl" | "text";

export interface Prompt {
  /** question_id for MT-bench, "id" when a JSONL line has one, else the 1-based line number. */
  id: string;
  /** User turns in order: one, or two for MT-bench with turns = 2. */
  turns: string[];
  /** MT-bench category (writing, roleplay, ...), when present. */
  category?: string;
  /** 1-based line of the file it came from. */
  line: number;
}

export interface PromptSet {
  format: PromptFormat;
  prompts: Prompt[];
}

export interface PromptOptions {
  /** 1 (default) or 2; 2 needs the MT-bench format. */
  turns?: 1 | 2;
  /** Keep only the first N prompts (all when absent; values below 1 are refused). */
  maxNumPrompts?: number;
  /** Skip detection. */
  format?: PromptFormat;
}

/** Reads and parses a prompt file. */
export async function readPrompts(path: string, opts: PromptOptions = {}): Promise<PromptSet> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${path}: prompt file not found`);
    throw new Error(`${path}: cannot read prompt file: ${(e as Error).message}`);
  }
  return parsePrompts(text, path, opts);
}

/** Which format a file's text is in, from its first non-blank line. */
export function detectFormat(text: string): PromptFormat {
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (!line.startsWith("{")) return "text";
    try {
      const obj = JSON.parse(line);
      if (obj && typeof obj === "object" && "turns" in obj) return "mt-bench";
    } catch { /* reported by the JSONL parser with its line number */ }
    return "jsonl";
  }
  return "text";
}

/** Parses prompt-file text; `file` is only for error messages. */
export function parsePrompts(text: string, file: string, opts: PromptOptions = {}): PromptSet {
  const turns = opts.turns ?? 1;
  if (turns !== 1 && turns !== 2) throw new Error(`turns must be 1 or 2, got ${turns}`);
  const max = opts.maxNumPrompts;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new Error(`maxNumPrompts must be a positive integer, got ${max}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // UTF-8 BOM from some editors
  const format = opts.format ?? detectFormat(text);
  if (turns === 2 && format !== "mt-bench") {
    throw new Error(
      `${file}: two turns need an MT-bench question.jsonl ("turns" arrays); this file is ${format}`,
    );
  }

  const prompts: Prompt[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (max !== undefined && prompts.length >= max) break;
    const line = lines[i].replace(/\r$/, "");
    if (line.trim() === "") continue;
    const where = `${file}:${i + 1}`;
    if (format === "text") {
      prompts.push({ id: String(i + 1), turns: [line], line: i + 1 });
      continue;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new Error(
        `${where}: expected a JSON object, got ${Array.isArray(obj) ? "an array" : JSON.stringify(obj)}`,
      );
    }
    const rec = obj as Record<string, unknown>;
    prompts.push(
      format === "mt-bench" ? mtBenchPrompt(rec, where, i + 1, turns) : jsonlPrompt(rec, where, i + 1),
    );
  }
  if (prompts.length === 0) throw new Error(`${file}: no prompts (the file is empty or only blank lines)`);
  return { format, prompts };
}

function mtBenchPrompt(rec: Record<string, unknown>, where: string, line: number, turns: number): Prompt {
  const t = rec.turns;
  if (!Array.isArray(t) || t.length === 0 || !t.every((s) => typeof s === "string")) {
    throw new Error(`${where}: "turns" must be a non-empty array of strings (MT-bench question.jsonl)`);
  }
  if (t.length < turns) throw new Error(`${where}: has ${t.length} turn(s), ${turns} were asked for`);
  const id = rec.question_id ?? rec.id ?? line;
  const prompt: Prompt = { id: String(id), turns: (t as string[]).slice(0, turns), line };
  if (typeof rec.category === "string") prompt.category = rec.category;
  return prompt;
}

function jsonlPrompt(rec: Record<string, unknown>, where: string, line: number): Prompt {
  if (typeof rec.prompt !== "string") {
    const keys = Object.keys(rec).join(", ") || "none";
    throw new Error(`${where}: expected {"prompt": "..."} or MT-bench {"turns": [...]}; keys here: ${keys}`);
  }
  return { id: rec.id === undefined ? String(line) : String(rec.id), turns: [rec.prompt], line };
}

/** Splits items into consecutive batches of `size`; the last one may be shorter and is kept. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`batch size must be a positive integer, got ${size}`);
  }
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
