/**
 * Writes committed tokens as text while they arrive: one stream decoder per answer, tokens pushed one at a
 * time so each piece of text can take the colour of the token that completed it (drafted-and-accepted
 * tokens in cyan when colour is on). Without a tokenizer the ids themselves are written.
 *
 * @module
 */
import type { TokenEvent } from "../core/options.ts";
import type { Tokenizer } from "../loader/tokenizer.ts";
import { createStreamDecoder } from "../loader/stream_decoder.ts";
import type { Colors } from "./term.ts";

export interface TextWriter {
  onEvent(ev: TokenEvent): void;
  /** Writes what the decoder still holds (make a new writer for the next answer). */
  finish(): void;
  /** Everything written so far for this answer, without colour. */
  readonly text: string;
}

const encoder = new TextEncoder();

/** Writes to stdout synchronously (so text appears before a long forward pass starts). */
export function stdoutWrite(s: string): void {
  const bytes = encoder.encode(s);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}

export function textWriter(
  tokenizer: Tokenizer | null,
  c: Colors,
  write: (s: string) => void = stdoutWrite,
): TextWriter {
  const decoder = tokenizer ? createStreamDecoder(tokenizer, { skipSpecialTokens: true }) : null;
  let text = "";
  let first = true;
  const emit = (s: string, drafted: boolean) => {
    if (s === "") return;
    text += s;
    write(drafted ? c.cyan(s) : s);
  };
  return {
    onEvent(ev) {
      for (let i = 0; i < ev.tokens.length; i++) {
        if (decoder) emit(decoder.push([ev.tokens[i]]), ev.drafted[i]);
        else {
          emit(`${first ? "" : " "}${ev.tokens[i]}`, ev.drafted[i]);
          first = false;
        }
      }
    },
    finish() {
      if (decoder) emit(decoder.flush(), false);
    },
    get text() {
      return text;
    },
  };
}
