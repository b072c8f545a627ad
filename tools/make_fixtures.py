"""Tiny random-weight Hugging Face checkpoints plus reference outputs for the loader and CPU backend tests.

Run from the repo root with the local torch + transformers:  python tools/make_fixtures.py

Writes tests/fixtures/models/<name>/ (config.json, generation_config.json, safetensors, expected.json) for
  llama          GQA, llama3 RoPE scaling (all three frequency bands hit), untied lm_head
  qwen2          q/k/v biases, tied embeddings
  mistral        sliding_window 6 (shorter than the prompt), GQA
  llama_bf16     the llama weights stored in bf16 (expected.json from fp32 compute over the bf16 weights)
  llama_sharded  the llama weights in several shards (model.safetensors.index.json); expected = llama's
and tests/fixtures/stories260k_greedy.json from ../shared/fixtures/stories260k when present.

expected.json: prompt ids, logits [n, V] of every prompt position, final-norm hidden states [n, H], and a
20-token greedy continuation from model.generate (cross-checked against a cache-free argmax loop).
Everything runs in float32 with attn_implementation="eager".
"""

import json
import os
import shutil

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "models")
PROMPT = [1, 17, 42, 99, 5, 63, 120, 8, 77, 31, 2, 54]
NEW_TOKENS = 20

COMMON = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    initializer_range=0.25,  # large, so that logits are well separated and greedy picks are robust
)


def perturb(model):
    """Non-trivial norm weights and biases, so that a backend ignoring them fails the tests."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def greedy_no_cache(model, prompt, n):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1]
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):]


def reference(model, prompt):
    model.eval()
    x = torch.tensor([prompt])
    with torch.no_grad():
        out = model(x, output_hidden_states=True)
        logits = out.logits[0]
        hidden = model.model(x).last_hidden_state[0]  # after the final norm
        gen = model.generate(
            x,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=0,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )[0, len(prompt):].tolist()
    manual = greedy_no_cache(model, prompt, NEW_TOKENS)
    assert gen == manual, f"generate {gen} != cache-free greedy {manual}"
    assert len(gen) == NEW_TOKENS
    # Margin between the top two logits of each greedy step: small margins would make the test flaky.
    margins = []
    with torch.no_grad():
        ids = list(prompt) + gen
        all_logits = model(torch.tensor([ids])).logits[0]
        for i in range(len(prompt) - 1, len(ids) - 1):
            top = torch.topk(all_logits[i], 2).values
            margins.append(float(top[0] - top[1]))
    return {
        "prompt": prompt,
        "logits": [[round(float(v), 7) for v in row] for row in logits],
        "hidden": [[round(float(v), 7) for v in row] for row in hidden],
        "greedy": gen,
        "min_greedy_margin": min(margins),
    }


def save(model, name, dtype=torch.float32, **kw):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    model.to(dtype).save_pretrained(d, safe_serialization=True, **kw)
    model.to(torch.float32)
    return d


def write_expected(d, exp):
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, separators=(",", ":"))
    print(f"{os.path.relpath(d, ROOT)}: greedy {exp['greedy']}  min margin {exp['min_greedy_margin']:.4f}")


def build(cls, cfg, seed):
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = cls(cfg).to(torch.float32)
    perturb(model)
    model.eval()
    return model


def rope_cases():
    """inv_freq from transformers' own RoPE init functions, for a few configs (incl. Llama 3.1's real one)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cases = [
        dict(hidden_size=64, num_attention_heads=8, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        dict(hidden_size=256, num_attention_heads=16,
             rope_parameters={"rope_type": "linear", "rope_theta": 500000.0, "factor": 4.0}),
        dict(hidden_size=4096, num_attention_heads=32, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    ]
    out = []
    for c in cases:
        cfg = LlamaConfig(**c, max_position_embeddings=131072)
        rtype = c["rope_parameters"]["rope_type"]
        if rtype == "default":
            from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
            inv = LlamaRotaryEmbedding.compute_default_rope_parameters(cfg)[0]
        else:
            inv = ROPE_INIT_FUNCTIONS[rtype](cfg, "cpu")[0]
        out.append({"config": {"architectures": ["LlamaForCausalLM"], "vocab_size": 8, "intermediate_size": 8,
                               "num_hidden_layers": 1, "max_position_embeddings": 131072, **c},
                    "inv_freq": [float(v) for v in inv]})
    path = os.path.join(ROOT, "tests", "fixtures", "rope_inv_freq.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {os.path.relpath(path, ROOT)}")


def main():
    os.makedirs(OUT, exist_ok=True)
    rope_cases()

    # Llama: GQA, llama3 rope scaling with original context 64 so head_dim 8's wavelengths (6.3, 63, 628,
    # 6283) fall in the high, medium and low frequency bands.
    llama_cfg = LlamaConfig(
        **COMMON,
        head_dim=8,
        tie_word_embeddings=False,
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 10000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
    )
    llama = build(LlamaForCausalLM, llama_cfg, 1)
    d = save(llama, "llama")
    # Several EOS ids in generation_config.json (merged with config.json's by the loader).
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": [2, 7], "do_sample": False}, f, indent=2)
    write_expected(d, reference(llama, PROMPT))

    # The same weights sharded: expected outputs are llama's.
    d = save(llama, "llama_sharded", max_shard_size="40KB")
    assert os.path.exists(os.path.join(d, "model.safetensors.index.json")), "sharding did not happen"

    # The same model stored in bf16; reference computed in fp32 over the bf16-rounded weights.
    d = save(llama, "llama_bf16", dtype=torch.bfloat16)
    llama_bf16 = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    write_expected(d, reference(llama_bf16, PROMPT))

    qwen_cfg = Qwen2Config(**COMMON, tie_word_embeddings=True, rope_theta=10000.0)
    qwen = build(Qwen2ForCausalLM, qwen_cfg, 2)
    d = save(qwen, "qwen2")
    write_expected(d, reference(qwen, PROMPT))

    mistral_cfg = MistralConfig(**COMMON, head_dim=8, sliding_window=6, tie_word_embeddings=False,
                                rope_theta=10000.0)
    mistral = build(MistralForCausalLM, mistral_cfg, 3)
    d = save(mistral, "mistral")
    write_expected(d, reference(mistral, PROMPT))

    stories = os.path.join(ROOT, "..", "shared", "fixtures", "stories260k")
    if os.path.isdir(stories):
        model = LlamaForCausalLM.from_pretrained(stories, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        prompt = [1, 400, 300]
        with torch.no_grad():
            gen = model.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()
        assert gen == greedy_no_cache(model, prompt, 40)
        path = os.path.join(ROOT, "tests", "fixtures", "stories260k_greedy.json")
        with open(path, "w") as f:
            json.dump({"prompt": prompt, "greedy": gen}, f)
        print(f"stories260k greedy: {gen}")
    else:
        print(f"skipping stories260k: {stories} not found")


if __name__ == "__main__":
    main()
