/**
 * Streaming detokenization: turn token ids arriving a few at a time into text chunks whose concatenation is
 * the full decode. Pure (no I/O); it needs only a `decode`.
 *
 * Decoding tokens one by one and concatenating goes wrong two ways:
 *  - byte-level BPE (Llama-3, GPT-2) and byte_fallback SentencePiece split one character's UTF-8 bytes
 *    across tokens, so a lone token decodes to U+FFFD;
 *  - SentencePiece decoders strip the leading space of the first token decoded ("▁world" alone -> "world").
 * So, like vLLM's incremental detokenizer and HF's TextStreamer, we decode a window that starts a few tokens
 * back (`prefixStart`), subtract the text of the already-emitted part of that window (tokens before
 * `readStart`), and emit the difference only when it does not end in U+FFFD (an unfinished character).
 * Windows start at token boundaries where earlier text was complete, so they stay short.
 *
 * @module
 */

/** The part of a tokenizer the stream decoder uses (loader/tokenizer.ts's Tokenizer has it). */
export interface Detokenizer {
  /** Token ids to text, as Tokenizer.decode. */
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
}

/** Options of createStreamDecoder. */
export interface StreamDecoderOptions {
  /** Passed to decode. Default false. */
  skipSpecialTokens?: boolean;
}

/** Incremental detokenizer state for one stream of tokens (one batch row); see createStreamDecoder. */
export interface StreamDecoder {
  /** Adds tokens; returns the text that became final since the last call (possibly ""). */
  push(ids: ArrayLike<number>): string;
  /** Returns whatever is still held back (an unfinished character decodes to U+FFFD here) and resets. */
  flush(): string;
  /** Every id pushed since creation or the last flush. */
  readonly tokens: readonly number[];
}

const REPLACEMENT = "\uFFFD";

/**
 * A decoder whose pushed chunks concatenate to tokenizer.decode(all ids): text is held back while it ends in
 * an unfinished UTF-8 character, and leading spaces survive SentencePiece decoders.
 */
export function createStreamDecoder(tokenizer: Detokenizer, opts: StreamDecoderOptions = {}): StreamDecoder {
  const decodeOpts = { skipSpecialTokens: opts.skipSpecialTokens ?? false };
  let tokens: number[] = [];
  // tokens[prefixStart, readStart) were emitted already and serve as context; tokens[readStart, ...) not yet.
  let prefixStart = 0;
  let readStart = 0;

  // Emits the text of tokens[readStart, end) if it is complete.
  const advance = (final: boolean): string => {
    if (readStart === tokens.length) return "";
    const prefixText = tokenizer.decode(tokens.slice(prefixStart, readStart), decodeOpts);
    const fullText = tokenizer.decode(tokens.slice(prefixStart), decodeOpts);
    if (!final && (fullText.length <= prefixText.length || fullText.endsWith(REPLACEMENT))) return "";
    // The decoders we support are prefix-stable: the prefix's decode is a prefix of the window's decode.
    prefixStart = readStart;
    readStart = tokens.length;
    return fullText.slice(prefixText.length);
  };

  return {
    push(ids) {
      for (let i = 0; i < ids.length; i++) tokens.push(ids[i]);
      return advance(false);
    },
    flush() {
      const rest = advance(true);
      tokens = [];
      prefixStart = 0;
      readStart = 0;
      return rest;
    },
    get tokens() {
      return tokens;
    },
  };
}
