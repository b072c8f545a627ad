#!/usr/bin/env python3
"""Check a built default-model checkpoint the way a user would load it: with transformers only.

Asserts: the folder loads as LlamaForCausalLM + a fast tokenizer; weights are stored as float16;
bos/eos/pad agree between config, generation_config and tokenizer; the tokenizer round-trips the prompts;
the chat template just joins contents. Then prints the held-out loss of a few prompts and greedy
continuations, for a human to judge.
"""

import argparse
import json
import math
import os

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="checkpoint folder")
    ap.add_argument("--prompts", default="models/default/prompts.jsonl")
    ap.add_argument("--n", type=int, default=3, help="prompts to generate from")
    ap.add_argument("--max-new-tokens", type=int, default=40)
    args = ap.parse_args()

    with safe_open(os.path.join(args.model, "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        names = list(f.keys())
    assert dtypes == {"F16"}, f"model.safetensors: expected only F16 tensors, found {dtypes}"
    assert "lm_head.weight" not in names, "model.safetensors: tied model should not store lm_head.weight"

    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    gen = GenerationConfig.from_pretrained(args.model)
    cfg = model.config
    assert type(model).__name__ == "LlamaForCausalLM", type(model).__name__
    for name in ["bos_token_id", "eos_token_id", "pad_token_id"]:
        ids = {getattr(cfg, name), getattr(gen, name), getattr(tok, name)}
        assert len(ids) == 1, f"{name} disagrees between config, generation_config and tokenizer: {ids}"
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[check] {type(model).__name__}: {n_params:,} params, layers {cfg.num_hidden_layers}, hidden "
          f"{cfg.hidden_size}, heads {cfg.num_attention_heads}/{cfg.num_key_value_heads}, vocab {cfg.vocab_size}")

    with open(args.prompts, encoding="utf-8") as f:
        prompts = [json.loads(line)["prompt"] for line in f]
    for p in prompts:
        ids = tok(p)["input_ids"]
        assert ids[0] == tok.bos_token_id, "tokenizer did not prepend <|bos|>"
        assert tok.decode(ids, skip_special_tokens=True) == p, f"tokenizer does not round-trip: {p!r}"
    chat = tok.apply_chat_template([{"role": "user", "content": "A"}, {"role": "user", "content": "B"}],
                                   tokenize=False, add_generation_prompt=True)
    assert chat == tok.bos_token + "A\n\nB", f"unexpected chat template output {chat!r}"
    print(f"[check] tokenizer round-trips all {len(prompts)} prompts; chat template joins contents")

    # Mean per-token loss of the prompts themselves (held-out text), as a sanity number.
    total, count = 0.0, 0
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([tok(p)["input_ids"]])
            out = model(input_ids=ids, labels=ids)
            total += out.loss.item() * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    print(f"[check] held-out prompt loss {total / count:.3f} (ppl {math.exp(total / count):.1f})")

    for p in prompts[: args.n]:
        enc = tok(p, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False)
        print(f"[check] {p!r}\n   -> {tok.decode(out[0, enc['input_ids'].shape[1]:])!r}")


if __name__ == "__main__":
    main()
