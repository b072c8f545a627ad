/**
 * Hugging Face tokenizers from a checkpoint directory: tokenizer.json (required), tokenizer_config.json
 * (special tokens, chat template) and chat_template.jinja (wins over tokenizer_config's template), run by
 * @huggingface/tokenizers. Decoding never applies clean_up_tokenization_spaces: transformers 5 ignores it for
 * BPE tokenizers, and it would make decoded text differ from what the model produced.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- deno.json is shared; the lead may move this to its imports map
import { Tokenizer as HfTokenizer } from "npm:@huggingface/tokenizers@0.2.0";
import { pathIn } from "./paths.ts";
import {
  type ChatMessage,
  type ChatTemplate,
  type ChatTemplateOptions,
  compileChatTemplate,
  pickConfigTemplate,
} from "./chat_template.ts";

/** Options of Tokenizer.encode. */
export interface EncodeOptions {
  /** Let the post-processor add BOS/EOS etc. (transformers' add_special_tokens). Default true. */
  addSpecialTokens?: boolean;
}

/** Options of Tokenizer.decode. */
export interface DecodeOptions {
  /** Drop special tokens (added tokens marked special) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

/** A special token and its id. */
export interface SpecialToken {
  /** The token's text, e.g. "<|begin_of_text|>". */
  content: string;
  /** Its id in the vocabulary. */
  id: number;
}

/** A loaded Hugging Face tokenizer with its special tokens and chat template (see loadTokenizer). */
export interface Tokenizer {
  /** Directory the files were read from. */
  readonly dir: string;
  /** Largest token id + 1, added tokens included (transformers' len(tokenizer)). */
  readonly vocabSize: number;
  /** tokenizer_config.json's `bos_token`, or null when unset. */
  readonly bosToken: SpecialToken | null;
  /** tokenizer_config.json's `eos_token`, or null when unset. */
  readonly eosToken: SpecialToken | null;
  /** tokenizer_config.json's `pad_token`, or null when unset. */
  readonly padToken: SpecialToken | null;
  /** tokenizer_config.json's `unk_token`, or null when unset. */
  readonly unkToken: SpecialToken | null;
  /** Every added token marked special (what skipSpecialTokens drops), ascending by id. */
  readonly specialTokens: SpecialToken[];
  /** The chat template in use, or null when the checkpoint has none. Parsed lazily: reading it throws (naming
   * the file) when the template does not parse. */
  readonly chatTemplate: ChatTemplate | null;
  /** Text to token ids; adds special tokens (e.g. BOS) unless opts.addSpecialTokens is false. */
  encode(text: string, opts?: EncodeOptions): number[];
  /** Throws a RangeError for ids outside [0, vocabSize). */
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** The vocabulary string of one id (e.g. "ĠHello", "▁Hello", "<0x0A>"), or undefined. */
  idToToken(id: number): string | undefined;
  /** The id of a vocabulary string (inverse of idToToken), or undefined. */
  tokenToId(token: string): number | undefined;
  /** The rendered prompt text, as transformers' apply_chat_template(tokenize=False). */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string;
  /** The rendered prompt encoded without adding special tokens (the template writes them), as transformers. */
  encodeChat(messages: ChatMessage[], opts?: ChatTemplateOptions): number[];
}

/** Thrown by loadTokenizer when the directory has no tokenizer.json (run such checkpoints with token ids). */
export class TokenizerNotFoundError extends Error {
  /** An error naming dir/tokenizer.json. */
  constructor(
    /** The checkpoint directory that lacks tokenizer.json. */
    readonly dir: string,
  ) {
    super(`${pathIn(dir, "tokenizer.json")}: not found (this checkpoint has no tokenizer; pass token ids)`);
    this.name = "TokenizerNotFoundError";
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
}

function parseJsonObject(text: string, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: malformed JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${path}: expected a JSON object at the top level`);
  }
  return value as Record<string, unknown>;
}

/** tokenizer_config.json names special tokens as strings or as {content, ...} AddedToken objects. */
function tokenContent(value: unknown, field: string, file: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  throw new Error(`${file}: ${field} must be a string or an object with a "content" string`);
}

const SUPPORTED_MODELS = ["BPE", "Unigram", "WordPiece"];
const NAMED_SPECIALS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
];

/** The texts of a checkpoint's tokenizer files (null where a file is absent), and the folder they came from. */
export interface TokenizerTexts {
  /** A directory or URL, for messages: files are named `dir/tokenizer.json` and so on. */
  dir: string;
  /** tokenizer.json. */
  tokenizer: string;
  /** tokenizer_config.json. */
  config: string | null;
  /** chat_template.jinja. */
  chatTemplate: string | null;
}

/** Reads a tokenizer from a checkpoint directory. Throws TokenizerNotFoundError when tokenizer.json is absent. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizer = await readText(pathIn(dir, "tokenizer.json"));
  if (tokenizer === null) throw new TokenizerNotFoundError(dir);
  const config = await readText(pathIn(dir, "tokenizer_config.json"));
  const chatTemplate = await readText(pathIn(dir, "chat_template.jinja"));
  return tokenizerFromTexts({ dir, tokenizer, config, chatTemplate });
}

/** A tokenizer from the texts of its files (fetched, bundled, or read by loadTokenizer). */
export function tokenizerFromTexts(texts: TokenizerTexts): Tokenizer {
  const dir = texts.dir;
  const tokenizerPath = pathIn(dir, "tokenizer.json");
  const configPath = pathIn(dir, "tokenizer_config.json");
  const jinjaPath = pathIn(dir, "chat_template.jinja");
  const tokenizerText = texts.tokenizer;
  const tokenizerJson = parseJsonObject(tokenizerText, tokenizerPath);
  const model = tokenizerJson.model as Record<string, unknown> | undefined;
  if (typeof model !== "object" || model === null || typeof model.vocab !== "object") {
    throw new Error(`${tokenizerPath}: missing "model" with a "vocab" (not a Hugging Face tokenizer.json?)`);
  }
  // The library guesses a model from the vocab's shape when the type is unknown; refuse instead.
  if (model.type !== undefined && !SUPPORTED_MODELS.includes(model.type as string)) {
    throw new Error(
      `${tokenizerPath}: unsupported or malformed tokenizer: model type ${JSON.stringify(model.type)} ` +
        `(supported: ${SUPPORTED_MODELS.join(", ")})`,
    );
  }
  const configText = texts.config;
  // transformers tolerates a missing tokenizer_config.json; so do we (no special-token names, no template).
  const config = configText === null ? {} : parseJsonObject(configText, configPath);

  let hf: HfTokenizer;
  try {
    // Clean-up is forced off here and in decode (see the module comment).
    hf = new HfTokenizer(tokenizerJson, { ...config, clean_up_tokenization_spaces: false });
  } catch (e) {
    throw new Error(`${tokenizerPath}: unsupported or malformed tokenizer: ${(e as Error).message}`);
  }

  let vocabSize = 0;
  for (const id of hf.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);

  const specialTokens: SpecialToken[] = [];
  for (const [id, added] of hf.get_added_tokens_decoder()) {
    if (added.special) specialTokens.push({ content: added.content, id });
  }
  specialTokens.sort((a, b) => a.id - b.id);

  // Named special tokens as strings, for the template, and resolved to ids.
  const namedStrings: Record<string, string> = {};
  const named: Record<string, SpecialToken | null> = {};
  for (const field of NAMED_SPECIALS) {
    const content = tokenContent(config[field], field, configPath);
    named[field] = null;
    if (content === null) continue;
    const id = hf.token_to_id(content);
    if (id === undefined) {
      throw new Error(
        `${configPath}: ${field} ${JSON.stringify(content)} is not in the vocabulary of ${tokenizerPath}`,
      );
    }
    namedStrings[field] = content;
    named[field] = { content, id };
  }

  const jinjaText = texts.chatTemplate;
  const templates = new Map<boolean, ChatTemplate | null>();
  const templateFor = (withTools: boolean): ChatTemplate | null => {
    if (!templates.has(withTools)) {
      let t: ChatTemplate | null = null;
      if (jinjaText !== null) t = compileChatTemplate(jinjaText, jinjaPath);
      else {
        const src = pickConfigTemplate(config.chat_template, withTools, configPath);
        if (src !== null) t = compileChatTemplate(src, `${configPath} (chat_template)`);
      }
      templates.set(withTools, t);
    }
    return templates.get(withTools)!;
  };

  const checkIds = (ids: ArrayLike<number>): number[] => {
    const out = new Array<number>(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(
          `decode: token id ${id} at position ${i} is outside [0, ${vocabSize}) of ${tokenizerPath}`,
        );
      }
      out[i] = id;
    }
    return out;
  };

  const applyChatTemplate = (messages: ChatMessage[], opts: ChatTemplateOptions = {}): string => {
    const t = templateFor((opts.tools?.length ?? 0) > 0);
    if (t === null) {
      throw new Error(`${dir}: no chat template (neither ${jinjaPath} nor chat_template in ${configPath})`);
    }
    return t.render(messages, namedStrings, opts);
  };

  return {
    dir,
    vocabSize,
    bosToken: named.bos_token,
    eosToken: named.eos_token,
    padToken: named.pad_token,
    unkToken: named.unk_token,
    specialTokens,
    // Parsed on first use, so a template our Jinja cannot parse blocks chat formatting only, not encoding.
    get chatTemplate() {
      return templateFor(false);
    },
    encode: (text, opts = {}) => hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids,
    decode: (ids, opts = {}) =>
      ids.length === 0 ? "" : hf.decode(checkIds(ids), {
        skip_special_tokens: opts.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      }),
    idToToken: (id) => hf.id_to_token(id),
    tokenToId: (token) => hf.token_to_id(token),
    applyChatTemplate,
    encodeChat: (messages, opts) =>
      hf.encode(applyChatTemplate(messages, opts), { add_special_tokens: false }).ids,
  };
}
