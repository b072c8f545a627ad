/**
 * The interactive chat of `deno task generate`: read a line, append it to the conversation, render the
 * whole history with the chat template (or as a running text for models without one), stream the answer,
 * print a stats line. The KV cache is kept across turns (core/prompt_cache.ts), so a turn only feeds the
 * tokens the rendered history does not share with what the cache holds. Ctrl-C stops the answer being generated (the partial answer stays in the history);
 * at the prompt, a second Ctrl-C leaves. `exit`, `quit` and end of input leave cleanly.
 *
 * @module
 */
import type { ChatMessage } from "../loader/chat_template.ts";
import type { TokenEvent } from "../core/options.ts";
import { PromptCache } from "../core/prompt_cache.ts";
import { type FlagValues, UsageError } from "./args.ts";
import { encodeConversation, fitContext, type Pair, promptStyle } from "./setup.ts";
import { type RunSettings, runUntil, statsLine, streamFor } from "./run.ts";
import { stdoutWrite, textWriter } from "./stream_text.ts";
import { type Colors, colors } from "./term.ts";

/** Lines of a byte stream (UTF-8), without their line ends; the last line even without one. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
    }
  }
  if (buf !== "") yield buf;
}

export async function runChat(
  pair: Pair,
  s: RunSettings,
  values: FlagValues,
  maxNew: number,
  c: Colors,
): Promise<number> {
  const tok = pair.tokenizer;
  if (!tok) {
    throw new UsageError(
      "interactive mode needs a tokenizer; this model has no tokenizer.json (use --prompt-ids)",
    );
  }
  const style = promptStyle(tok, { chat: values.chat as boolean, raw: values.raw as boolean });
  const errColors = colors({ noColor: values["no-color"] as boolean });
  const interactive = Deno.stdin.isTerminal();
  const note = (line: string) => console.error(errColors.dim(line));
  const base: ChatMessage[] = style === "chat" && typeof values.system === "string"
    ? [{ role: "system", content: values.system }]
    : [];
  let history: ChatMessage[] = [];
  const cfg = pair.target.config;
  const depth = s.mode === "redrafter" ? Math.max(s.beamLength, 1 + (s.lookup ?? 0)) : 0;
  // The conversation's KV cache, kept across turns: each turn feeds only what the history does not share.
  const cache = new PromptCache();

  if (interactive) {
    const how = s.mode === "redrafter"
      ? `ReDrafter W=${s.beamWidth} L=${s.beamLength}${s.draftTree ? ` tree ${s.draftTree.nodes}` : ""}`
      : "autoregressive";
    note(
      `${how} on ${pair.target.backend}, ${
        style === "chat" ? "chat template" : "raw text (no chat template)"
      }. ` +
        `Type 'exit', 'quit' or Ctrl-D to leave; Ctrl-C stops an answer.`,
    );
  }

  // SIGINT: stop the answer in progress; at the prompt, a hint first, then leave.
  let generating = false;
  let stopRequested = false;
  let lastPromptInterrupt = -Infinity;
  const onSigint = () => {
    if (generating) {
      stopRequested = true;
      return;
    }
    const now = performance.now();
    if (now - lastPromptInterrupt < 3000) {
      stdoutWrite("\n");
      Deno.exit(0);
    }
    lastPromptInterrupt = now;
    stdoutWrite("\n");
    note("(Ctrl-C again, 'exit' or Ctrl-D to leave)");
    if (interactive) stdoutWrite(c.bold("> "));
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    if (interactive) stdoutWrite(c.bold("> "));
    for await (const raw of readLines(Deno.stdin.readable)) {
      const line = raw.trim();
      if (line === "exit" || line === "quit") break;
      if (line === "") {
        if (interactive) stdoutWrite(c.bold("> "));
        continue;
      }
      history.push({ role: "user", content: style === "raw" && history.length > 0 ? "\n" + line : line });
      // Drop the oldest exchanges while the conversation does not fit the context.
      let ids = encodeConversation(tok, style, [...base, ...history]);
      while (ids.length + depth + 1 > cfg.maxPositionEmbeddings && history.length > 2) {
        history = history.slice(2);
        ids = encodeConversation(tok, style, [...base, ...history]);
        note("note: the conversation outgrew the context; dropped the oldest exchange");
      }
      let budget: number;
      try {
        budget = fitContext(ids.length, maxNew, cfg.maxPositionEmbeddings, depth, "the message", () => {});
      } catch (e) {
        console.error(`error: ${(e as Error).message}`);
        history.pop();
        if (interactive) stdoutWrite(c.bold("> "));
        continue;
      }
      const writer = textWriter(tok, c);
      const answer: number[] = [];
      const onEvent = (ev: TokenEvent) => {
        answer.push(...ev.tokens);
        writer.onEvent(ev);
      };
      generating = true;
      stopRequested = false;
      const t0 = performance.now();
      const result = await runUntil(streamFor(s, [ids], budget, cache), onEvent, () => stopRequested);
      generating = false;
      writer.finish();
      stdoutWrite("\n");
      const text = result?.text ? result.text[0] : tok.decode(answer, { skipSpecialTokens: true });
      history.push({ role: "assistant", content: text });
      const reuse = cache.reused > 0 ? `; ${cache.reused} of ${ids.length} prompt tokens from the cache` : "";
      if (result) note(statsLine(result.metrics, s.mode, s) + reuse);
      else {
        const secs = (performance.now() - t0) / 1000;
        note(`stopped: ${answer.length} tokens, ${(answer.length / Math.max(secs, 1e-9)).toFixed(1)} tok/s`);
      }
      if (interactive) stdoutWrite(c.bold("> "));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    cache.dispose();
  }
  if (interactive) stdoutWrite("\n");
  return 0;
}
