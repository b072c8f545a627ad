import assert from "node:assert/strict";
import { join } from "node:path";
import { compileChatTemplate, pickConfigTemplate } from "../loader/chat_template.ts";
import { loadTokenizer, type Tokenizer } from "../loader/tokenizer.ts";
import { expected, FIXTURES, TOKENIZERS } from "./tokenizer_fixtures.ts";

const cache = new Map<string, Promise<Tokenizer>>();
const load = (name: string) => {
  if (!cache.has(name)) cache.set(name, loadTokenizer(TOKENIZERS[name]));
  return cache.get(name)!;
};

for (const name of Object.keys(TOKENIZERS)) {
  Deno.test(`${name}: applyChatTemplate equals transformers' apply_chat_template`, async () => {
    const tok = await load(name);
    const cases = expected(name).chat;
    assert.ok(cases.length >= 8);
    for (const c of cases) {
      const opts = { addGenerationPrompt: c.add_generation_prompt, tools: c.tools };
      const label = `${c.name} add_generation_prompt=${c.add_generation_prompt}`;
      if (c.error !== undefined) {
        assert.throws(
          () => tok.applyChatTemplate(c.messages, opts),
          (e: Error) => e.message.includes(c.error!),
          label,
        );
      } else {
        assert.equal(tok.applyChatTemplate(c.messages, opts), c.rendered, label);
        assert.deepEqual(tok.encodeChat(c.messages, opts), c.ids, label);
      }
    }
  });
}

Deno.test("llama3: the template comes from tokenizer_config.json and writes <|begin_of_text|> once", async () => {
  const tok = await load("llama3");
  assert.match(tok.chatTemplate!.origin, /tokenizer_config\.json \(chat_template\)$/);
  const msgs = [{ role: "user", content: "Hello!" }];
  const ids = tok.encodeChat(msgs, { addGenerationPrompt: true });
  assert.deepEqual(
    ids,
    tok.encode(tok.applyChatTemplate(msgs, { addGenerationPrompt: true }), { addSpecialTokens: false }),
  );
  assert.equal(ids.filter((id) => id === 128000).length, 1);
  assert.equal(ids[0], 128000);
  assert.ok(ids.includes(128006) && ids.includes(128007) && ids.includes(128009)); // header ids, <|eot_id|>
});

Deno.test("sp: chat_template.jinja wins over tokenizer_config.json's chat_template", async () => {
  const tok = await load("sp");
  assert.equal(tok.chatTemplate!.origin, join(TOKENIZERS.sp, "chat_template.jinja"));
  const config = JSON.parse(Deno.readTextFileSync(join(TOKENIZERS.sp, "tokenizer_config.json")));
  assert.match(config.chat_template, /\[INST\]/); // the Llama-2 template, unused here
  assert.match(
    tok.applyChatTemplate([{ role: "user", content: "hi" }]),
    /^<\|im_start\|>user\nhi<\|im_end\|>\n$/,
  );
});

Deno.test("metaspace: encodeChat adds no second BOS when the template writes bos_token", async () => {
  const tok = await load("metaspace");
  const ids = tok.encodeChat([{ role: "user", content: "Hello world" }]);
  assert.equal(ids[0], 1);
  assert.notEqual(ids[1], 1);
  assert.equal(tok.decode(ids), "<s>[INST] Hello world [/INST]"); // prepend_scheme "first": no ▁ after <s>
});

Deno.test("a list-form chat_template picks tool_use when tools are given, else default", () => {
  const list = [{ name: "default", template: "D" }, { name: "tool_use", template: "T" }];
  assert.equal(pickConfigTemplate(list, false, "cfg.json"), "D");
  assert.equal(pickConfigTemplate(list, true, "cfg.json"), "T");
  assert.equal(pickConfigTemplate([{ name: "default", template: "D" }], true, "cfg.json"), "D");
  assert.equal(pickConfigTemplate(undefined, false, "cfg.json"), null);
  assert.throws(
    () => pickConfigTemplate([{ name: "rag", template: "R" }], false, "cfg.json"),
    /cfg\.json: .*no "default"/,
  );
  assert.throws(() => pickConfigTemplate(42, false, "cfg.json"), /cfg\.json: chat_template must be/);
});

Deno.test("a list-form chat_template in tokenizer_config.json is used through loadTokenizer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_test_" });
  try {
    await Deno.copyFile(join(FIXTURES, "metaspace", "tokenizer.json"), join(dir, "tokenizer.json"));
    const config = {
      bos_token: "<s>",
      eos_token: "</s>",
      chat_template: [
        { name: "default", template: "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}" },
        { name: "tool_use", template: "{{ tools | length }} tools{{ eos_token }}" },
      ],
    };
    await Deno.writeTextFile(join(dir, "tokenizer_config.json"), JSON.stringify(config));
    const tok = await loadTokenizer(dir);
    const msgs = [{ role: "user", content: "a" }, { role: "assistant", content: "b" }];
    assert.equal(tok.applyChatTemplate(msgs), "<s>ab");
    assert.equal(
      tok.applyChatTemplate(msgs, { tools: [{ type: "function" }, { type: "function" }] }),
      "2 tools</s>",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("template errors name the template's origin", () => {
  assert.throws(
    () => compileChatTemplate("{% for m in messages %}", "/x/chat_template.jinja"),
    /\/x\/chat_template\.jinja: chat template does not parse/,
  );
  const t = compileChatTemplate(
    "{{ raise_exception('bad role: ' + messages[0].role) }}",
    "/x/tokenizer_config.json",
  );
  assert.throws(
    () => t.render([{ role: "tool", content: "" }], {}),
    /\/x\/tokenizer_config\.json: chat template failed: bad role: tool$/,
  );
  assert.throws(() => t.render([], {}), /conversation is empty/);
  const extra = compileChatTemplate("{{ bos_token }}|{{ date_string }}|{{ add_generation_prompt }}", "t");
  assert.equal(
    extra.render([{ role: "user", content: "" }], { bos_token: "<s>" }, {
      extra: { date_string: "1 Jan" },
      addGenerationPrompt: true,
    }),
    "<s>|1 Jan|true",
  );
});

Deno.test("a template that does not parse blocks chat formatting only, with an error naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_test_" });
  try {
    await Deno.copyFile(join(FIXTURES, "sp", "tokenizer.json"), join(dir, "tokenizer.json"));
    await Deno.writeTextFile(join(dir, "chat_template.jinja"), "{% for m in messages %}{{ m.content }}");
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.encode("Hello world"), expected("sp").encode[0].ids);
    const msgs = [{ role: "user", content: "hi" }];
    assert.throws(
      () => tok.applyChatTemplate(msgs),
      new RegExp(`${join(dir, "chat_template.jinja")}: chat template does not parse`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
