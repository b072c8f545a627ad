/**
 * Chat templates: the Jinja source a checkpoint ships (chat_template.jinja, or tokenizer_config.json's
 * `chat_template`), rendered with @huggingface/jinja the way transformers' apply_chat_template renders it:
 * `messages`, `tools`, `add_generation_prompt`, the named special tokens (bos_token, eos_token, ...) as
 * strings, and `raise_exception` (@huggingface/jinja defines it; its environment refuses redefinition, so a
 * template's exception surfaces as "<origin>: chat template failed: <message>").
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- deno.json is shared; the lead may move this to its imports map
import { Template } from "npm:@huggingface/jinja@0.5.11";

/** One chat turn. Extra fields (tool_calls, name, ...) pass through to the template untouched. */
export interface ChatMessage {
  /** "system", "user", "assistant", "tool", ... as the template expects. */
  role: string;
  /** The turn's text. */
  content: string;
  /** Any other field, passed to the template as is. */
  [field: string]: unknown;
}

/** Options of rendering a chat template (transformers' apply_chat_template arguments). */
export interface ChatTemplateOptions {
  /** Append the header that opens an assistant turn (transformers' add_generation_prompt). Default false. */
  addGenerationPrompt?: boolean;
  /** Tool descriptions as JSON schemas ({type: "function", function: {...}}), passed as `tools`. */
  tools?: Record<string, unknown>[];
  /** More template variables; they override the special tokens, as transformers' kwargs do. */
  extra?: Record<string, unknown>;
}

/** A parsed template and where it came from (for error messages). */
export interface ChatTemplate {
  /** The Jinja source. */
  source: string;
  /** File (and field) the template was read from, e.g. "/m/tokenizer_config.json (chat_template)". */
  origin: string;
  /**
   * The prompt text for a conversation. specialTokens maps names (bos_token, eos_token, ...) to their
   * strings. Throws naming `origin` when the template fails or raises, and on an empty conversation.
   */
  render(messages: ChatMessage[], specialTokens: Record<string, string>, opts?: ChatTemplateOptions): string;
}

/**
 * The template to use from tokenizer_config.json's `chat_template`, which is a string or a list of
 * {name, template}: like transformers, "tool_use" when tools are given and it exists, else "default".
 * Returns null when there is none.
 */
export function pickConfigTemplate(value: unknown, withTools: boolean, file: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = new Map<string, string>();
    for (const entry of value) {
      const e = entry as { name?: unknown; template?: unknown };
      if (typeof e?.name !== "string" || typeof e?.template !== "string") {
        throw new Error(`${file}: chat_template list entries must be {name, template} strings`);
      }
      named.set(e.name, e.template);
    }
    if (withTools && named.has("tool_use")) return named.get("tool_use")!;
    if (named.has("default")) return named.get("default")!;
    throw new Error(
      `${file}: chat_template list has no "default" entry (names: ${[...named.keys()].join(", ")})`,
    );
  }
  throw new Error(`${file}: chat_template must be a string or a list of {name, template}`);
}

/** Parses a template; syntax errors name its origin. */
export function compileChatTemplate(source: string, origin: string): ChatTemplate {
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new Error(`${origin}: chat template does not parse: ${(e as Error).message}`);
  }
  return {
    source,
    origin,
    render(messages, specialTokens, opts = {}) {
      if (messages.length === 0) throw new Error("applyChatTemplate: the conversation is empty");
      for (const [i, m] of messages.entries()) {
        if (typeof m?.role !== "string") {
          throw new Error(`applyChatTemplate: messages[${i}].role is not a string`);
        }
      }
      const vars: Record<string, unknown> = {
        ...specialTokens,
        ...opts.extra,
        messages,
        tools: opts.tools ?? null,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
      };
      try {
        return template.render(vars);
      } catch (e) {
        // Includes the template's own raise_exception(message): the message is kept verbatim.
        throw new Error(`${origin}: chat template failed: ${(e as Error).message}`);
      }
    },
  };
}
