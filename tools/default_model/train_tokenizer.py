#!/usr/bin/env python3
"""Train the default model's byte-level BPE tokenizer on the corpus's train split only.

Writes, into --out: tokenizer.json, tokenizer_config.json, special_tokens_map.json.
The layout mirrors Llama 3's tokenizer.json (regex Split + ByteLevel pre-tokenizer, ByteLevel decoder,
post-processor ByteLevel + TemplateProcessing that prepends <|bos|>), so any reader of Llama-3 tokenizers
reads this one. Special tokens: 0 <|pad|>, 1 <|bos|>, 2 <|eos|> (the same bos=1/eos=2 as stories260k).

The model is a plain-text LM, NOT instruction tuned. Its chat_template therefore only joins the
message contents (blank line between messages) after <|bos|>, so a "chat" simply continues the text.
"""

import argparse
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"
# Llama 3's pre-tokenization pattern (contractions, words, 1-3 digit groups, punctuation runs, spaces).
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['content'] }}"
    "{% if not loop.last %}{{ '\\n\\n' }}{% endif %}{% endfor %}"
)
MODEL_MAX_LENGTH = 1024


def train_texts(corpus: str):
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            if doc["split"] == "train":  # held-out documents must not shape the vocabulary
                yield doc["text"]


def build(corpus: str, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[PAD, BOS, EOS],  # ids 0, 1, 2 in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is ever unknown
        show_progress=False,
    )
    tok.train_from_iterator(train_texts(corpus), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0",
            pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, bos_id)],
        ),
    ])
    return tok


def write_configs(out: str) -> None:
    def added(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}

    ids = {PAD: 0, BOS: 1, EOS: 2}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MODEL_MAX_LENGTH,
        "padding_side": "left",
        "added_tokens_decoder": {str(i): added(t) for t, i in ids.items()},
        "chat_template": CHAT_TEMPLATE,
    }
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    for name, obj in [("tokenizer_config.json", config), ("special_tokens_map.json", special)]:
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=".cache/default_model/corpus/docs.jsonl")
    ap.add_argument("--out", default=".cache/default_model/tokenizer")
    ap.add_argument("--vocab-size", type=int, default=8192)
    args = ap.parse_args()
    if not os.path.exists(args.corpus):
        raise SystemExit(f"train_tokenizer.py: corpus {args.corpus} not found; run corpus.py first")

    tok = build(args.corpus, args.vocab_size)
    for i, t in enumerate([PAD, BOS, EOS]):
        assert tok.token_to_id(t) == i, f"special token {t} got id {tok.token_to_id(t)}, expected {i}"
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    write_configs(args.out)

    # Round-trip and compression check on a held-out document.
    with open(args.corpus, encoding="utf-8") as f:
        sample = next(d["text"] for d in map(json.loads, f) if d["split"] == "heldout")
    enc = tok.encode(sample)
    assert enc.ids[0] == tok.token_to_id(BOS), "post-processor did not prepend <|bos|>"
    assert tok.decode(enc.ids, skip_special_tokens=True) == sample, "tokenizer does not round-trip text"
    print(f"[tokenizer] vocab {tok.get_vocab_size()}, held-out sample {len(sample)} chars -> "
          f"{len(enc.ids)} tokens ({len(sample) / len(enc.ids):.2f} chars/token); wrote {args.out}")


if __name__ == "__main__":
    main()
