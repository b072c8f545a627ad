#!/usr/bin/env python3
"""Train the default target model: a small Llama (transformers LlamaForCausalLM) on the corpus's train split.

Needs only Python + torch + transformers + tokenizers, so it runs on a machine without node or network:
carry the corpus JSONL (corpus.py) and the tokenizer folder (train_tokenizer.py) along.

Data: each train document becomes <|bos|> text <|eos|>; all are concatenated into one token stream and
batches are random windows of seq_len+1 tokens from it (seeded). Validation loss is measured on fixed,
non-overlapping windows of the held-out documents' stream.

Schedule: AdamW, linear warmup (--warmup-steps or 5% of the run, whichever ends first), then cosine decay to min_lr over the run's progress, where progress is the
larger of step/steps and elapsed/time-budget; so a --max-minutes run anneals fully and stops cleanly
within the budget. --steps defaults to --max-epochs passes over the train tokens. The checkpoint saved is
the one with the best validation loss (the corpus is small, so long runs overfit).

Output: a complete HF checkpoint in --out: config.json, model.safetensors (float16), generation_config.json,
the tokenizer files, and train_log.json (numbers for the model card).
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
# Shapes. "default" is the shipped model; "tiny" only exists for quick CPU smoke tests of the pipeline.
PRESETS = {
    # 8 layers, hidden 320, 8 query / 4 KV heads of dim 40, SwiGLU 864 (2.7x): ~11.7M params with vocab 8192.
    "default": dict(hidden_size=320, intermediate_size=864, num_hidden_layers=8, num_attention_heads=8,
                    num_key_value_heads=4, head_dim=40),
    # ~16M params (tied embeddings): hidden 384, 8 layers, 8 query / 4 KV heads of dim 48, SwiGLU 1024.
    # The shipped default model uses this preset.
    "medium": dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=8,
                   num_key_value_heads=4, head_dim=48),
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16),
}


def log(msg: str) -> None:
    print(f"[train] {msg}", flush=True)


def load_streams(corpus: str, tokenizer: Tokenizer, eos_id: int) -> dict[str, torch.Tensor]:
    """Token stream per split: every document as <|bos|> text <|eos|> (bos comes from the post-processor)."""
    texts: dict[str, list[str]] = {"train": [], "heldout": []}
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            texts[doc["split"]].append(doc["text"])
    streams = {}
    for split, docs in texts.items():
        if not docs:
            sys.exit(f"train_target.py: corpus {corpus} has no '{split}' documents")
        ids: list[int] = []
        for enc in tokenizer.encode_batch(docs):
            ids.extend(enc.ids)
            ids.append(eos_id)
        streams[split] = torch.tensor(ids, dtype=torch.int32)
    return streams


def make_config(preset: str, vocab_size: int, tok_dir: str) -> LlamaConfig:
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        specials = {t["content"]: t["id"] for t in json.load(f)["added_tokens"]}
    return LlamaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        # Tied: the corpus is small (~5M tokens), so sharing the 8192 x 320 table regularizes and saves
        # 2.6M params (~20%); the project's loaders already handle tied checkpoints (stories260k).
        tie_word_embeddings=True,
        initializer_range=0.02,
        bos_token_id=specials["<|bos|>"],
        eos_token_id=specials["<|eos|>"],
        pad_token_id=specials["<|pad|>"],
        **PRESETS[preset],
    )


@torch.no_grad()
def evaluate(model, windows: torch.Tensor, batch_size: int, device: str, autocast) -> float:
    """Mean next-token loss over fixed validation windows [n, T+1]."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, windows.shape[0], batch_size):
        chunk = windows[i:i + batch_size].to(device, dtype=torch.long)
        with autocast():
            logits = model(input_ids=chunk[:, :-1]).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum")
        total += loss.item()
        count += chunk[:, 1:].numel()
    model.train()
    return total / count


def main() -> None:
    t_start = time.time()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=".cache/default_model/corpus/docs.jsonl")
    ap.add_argument("--tokenizer", default=".cache/default_model/tokenizer", help="folder from train_tokenizer.py")
    ap.add_argument("--out", required=True, help="output checkpoint folder")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-minutes", type=float, default=5.0, help="wall-time budget for the whole script")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: --max-epochs worth)")
    ap.add_argument("--max-epochs", type=float, default=8.0)
    ap.add_argument("--preset", choices=list(PRESETS), default="default")
    ap.add_argument("--batch-size", type=int, default=0, help="sequences per step (0: 32 cuda, 8 cpu)")
    ap.add_argument("--seq-len", type=int, default=0, help="tokens per sequence (0: 512 cuda, 256 cpu)")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=0, help="steps between validations (0: 100 cuda, 10 cpu)")
    ap.add_argument("--eval-windows", type=int, default=0, help="validation windows (0: 256 cuda, 32 cpu)")
    ap.add_argument("--log-every", type=int, default=0, help="steps between progress lines (0: 20 cuda, 2 cpu)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (off by default)")
    args = ap.parse_args()

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("train_target.py: --device cuda but torch sees no CUDA device")
    B = args.batch_size or (32 if cuda else 8)
    T = args.seq_len or (512 if cuda else 256)
    eval_every = args.eval_every or (100 if cuda else 10)
    eval_windows = args.eval_windows or (256 if cuda else 32)
    log_every = args.log_every or (20 if cuda else 2)
    if T + 1 > 1024:
        sys.exit("train_target.py: --seq-len must be at most 1023 (max_position_embeddings is 1024)")
    for path in [args.corpus] + [os.path.join(args.tokenizer, f) for f in TOKENIZER_FILES]:
        if not os.path.exists(path):
            sys.exit(f"train_target.py: missing input {path}")

    torch.manual_seed(args.seed)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # Leave time after the loop for the last validation and for saving.
    deadline = t_start + args.max_minutes * 60 - min(30.0, 0.1 * args.max_minutes * 60)

    tokenizer = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    config = make_config(args.preset, tokenizer.get_vocab_size(), args.tokenizer)
    streams = load_streams(args.corpus, tokenizer, config.eos_token_id)
    train, heldout = streams["train"], streams["heldout"]
    n_val = min(eval_windows, (heldout.numel() - 1) // T)
    val_windows = torch.stack([heldout[i * T:i * T + T + 1] for i in range(n_val)])
    log(f"corpus: {train.numel():,} train tokens, {heldout.numel():,} held-out tokens "
        f"({n_val} validation windows of {T})")

    model = LlamaForCausalLM(config).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {args.preset}, {n_params:,} parameters ({n_params / 1e6:.2f}M, tied embeddings), "
        f"vocab {config.vocab_size}, device {args.device}")
    fwd = torch.compile(model) if args.compile else model

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=cuda,
    )
    tokens_per_step = B * T
    steps = args.steps or max(1, math.ceil(args.max_epochs * train.numel() / tokens_per_step))
    warmup = min(args.warmup_steps, max(1, steps // 10))
    budget_s = deadline - time.time()
    log(f"plan: up to {steps} steps of {B}x{T} tokens ({steps * tokens_per_step / train.numel():.2f} epochs), "
        f"warmup {warmup}, peak lr {args.lr}, loop budget {budget_s:.0f}s")

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    gen = torch.Generator().manual_seed(args.seed)
    offsets = torch.arange(T + 1)
    best = {"loss": float("inf"), "step": -1, "state": None}
    history = []

    def validate(step: int) -> float:
        loss = evaluate(fwd, val_windows, B, args.device, autocast)
        history.append({"step": step, "val_loss": round(loss, 4), "elapsed_s": round(time.time() - t_start, 1)})
        if loss < best["loss"]:
            best.update(loss=loss, step=step,
                        state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        log(f"step {step:5d} | val loss {loss:.4f} (best {best['loss']:.4f} at step {best['step']})")
        return loss

    validate(0)
    loop_start = time.time()
    step, train_loss, window_tokens, window_start = 0, float("nan"), 0, time.time()
    while True:
        progress = max(step / steps, (time.time() - loop_start) / max(1e-9, deadline - loop_start))
        if progress >= 1.0:
            break
        lr_scale = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        # Warmup ends after `warmup` steps or 5% of the run, whichever comes first (short timed runs).
        lr = args.lr * min(1.0, max((step + 1) / warmup, progress / 0.05)) * lr_scale
        for g in opt.param_groups:
            g["lr"] = lr

        starts = torch.randint(0, train.numel() - T - 1, (B,), generator=gen)
        batch = train[starts[:, None] + offsets].to(args.device, dtype=torch.long, non_blocking=True)  # [B, T+1]
        with autocast():
            logits = fwd(input_ids=batch[:, :-1]).logits  # [B, T, V]
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        window_tokens += tokens_per_step

        if step % log_every == 0:
            train_loss = loss.item()  # syncs the device, so tokens/s below is honest
            now = time.time()
            log(f"step {step:5d} | loss {train_loss:.4f} | lr {lr:.2e} | "
                f"{window_tokens / (now - window_start):,.0f} tok/s | "
                f"epoch {step * tokens_per_step / train.numel():.2f} | {now - t_start:.0f}s")
            window_tokens, window_start = 0, now
        if step % eval_every == 0:
            validate(step)
    if history[-1]["step"] != step:
        validate(step)
    train_s = time.time() - loop_start

    # Save the best-validation weights as float16.
    model.load_state_dict(best["state"])
    model = model.to("cpu", dtype=torch.float16)
    model.config.dtype = torch.float16
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    # transformers 5 writes "dtype" and "rope_parameters"; also write the classic keys that transformers 4
    # and simpler readers (this project's loader) look for.
    cfg_path = os.path.join(args.out, "config.json")
    with open(cfg_path, encoding="utf-8") as f:
        saved = json.load(f)
    saved["torch_dtype"] = "float16"
    saved["rope_theta"] = 10000.0
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(saved, f, indent=2, sort_keys=True)
        f.write("\n")
    GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id,
    ).save_pretrained(args.out)
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(args.tokenizer, name), os.path.join(args.out, name))
    summary = {
        "preset": args.preset, "parameters": n_params, "vocab_size": config.vocab_size,
        "train_tokens": train.numel(), "heldout_tokens": heldout.numel(), "validation_windows": n_val,
        "batch_size": B, "seq_len": T, "steps": step, "planned_steps": steps,
        "epochs": round(step * tokens_per_step / train.numel(), 3), "peak_lr": args.lr,
        "best_val_loss": round(best["loss"], 4), "best_step": best["step"], "final_val_loss": history[-1]["val_loss"],
        "train_seconds": round(train_s, 1), "total_seconds": round(time.time() - t_start, 1),
        "device": torch.cuda.get_device_name() if cuda else "cpu", "seed": args.seed, "history": history,
    }
    with open(os.path.join(args.out, "train_log.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    log(f"done: {step} steps in {train_s:.0f}s; best val loss {best['loss']:.4f} at step {best['step']} "
        f"(ppl {math.exp(best['loss']):.1f}); saved float16 checkpoint to {args.out} "
        f"({time.time() - t_start:.0f}s total)")


if __name__ == "__main__":
    main()
