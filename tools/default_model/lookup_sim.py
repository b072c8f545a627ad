#!/usr/bin/env python3
"""Simulated greedy ReDrafter speedups of drafting policies on the default pair, from measured step costs.

The target continues each held-out prompt greedily (the output of every policy, since verification keeps
it); for every position the drafter's W=1 chain acceptance and its top-1 probabilities are computed as in
drafter_acceptance.py. Rounds are then replayed over those sequences for each policy, and each round is
charged the step costs given (ms: a one-token target step, one drafter step, a verification of T tokens):

  drafter   W=1 beams of length L (the plain ReDrafter round)
  branch    lookup drafts (core/lookup.ts) as one more branch next to the drafter's beam
  first     lookup drafts alone where found (no drafter step), the drafter elsewhere (--lookup-mode first)
  adapt     first, with K = 1 + the drafts the last lookup round accepted
  gate      first, using lookup only after a lookup proposal that hit
  conf      the drafter's chain cut where the product of its top-1 probabilities falls below a threshold

The speedup is tokens per ms over the autoregressive tokens per ms. It leaves out everything but the step
costs (and rounds near a row's end), so use it to rank policies; time the winners with `deno task bench`.

  python3 tools/default_model/lookup_sim.py [--prompts 32] [--costs cpu1|onnx2]
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))
from redrafter_train.model import load_drafter  # noqa: E402

# (AR step ms, drafter step ms, verify ms of T tokens): tools/profile_default.ts, session 8 (cpu, 1 thread:
# 2.34 / 2.93 / 3.60 ms for T = 1 / 2 / 3, then about 0.7 ms a token; onnx-node relative to its step).
COSTS = {
    "cpu1": (2.34, 0.42, lambda t: (2.34, 2.93, 3.60)[t - 1] if t <= 3 else 3.60 + 0.7 * (t - 3)),
    "onnx2": (1.0, 0.25, lambda t: 1.0 + 0.1 * (t - 1) + 0.03 * max(0, t - 2)),
}
DEPTH, NEW = 4, 64


def lookup(ctx, max_drafts, max_n=3, min_n=2):
    """core/lookup.ts lookupDraft."""
    end = len(ctx) - 1
    for n in range(min(max_n, end), min_n - 1, -1):
        for j in range(end - 1, n - 2, -1):
            if all(ctx[j - k] == ctx[end - k] for k in range(n)):
                return ctx[j + 1: j + 1 + min(max_drafts, end - j)]
    return []


def sequences(args):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    root = os.path.join(HERE, "..", "..", "models", "default")
    tok = AutoTokenizer.from_pretrained(os.path.join(root, "target"))
    target = AutoModelForCausalLM.from_pretrained(os.path.join(root, "target"), dtype=torch.float32).eval()
    drafter = load_drafter(os.path.join(root, "drafter")).eval()
    prompts = [json.loads(line)["prompt"] for line in open(os.path.join(root, "prompts.jsonl"))][: args.prompts]
    rows = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]
            seq = target.generate(ids, max_new_tokens=NEW + DEPTH + 2, do_sample=False)[0]
            n = ids.shape[1]
            if seq.shape[0] < n + NEW + DEPTH + 2:
                continue  # stopped at EOS: left out for simplicity
            hidden = target.base_model(input_ids=seq[None])[0][0]
            emb = target.get_input_embeddings()(seq[None])[0]
            t = torch.arange(n - 1, n - 1 + NEW)  # rounds whose last committed token is t
            state = torch.zeros(len(t), hidden.shape[-1])
            ok = torch.ones(len(t), dtype=torch.bool)
            oks, probs = [], []
            for j in range(DEPTH):
                state = drafter.update_state(state, emb[t + 1 + j])
                top = drafter.head(torch.cat((hidden[t], state), -1)).softmax(-1).max(-1)
                ok = ok & (top.indices == seq[t + 2 + j])
                oks.append(ok.clone())
                probs.append(top.values)
            rows.append((n, seq.tolist(), torch.stack(oks, 1), torch.cumprod(torch.stack(probs, 1), 1)))
    return rows


def simulate(rows, policy, L, K, costs, threshold=0.0):
    ar, draft_ms, verify = costs
    tokens = ms = 0.0
    for n, seq, ok, cum in rows:
        t, k_adapt, last_hit = n - 1, K, True
        while t < n - 1 + NEW - DEPTH:
            i = t - (n - 1)
            found = lookup(seq[: t + 2], k_adapt if policy == "adapt" else K) if policy != "drafter" else []
            use = found if not (policy == "gate" and not last_hit) else []
            hit = 0
            for k, token in enumerate(use):
                if seq[t + 2 + k] != token:
                    break
                hit += 1
            drafts, steps = L - 1, L - 1  # drafts verified, drafter steps run
            if policy == "conf":  # the step that fell below the threshold was run, its draft dropped
                drafts = int((cum[i, : L - 1] >= threshold).long().cumprod(0).sum())
                steps = min(drafts + 1, L - 1)
            chain = int(ok[i, :drafts].long().sum())  # ok is chained: accepted drafts
            if policy == "branch":
                acc, T, cost = max(chain, hit), L + len(found), draft_ms * steps
            elif policy in ("first", "adapt", "gate") and use:
                acc, T, cost = hit, 1 + len(use), 0.0
                k_adapt, last_hit = min(K, hit + 1), hit > 0
            else:
                acc, T, cost = chain, 1 + drafts, draft_ms * steps
                if found and policy == "gate":
                    last_hit = seq[t + 2] == found[0]
            tokens += 1 + acc
            ms += cost + verify(T)
            t += 1 + acc
    return tokens / ms * ar


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--costs", choices=sorted(COSTS), default="cpu1")
    args = ap.parse_args()
    rows = sequences(args)
    costs = COSTS[args.costs]
    print(f"{len(rows)} prompts x {NEW} tokens, step costs {args.costs}: simulated speedup over autoregression")
    for L in (2, 3):
        print(f"L={L}: drafter {simulate(rows, 'drafter', L, 0, costs):.3f}")
        for policy in ("branch", "first", "adapt", "gate"):
            cells = " ".join(f"K={k}: {simulate(rows, policy, L, k, costs):.3f}" for k in (1, 2, 4, 8))
            print(f"  {policy:6s} {cells}")
        cells = " ".join(f"p>={p}: {simulate(rows, 'conf', L, 0, costs, p):.3f}" for p in (0.2, 0.4, 0.6))
        print(f"  conf   {cells}")


if __name__ == "__main__":
    main()
