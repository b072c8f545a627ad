#!/usr/bin/env python3
"""Greedy single-beam acceptance of a drafter on the held-out prompt set, measured with PyTorch.

For each prompt the target continues greedily by --tokens; at every position t of that continuation the
drafter, seeded like a ReDrafter round (hidden state of token t, first input token t+1, the target's own
next token), drafts up to --depth tokens greedily. Reports the chained acceptance per depth (the fraction
of positions whose first k drafts all equal the target's tokens) and the implied tau of W=1 beams of
length L = 2..depth+1 (1 + the sum of the chained acceptances). This is what `deno task bench` measures at
W=1, without the timing.

For sampling it also reports, at depth 1 and --temperature T: the exact mode's acceptance (the target's
probability of the drafter's argmax: a draft is kept when the target's own draw equals it) and the sum over
tokens of min(p, q), the most any draft drawn from the drafter's distribution q could be accepted with
(what soft-target training, train/ --soft-weight, aims to raise).

  python3 tools/default_model/drafter_acceptance.py [--drafter models/default/drafter[,other...]] [--prompts 32]
                                                   [--temperature 1]
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))
from redrafter_train.model import load_drafter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.join(HERE, "..", "..", "models", "default")
    ap.add_argument("--target", default=os.path.join(root, "target"))
    ap.add_argument("--drafter", default=os.path.join(root, "drafter"),
                    help="drafter directory, or several separated by commas (the target decodes once)")
    ap.add_argument("--prompts-file", default=os.path.join(root, "prompts.jsonl"))
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=1.0, help="temperature of the sampling metrics")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.target)
    target = AutoModelForCausalLM.from_pretrained(args.target, dtype=torch.float32).eval()
    prompts = [json.loads(line)["prompt"] for line in open(args.prompts_file, encoding="utf-8")][: args.prompts]
    rows = []  # (prompt length, tokens, final hidden states, input embeddings) per prompt
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]
            out = target.generate(ids, max_new_tokens=args.tokens, do_sample=False)
            rows.append((ids.shape[1], out[0], target.base_model(input_ids=out)[0][0],
                         target.get_input_embeddings()(out)[0]))
    for path in args.drafter.split(","):
        drafter = load_drafter(path).eval()
        hits = torch.zeros(args.depth)
        total = 0
        p_argmax, overlap = 0.0, 0.0
        with torch.no_grad():
            for n, seq, hidden, emb in rows:
                # Every position t of the continuation at once: a round whose last verified token is t.
                t = torch.arange(n - 1, max(n - 1, seq.shape[0] - args.depth - 1))
                state = torch.zeros(len(t), hidden.shape[-1])
                ok = torch.ones(len(t), dtype=torch.bool)
                for j in range(args.depth):
                    state = drafter.update_state(state, emb[t + 1 + j])
                    logits = drafter.head(torch.cat((hidden[t], state), -1))
                    ok &= logits.argmax(-1) == seq[t + 2 + j]
                    hits[j] += ok.sum()
                    if j == 0:
                        # The target's distribution over token t+2 comes from its hidden state at t+1.
                        p = (target.get_output_embeddings()(hidden[t + 1]) / args.temperature).softmax(-1)
                        q = (logits / args.temperature).softmax(-1)
                        p_argmax += float(p.gather(-1, logits.argmax(-1, keepdim=True)).sum())
                        overlap += float(torch.minimum(p, q).sum())
                total += len(t)
        chained = (hits / total).tolist()
        print(f"{path}: {len(prompts)} held-out prompts, {total} positions")
        print("chained acceptance by depth: " + " ".join(f"{a:.3f}" for a in chained))
        print("tau estimate, W=1: " + " ".join(f"L={k + 2}: {1 + sum(chained[:k + 1]):.2f}" for k in range(args.depth)))
        print(f"depth 1 at temperature {args.temperature:g}: exact-mode acceptance {p_argmax / total:.3f}, "
              f"sum of min(p, q) {overlap / total:.3f}")


if __name__ == "__main__":
    main()
