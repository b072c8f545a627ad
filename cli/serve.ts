/**
 * `deno task serve`: an OpenAI-compatible HTTP server over a ReDrafter pair (/v1/completions,
 * /v1/chat/completions, streaming as server-sent events, /v1/models, /health). Requests run in arrival
 * order, one at a time or (--max-batch) greedy ones together as ragged batches; each response carries its
 * run's ReDrafter metrics next to the usual fields.
 *
 * @module
 */
import type { ChatMessage } from "../loader/chat_template.ts";
import type { FinishReason, GenerateResult, SamplingOptions } from "../core/options.ts";
import { resolveSampling } from "../core/options.ts";
import { createStreamDecoder } from "../loader/stream_decoder.ts";
import { intFlag, parseFlags, runMain, UsageError } from "./args.ts";
import { encodeConversation, fitContext, loadPair, type Pair, promptStyle } from "./setup.ts";
import { lookupDescription, type RunMode, type RunSettings, streamFor } from "./run.ts";
import { FLAGS as GENERATE_FLAGS, pairOptionsFromFlags, settingsFrom } from "./generate.ts";

export const USAGE = `usage: deno task serve [flags]

An OpenAI-compatible HTTP server with ReDrafter speculative decoding:
  POST /v1/completions        {"prompt": "text" or [token ids], "max_tokens", "temperature", "top_p",
                              "top_k", "seed", "stop", "stream", "stream_options", "speculative"}
  POST /v1/chat/completions   {"messages": [{"role", "content"}], ...the same options}
  GET  /v1/models, GET /health
Requests without "temperature" (or with 0) decode greedily; above 0 they sample exactly (the same text as
autoregressive sampling with that seed). "speculative": false decodes that request autoregressively (true:
with the drafter, which the server must have). A stream sends one event per decoded piece of a round (a
round may accept several tokens); "stream_options": {"token_by_token": true} sends one per token instead, for
clients that expect it. Each response adds "redrafter": {mode, tau, tokens_per_second, ...}.

Server:
  --port N                 port (default 8080; 0 picks a free one)
  --hostname H             address to listen on (default 127.0.0.1)
  --max-new-tokens N       max_tokens when a request gives none (default 256)
  --max-batch N            greedy requests (with the same stop strings) that queue up while the model is
                           busy run together as one ragged batch of up to N rows (default 1: one request
                           at a time). Sampled requests always run alone
  --speculative-max-batch N
                           batches of more than N rows decode autoregressively, with the same text (default:
                           2 on cpu, onnx-node and onnx-wasm, where bigger batches ran ReDrafter slower than
                           autoregression; no limit on GPUs)
  --stream-tokens          stream one event per token by default (a request's "stream_options":
                           {"token_by_token": false} turns it off again)

Model and drafting: the flags of \`deno task generate\` (--model, --drafter, --backend, --threads,
--onnx-weights, --drafter-*, --draft-vocab, --beam-width, --beam-length, --tree-nodes, --tree-children, --no-tree, --lookup,
--lookup-mode, --lookup-length, --adaptive,
--autoregressive, --chat / --raw, --system) set the server's pair and defaults.`;

export const FLAGS = {
  ...GENERATE_FLAGS,
  port: { type: "string" },
  hostname: { type: "string" },
  "max-batch": { type: "string" },
  "stream-tokens": { type: "boolean" },
  "speculative-max-batch": { type: "string" },
} as const;

/** How long a generation may hold the event loop before the server lets it serve other requests. */
const YIELD_MS = 5;

/** A request error: HTTP 400 with the message, which names the field at fault. */
class BadRequest extends Error {}

interface Request {
  chat: boolean;
  ids: number[];
  maxTokens: number;
  sampling: SamplingOptions | undefined;
  stop: string[];
  stream: boolean;
  /** Stream one event per token (stream_options.token_by_token, else ServeOptions.tokenByToken). */
  tokenByToken: boolean;
  /** "speculative": false runs this request autoregressively; undefined: the server's mode. */
  speculative: boolean | undefined;
}

export interface ServeOptions {
  port?: number;
  hostname?: string;
  /** max_tokens when a request gives none. */
  defaultMaxTokens?: number;
  /** A system message put before chat requests that have none. */
  system?: string;
  /** Chat requests: the model's chat template ("chat") or the contents joined ("raw"). */
  chatStyle: "chat" | "raw";
  /** The model id /v1/models reports. */
  modelId: string;
  /**
   * Greedy requests with the same stop strings that queue up while a batch runs share the next one, up to
   * this many rows (ragged rows, core's batched generation). Default 1: one request at a time.
   */
  maxBatch?: number;
  /**
   * Streams send one event per token instead of one per round's decoded text (a request's
   * "stream_options": {"token_by_token"} overrides). Default false.
   */
  tokenByToken?: boolean;
  /**
   * Batches of more rows than this decode autoregressively (the text is the same: batches are greedy).
   * Default: defaultSpeculativeMaxBatch(the target's backend).
   */
  speculativeMaxBatch?: number;
}

/**
 * The largest batch a server runs with ReDrafter by default: 2 on the CPU backends, where a greedy batch of 4
 * ran ReDrafter slower than autoregression on the default pair (cpu: 0.97x at 2 rows, 0.83x at 4; onnx-node:
 * 1.18x at 2, 0.96x at 4, 0.92x at 8; docs/measurements.md, session 19), as vLLM's
 * speculative_disable_by_batch_size does on GPUs. No limit on the GPU backends, where verifying more tokens
 * costs little (not measured there with batches).
 */
export function defaultSpeculativeMaxBatch(backend: string): number {
  return backend === "onnx-webgpu" || backend === "onnx-cuda" ? Infinity : 2;
}

function field(body: Record<string, unknown>, name: string, kind: "number" | "string" | "boolean") {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  const ok = kind === "number"
    ? typeof v === "number"
    : kind === "string"
    ? typeof v === "string"
    : typeof v === "boolean";
  if (!ok) throw new BadRequest(`'${name}' must be a ${kind}; got ${JSON.stringify(v)}`);
  return v;
}

/** A completion or chat request, checked; ids are the prompt's tokens. */
function parseRequest(body: unknown, chat: boolean, pair: Pair, opts: ServeOptions): Request {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequest("the request body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  const tok = pair.tokenizer;
  const vocab = pair.target.config.vocabSize;
  let ids: number[];
  if (chat) {
    const msgs = b.messages;
    if (!Array.isArray(msgs) || msgs.length === 0) {
      throw new BadRequest("'messages' is required: a non-empty array of {role, content}");
    }
    const messages: ChatMessage[] = msgs.map((m, i) => {
      const r = m as { role?: unknown; content?: unknown };
      if (typeof r?.role !== "string" || typeof r?.content !== "string") {
        throw new BadRequest(`'messages[${i}]' must have a string 'role' and a string 'content'`);
      }
      return { role: r.role, content: r.content };
    });
    if (!tok) throw new BadRequest("this model has no tokenizer: use /v1/completions with token ids");
    if (opts.system !== undefined && messages[0].role !== "system") {
      messages.unshift({ role: "system", content: opts.system });
    }
    ids = encodeConversation(tok, opts.chatStyle, messages);
  } else if (typeof b.prompt === "string") {
    if (!tok) throw new BadRequest("this model has no tokenizer: send 'prompt' as an array of token ids");
    ids = tok.encode(b.prompt);
  } else if (Array.isArray(b.prompt) && b.prompt.length > 0 && b.prompt.every((t) => Number.isInteger(t))) {
    ids = b.prompt as number[];
    const bad = ids.find((t) => t < 0 || t >= vocab);
    if (bad !== undefined) {
      throw new BadRequest(`'prompt': token id ${bad} is outside the vocabulary [0, ${vocab})`);
    }
  } else {
    throw new BadRequest("'prompt' is required: a string, or a non-empty array of token ids");
  }
  const maxTokens = (field(b, "max_tokens", "number") as number | undefined) ?? opts.defaultMaxTokens ?? 256;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new BadRequest(`'max_tokens' must be an integer >= 1; got ${maxTokens}`);
  }
  const temperature = field(b, "temperature", "number") as number | undefined;
  let sampling: SamplingOptions | undefined;
  if (temperature !== undefined && temperature !== 0) {
    sampling = {
      mode: "exact",
      temperature,
      topP: field(b, "top_p", "number") as number | undefined,
      topK: field(b, "top_k", "number") as number | undefined,
      seed: (field(b, "seed", "number") as number | undefined) ?? 0,
    };
    try {
      resolveSampling(sampling);
    } catch (e) {
      throw new BadRequest(
        (e as Error).message.replace(/sampling\.topK/g, "top_k").replace(/sampling\.topP/g, "top_p")
          .replace(/sampling\.(\w+)/g, "'$1'"),
      );
    }
  }
  const stopRaw = b.stop;
  const stop = stopRaw === undefined || stopRaw === null
    ? []
    : typeof stopRaw === "string"
    ? [stopRaw]
    : Array.isArray(stopRaw) && stopRaw.every((s) => typeof s === "string" && s !== "")
    ? stopRaw as string[]
    : null;
  if (stop === null || stop.includes("")) {
    throw new BadRequest("'stop' must be a non-empty string or an array of them");
  }
  if (stop.length > 0 && !tok) throw new BadRequest("'stop' needs a tokenizer; this model has none");
  const stream = (field(b, "stream", "boolean") as boolean | undefined) ?? false;
  const tokenByToken = streamOptions(b.stream_options, stream) ?? opts.tokenByToken ?? false;
  const speculative = field(b, "speculative", "boolean") as boolean | undefined;
  if (speculative === true && !pair.drafter) {
    throw new BadRequest("'speculative': true needs a drafter; this server decodes autoregressively");
  }
  return { chat, ids, maxTokens, sampling, stop, stream, tokenByToken, speculative };
}

/**
 * "stream_options" ({"include_usage", "token_by_token"}, booleans; only with "stream": true): its
 * token_by_token, or undefined. Usage always comes in the last chunk, so include_usage changes nothing.
 */
function streamOptions(v: unknown, stream: boolean): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new BadRequest(`'stream_options' must be an object; got ${JSON.stringify(v)}`);
  }
  if (!stream) throw new BadRequest("'stream_options' needs 'stream': true");
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "include_usage" && k !== "token_by_token") {
      throw new BadRequest(`'stream_options.${k}' is not supported; use include_usage or token_by_token`);
    }
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== "boolean") {
      throw new BadRequest(`'stream_options.${k}' must be a boolean; got ${JSON.stringify(o[k])}`);
    }
  }
  return (o.token_by_token ?? undefined) as boolean | undefined;
}

const FINISH: Record<FinishReason, string> = { eos: "stop", stop: "stop", length: "length" };

/** What a request gets back: its tokens, text and finish reason, its own tau and tokens/s, its batch size. */
interface Outcome {
  ids: number[];
  text: string;
  finish: string;
  tau: number;
  tokensPerSecond: number;
  /** Requests in the batch it ran in. */
  batch: number;
  /** How the batch decoded: autoregressively when it was bigger than ServeOptions.speculativeMaxBatch. */
  mode: RunMode;
}

/** A request waiting for, or running in, a batch. */
interface Job {
  req: Request;
  /** Its max_tokens, cut to the context. */
  budget: number;
  settings: RunSettings;
  /** Jobs with the same non-null key may share a batch; null runs alone. */
  key: string | null;
  cancelled: boolean;
  onTokens(tokens: number[]): void;
  onDone(o: Outcome): void;
  onError(e: Error): void;
}

/** Serve `pair` with the generation defaults of `base`; returns the running server. */
export function startServer(
  pair: Pair,
  base: RunSettings,
  opts: ServeOptions,
): Deno.HttpServer<Deno.NetAddr> {
  const cfg = pair.target.config;
  const maxBatch = opts.maxBatch ?? 1;
  const speculativeMaxBatch = opts.speculativeMaxBatch ?? defaultSpeculativeMaxBatch(pair.target.backend);
  const json = (status: number, value: unknown) =>
    new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
  const error = (status: number, message: string, type = "invalid_request_error") =>
    json(status, { error: { message, type } });

  // The scheduler: jobs queue up while a batch runs; the next batch takes the first job and, when batching
  // is on, the queued jobs that may share its run (greedy, the same stop strings), up to maxBatch.
  const pending: Job[] = [];
  let running = false;
  const submit = (job: Job) => {
    pending.push(job);
    if (!running) void drainQueue();
  };
  async function drainQueue(): Promise<void> {
    running = true;
    while (pending.length > 0) {
      const first = pending.shift()!;
      const batch = [first];
      if (first.key !== null) {
        for (let i = 0; i < pending.length && batch.length < maxBatch;) {
          if (pending[i].key === first.key) batch.push(...pending.splice(i, 1));
          else i++;
        }
      }
      await runBatch(batch);
    }
    running = false;
  }
  async function runBatch(jobs: Job[]): Promise<void> {
    const live = jobs.filter((j) => !j.cancelled);
    if (live.length === 0) return;
    const budget = Math.max(...live.map((j) => j.budget));
    const rows = live.map(() => [] as number[]);
    // Per-row metrics from the events: tau = tokens per round after the prefill's token, tokens/s over the
    // batch's wall time up to the row's last token.
    const rounds = live.map(() => 0), roundTokens = live.map(() => 0), lastMs = live.map(() => 0);
    const t0 = performance.now();
    let lastYield = t0;
    try {
      // A big batch decodes autoregressively, where drafting stops paying (defaultSpeculativeMaxBatch).
      const asked = live[0].settings;
      const settings: RunSettings = asked.mode === "redrafter" && live.length > speculativeMaxBatch
        ? { ...asked, mode: "autoregressive" }
        : asked;
      const gen = streamFor(settings, live.map((j) => j.req.ids), budget);
      let result: GenerateResult | null = null;
      for (;;) {
        if (live.every((j, r) => j.cancelled || rows[r].length >= j.budget)) {
          await gen.return(undefined as never); // every row has all it asked for, or left
          break;
        }
        // The backends compute between awaits that never reach the event loop: yield to it every few ms,
        // so streamed chunks go out and new requests get queued (to join the next batch).
        if (performance.now() - lastYield > YIELD_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          lastYield = performance.now();
        }
        const it = await gen.next();
        if (it.done) {
          result = it.value;
          break;
        }
        const { row, step, tokens } = it.value;
        const j = live[row];
        // A row past its own max_tokens keeps running in the batch (core has one limit), unseen.
        const take = tokens.slice(0, Math.max(0, j.budget - rows[row].length));
        if (take.length === 0 || j.cancelled) continue;
        rows[row].push(...take);
        if (step > 0) {
          rounds[row]++;
          roundTokens[row] += take.length;
        }
        lastMs[row] = performance.now() - t0;
        j.onTokens(take);
      }
      for (const [r, j] of live.entries()) {
        if (j.cancelled) continue;
        const cut = result === null || result.ids[r].length > rows[r].length;
        j.onDone({
          ids: rows[r],
          text: cut ? (j.settings.decode?.(rows[r]) ?? "") : (result!.text?.[r] ?? ""),
          finish: cut ? "length" : FINISH[result!.finish[r]],
          tau: rounds[r] > 0 ? roundTokens[r] / rounds[r] : 1,
          tokensPerSecond: lastMs[r] > 0 ? (1000 * rows[r].length) / lastMs[r] : 0,
          batch: live.length,
          mode: settings.mode,
        });
      }
    } catch (e) {
      for (const j of live) if (!j.cancelled) j.onError(e as Error);
    }
  }

  async function complete(req: Request): Promise<Response> {
    const depth = base.mode === "redrafter" ? Math.max(base.beamLength, 1 + (base.lookup ?? 0)) : 0;
    let budget: number;
    try {
      // max_tokens beyond the context is cut to fit (finish_reason "length"), as the CLIs do.
      budget = fitContext(
        req.ids.length,
        req.maxTokens,
        cfg.maxPositionEmbeddings,
        depth,
        "the prompt",
        () => {},
      );
    } catch (e) {
      throw new BadRequest((e as Error).message);
    }
    const mode = req.speculative === undefined ? base.mode : req.speculative ? "redrafter" : "autoregressive";
    const settings: RunSettings = { ...base, mode, sampling: req.sampling, stop: req.stop };
    // Sampled requests run alone: a row's random draws depend on its index in the batch. Greedy ones batch
    // with those of the same mode and stop strings.
    const key = req.sampling === undefined ? JSON.stringify([mode, req.stop]) : null;
    const id = `${req.chat ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = opts.modelId;
    const extra = (o: Outcome) => {
      const rd = o.mode === "redrafter"; // the mode the batch ran in
      return {
        usage: {
          prompt_tokens: req.ids.length,
          completion_tokens: o.ids.length,
          total_tokens: req.ids.length + o.ids.length,
        },
        redrafter: {
          mode: o.mode,
          tau: o.tau,
          tokens_per_second: o.tokensPerSecond,
          batch: o.batch,
          beam_width: rd ? settings.beamWidth : null,
          beam_length: rd ? settings.beamLength : null,
          tree_nodes: rd ? settings.draftTree?.nodes ?? 0 : null,
          lookup: rd ? settings.lookup ?? 0 : null,
          lookup_mode: rd && settings.lookup ? settings.lookupMode ?? "branch" : null,
          lookup_length: rd && settings.lookup ? settings.lookupLength ?? "fixed" : null,
          draft_vocab: rd ? pair.draftVocab ?? pair.target.config.vocabSize : null,
          backend: pair.target.backend,
        },
      };
    };
    if (!req.stream) {
      const outcome = await new Promise<Outcome>((resolve, reject) =>
        submit({
          req,
          budget,
          settings,
          key,
          cancelled: false,
          onTokens: () => {},
          onDone: resolve,
          onError: reject,
        })
      );
      const choice = req.chat
        ? { index: 0, message: { role: "assistant", content: outcome.text }, finish_reason: outcome.finish }
        : { index: 0, text: outcome.text, finish_reason: outcome.finish, token_ids: outcome.ids };
      const object = req.chat ? "chat.completion" : "text_completion";
      return json(200, { id, object, created, model, choices: [choice], ...extra(outcome) });
    }
    // Streaming: server-sent events, one per decoded piece of text, then the finish and [DONE].
    const enc = new TextEncoder();
    const object = req.chat ? "chat.completion.chunk" : "text_completion";
    const decoder = pair.tokenizer ? createStreamDecoder(pair.tokenizer, { skipSpecialTokens: true }) : null;
    let job: Job;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = (choice: unknown, more: Record<string, unknown> = {}) =>
          controller.enqueue(
            enc.encode(
              `data: ${JSON.stringify({ id, object, created, model, choices: [choice], ...more })}\n\n`,
            ),
          );
        const piece = (text: string) =>
          req.chat
            ? { index: 0, delta: { content: text }, finish_reason: null }
            : { index: 0, text, finish_reason: null };
        if (req.chat) send({ index: 0, delta: { role: "assistant" }, finish_reason: null });
        job = {
          req,
          budget,
          settings,
          key,
          cancelled: false,
          onTokens: (tokens) => {
            if (!decoder) return;
            // A round's tokens as one piece, or (token_by_token) one event per token that completes text.
            const groups = req.tokenByToken ? tokens.map((t) => [t]) : [tokens];
            for (const g of groups) {
              const text = decoder.push(g);
              if (text) send(piece(text));
            }
          },
          onDone: (o) => {
            const tail = decoder?.flush() ?? "";
            if (tail) send(piece(tail));
            send(
              req.chat
                ? { index: 0, delta: {}, finish_reason: o.finish }
                : { index: 0, text: "", finish_reason: o.finish },
              extra(o),
            );
            controller.enqueue(enc.encode("data: [DONE]\n\n"));
            controller.close();
          },
          onError: (e) => {
            controller.enqueue(
              enc.encode(
                `data: ${JSON.stringify({ error: { message: e.message, type: "server_error" } })}\n\n`,
              ),
            );
            controller.close();
          },
        };
        submit(job);
      },
      cancel: () => {
        job.cancelled = true; // the client went away: its row is dropped, and a batch of only such rows stops
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }

  return Deno.serve({
    port: opts.port ?? 8080,
    hostname: opts.hostname ?? "127.0.0.1",
    onListen: () => {},
  }, async (request) => {
    const path = new URL(request.url).pathname;
    try {
      if (path === "/health") {
        return json(200, {
          status: "ok",
          model: opts.modelId,
          backend: pair.target.backend,
          mode: base.mode,
        });
      }
      if (path === "/v1/models") {
        return json(200, {
          object: "list",
          data: [{ id: opts.modelId, object: "model", created: 0, owned_by: "redrafter" }],
        });
      }
      if (path === "/v1/completions" || path === "/v1/chat/completions") {
        if (request.method !== "POST") return error(405, `${path} takes POST; got ${request.method}`);
        let body: unknown;
        try {
          body = await request.json();
        } catch {
          throw new BadRequest("the request body is not valid JSON");
        }
        return await complete(parseRequest(body, path.endsWith("chat/completions"), pair, opts));
      }
      return error(
        404,
        `no route ${path}: use /v1/completions, /v1/chat/completions, /v1/models or /health`,
        "not_found",
      );
    } catch (e) {
      if (e instanceof BadRequest) return error(400, e.message);
      return error(500, (e as Error).message, "server_error");
    }
  });
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, FLAGS);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const f of ["prompt", "prompt-ids", "eval", "eval-mt-bench", "json", "compare", "output"] as const) {
    if (values[f] !== undefined) {
      throw new UsageError(`--${f} is a flag of \`deno task generate\`, not of serve`);
    }
  }
  const port = intFlag(values, "port", 8080, { min: 0, max: 65535 });
  const maxNew = intFlag(values, "max-new-tokens", 256, { min: 1, max: 1_000_000 });
  const maxBatch = intFlag(values, "max-batch", 1, { min: 1, max: 256 });
  const pair = await loadPair(pairOptionsFromFlags(values));
  const mode: RunMode = pair.drafter && !values.autoregressive ? "redrafter" : "autoregressive";
  const settings = settingsFrom(values, pair, mode);
  const chatStyle = pair.tokenizer
    ? promptStyle(pair.tokenizer, { chat: values.chat, raw: values.raw })
    : "raw";
  const modelId = values.model ?? "redrafter-default";
  const server = startServer(pair, settings, {
    port,
    hostname: values.hostname,
    defaultMaxTokens: maxNew,
    system: values.system,
    chatStyle,
    modelId,
    maxBatch,
    tokenByToken: values["stream-tokens"] ?? false,
    speculativeMaxBatch: values["speculative-max-batch"] === undefined
      ? undefined
      : intFlag(values, "speculative-max-batch", 1, { min: 1, max: 256 }),
  });
  console.error(
    `serving ${modelId} (${pair.target.backend}, ${mode}${
      mode === "redrafter"
        ? ` ${settings.beamWidth}x${settings.beamLength}${
          settings.draftTree ? `, draft tree of ${settings.draftTree.nodes} nodes` : ""
        }${lookupDescription(settings)}`
        : ""
    }) on http://${server.addr.hostname}:${server.addr.port}/v1 (Ctrl-C stops)`,
  );
  await server.finished;
  pair.dispose();
  return 0;
}

if (import.meta.main) await runMain(main);
