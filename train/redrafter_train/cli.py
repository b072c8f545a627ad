"""Command line: `python -m redrafter_train --target DIR --data FILE --output DIR [...]` (torchrun for DDP)."""
from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m redrafter_train",
        description="Train a ReDrafter recurrent drafter against a frozen Hugging Face causal LM; writes an "
                    "Apple ml-recurrent-drafter checkpoint (config.json + model.safetensors). Run under "
                    "torchrun --nproc_per_node N for DDP.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("inputs and output")
    g.add_argument("--target", required=True, help="target model directory (HF config, weights, tokenizer)")
    g.add_argument("--data", default=None,
                   help="plain-text file, or ShareGPT-style .json/.jsonl conversations (loss on assistant turns); "
                        "not needed with --distill-prompts sampled")
    g.add_argument("--output", required=True, help="output directory (drafter, checkpoints, metrics.json)")
    g.add_argument("--init", default=None,
                   help="drafter directory to start from (fine-tuning); its config sets the architecture")
    g.add_argument("--grow-layers", type=int, default=0,
                   help="with --init: first deepen the drafter to this many ResBlocks, the new ones zero "
                        "(identity) so it starts exactly where --init was")
    g.add_argument("--resume", default=None, help="checkpoint directory to resume from, or 'auto' for the latest "
                                                  "checkpoint-* under --output")
    g = p.add_argument_group("drafter")
    g.add_argument("--predict-n", type=int, default=5, help="K: draft steps trained (reference predict_n_tokens)")
    g.add_argument("--layers", type=int, default=2, help="ResBlocks (num_draft_layers)")
    g.add_argument("--exit-dim", type=int, default=0, help="head width E; 0 means 2*hidden (no input_proj)")
    g.add_argument("--no-rnn", action="store_true", help="running-sum state instead of the SiLU RNN")
    g = p.add_argument_group("data")
    g.add_argument("--seq-len", type=int, default=1024, help="row length for text/conversation data")
    g.add_argument("--eval-fraction", type=float, default=0.02, help="held-out fraction of rows for metrics")
    g = p.add_argument_group("self-distillation (used when --distill-contexts > 0)")
    g.add_argument("--distill-contexts", type=int, default=0,
                   help="number of contexts cut from --data that the target continues; 0 trains on the data")
    g.add_argument("--distill-prompts", choices=["data", "sampled", "both"], default="data",
                   help="where contexts come from: cut from --data, or sampled from the target itself (from BOS, "
                        "temperature 1): unseen text, so the target cannot recite memorized continuations; "
                        "both: half of each")
    g.add_argument("--distill-context", type=int, default=128, help="context length in tokens")
    g.add_argument("--distill-length", type=int, default=128, help="continuation length in tokens")
    g.add_argument("--distill-batch", type=int, default=64, help="generation batch size")
    g.add_argument("--distill-sample", action="store_true", help="sample continuations (default greedy)")
    g.add_argument("--distill-temperature", type=float, default=1.0, help="sampling temperature")
    g.add_argument("--distill-cache", default=None,
                   help="cache file for generated rows (default: OUTPUT/distill-<settings hash>.pt)")
    g = p.add_argument_group("optimization")
    g.add_argument("--batch", type=int, default=8, help="rows per micro-batch per process")
    g.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--warmup-ratio", type=float, default=0.1)
    g.add_argument("--warmup-steps", type=int, default=-1, help="overrides --warmup-ratio when >= 0")
    g.add_argument("--min-lr-ratio", type=float, default=0.0, help="cosine floor as a fraction of --lr")
    g.add_argument("--max-grad-norm", type=float, default=0.0, help="gradient clipping (0: off, as the reference)")
    g.add_argument("--max-steps", type=int, required=True, help="optimizer steps (sizes the schedule)")
    g.add_argument("--max-minutes", type=float, default=0.0, help="stop early after this many minutes (0: off)")
    g.add_argument("--time-schedule", action="store_true",
                   help="the cosine schedule ends at --max-minutes when that comes before --max-steps (the lr "
                        "follows the larger of step and wall-time progress), so a timed run still decays fully")
    g.add_argument("--stop-at-step", type=int, default=0,
                   help="stop (and checkpoint) at this step without shrinking the schedule; for preemptible runs")
    g.add_argument("--dtype", choices=["bf16", "fp32"], default=None,
                   help="bf16: target weights in bf16 and drafter under bf16 autocast (default on CUDA); fp32 "
                        "(default on CPU)")
    g.add_argument("--save-dtype", choices=["fp32", "bf16"], default="fp32", help="dtype of the final weights")
    g.add_argument("--draft-vocab-coverage", type=float, default=0.95,
                   help="draft_vocab.json's default_size: the fewest most frequent tokens (a multiple of 256) "
                        "that cover this share of the training labels, when that is at most half the "
                        "vocabulary; 0: rank the tokens but set no default")
    g.add_argument("--soft-weight", type=float, default=0.0,
                   help="weight w of soft targets: each row's loss is (1 - w) x CE on the label + w x T^2 x CE "
                        "on the target's own distribution at temperature T (knowledge distillation; fits the "
                        "whole distribution, which exact sampling accepts from); 0: the reference loss")
    g.add_argument("--soft-temperature", type=float, default=1.0, help="T of --soft-weight")
    g.add_argument("--loss-chunk", type=int, default=8192, help="rows per head/cross-entropy chunk")
    g.add_argument("--no-head-checkpoint", dest="head_checkpoint", action="store_false",
                   help="keep head logits for backward instead of recomputing them (more memory)")
    g.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("logging and checkpoints")
    g.add_argument("--log-every", type=int, default=10)
    g.add_argument("--eval-every", type=int, default=0, help="steps between held-out evaluations (0: at the end)")
    g.add_argument("--save-every", type=int, default=0, help="steps between checkpoints (0: only when stopping early)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import torch
    if args.dtype is None:
        args.dtype = "bf16" if torch.cuda.is_available() else "fp32"
    if args.time_schedule and args.max_minutes <= 0:
        print("error: --time-schedule needs --max-minutes", file=sys.stderr)
        return 2
    if args.data is None and not (args.distill_contexts > 0 and args.distill_prompts == "sampled"):
        print("error: --data is required (unless --distill-contexts N with --distill-prompts sampled)",
              file=sys.stderr)
        return 2
    if not 0 <= args.soft_weight <= 1:
        print(f"error: --soft-weight must be in [0, 1], got {args.soft_weight}", file=sys.stderr)
        return 2
    if not args.soft_temperature > 0:
        print(f"error: --soft-temperature must be > 0, got {args.soft_temperature}", file=sys.stderr)
        return 2
    if args.grow_layers and not args.init:
        print("error: --grow-layers needs --init (the drafter to deepen)", file=sys.stderr)
        return 2
    for name in ("predict_n", "batch", "grad_accum", "max_steps", "seq_len", "log_every"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    from .trainer import train
    train(args)
    return 0
