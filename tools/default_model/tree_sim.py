#!/usr/bin/env python3
"""Draft-tree policies for the default pair, simulated on held-out greedy continuations (no timing noise).

The target continues each held-out prompt greedily by --tokens. At every position t of the continuation a
round is seeded as in ReDrafter (context = hidden state of token t, init token t+1) and each policy builds a
draft tree with the drafter; the round accepts the deepest tree node whose path equals the target's tokens.
Per policy it reports tau (1 + mean accepted drafts), the mean tree size T (packed tokens the target
verifies, init token included), drafter steps and drafter rows per round, and the speedup that a cost model
predicts: a round costs verify(T) + drafter steps, relative to a one-token target step:

    verify(T) = 1 + a * (T - 1),   drafter = steps * d + (rows - steps) * r

--costs picks (a, d, r) per column: cpu1 (the cpu backend, 1 thread: 0.24, 0.12, 0.03) and onnx2
(onnx-node, 2 threads, q8 CPU drafter: 0.09, 0.08, 0.02), both from tools/profile_default.ts on the 2-core
workplace; gpu (onnx-webgpu with the q8 drafter on the CPU: 0.01, 0.006, 0.002), from the H200 runs of
session 9, where a target step costs ~65 ms whatever its token count and a CPU drafter step ~0.4 ms.

Policies (the CLI's shapes):
  WxL        beam search as the reference runs it: W beams of L tokens (init token included), their
             prefixes merged
  WxLtN/C    a dynamic draft tree (core/draft_tree.ts, `--beam-width W --beam-length L --tree-nodes N
             --tree-children C`): L-1 drafter steps; step 1 expands the init token, each later step the W
             nodes of the step before with the highest path probability; each expansion keeps its C most
             likely children; the tree is the N created nodes with the highest path probability

  python3 tools/default_model/tree_sim.py [--prompts 32] [--tokens 64] [--costs cpu1,onnx2,gpu]
"""
import argparse
import json
import os
import re
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))
from redrafter_train.model import load_drafter  # noqa: E402

COSTS = {"cpu1": (0.24, 0.12, 0.03), "onnx2": (0.09, 0.08, 0.02), "gpu": (0.01, 0.006, 0.002)}
DMAX = 8  # deepest draft simulated


def beam_policy(drafter, ctx, init, emb_table, target_next, W, L):
    """Returns (accepted [P], tree size [P], steps, rows per round)."""
    beams, _, _ = drafter.beam_search(ctx, init, emb_table, W, L)  # [P, W, L]
    P = beams.shape[0]
    # Distinct prefixes = tree nodes (root included once).
    size = torch.ones(P)
    for k in range(1, L):
        pre = beams[:, :, : k + 1]
        for p in range(P):
            size[p] += len({tuple(x) for x in pre[p].tolist()})
    match = (beams[:, :, 1:] == target_next[:, None, : L - 1]).long().cumprod(-1).sum(-1)  # [P, W]
    return match.max(-1).values.float(), size, L - 1, 1 + W * (L - 2)


def tree_policy(drafter, ctx, init, emb_table, target_next, D, M, K, N):
    P, H = ctx.shape
    tokens, parents, scores, depths = [], [], [], []  # per created node, [P] each
    frontier_state = drafter.update_state(torch.zeros(P, 1, H), emb_table[init][:, None, :])  # [P, 1, H]
    frontier_idx = torch.full((P, 1), -1, dtype=torch.long)  # node index of each frontier node (-1 root)
    frontier_score = torch.zeros(P, 1)
    rows = 0
    for d in range(D):
        m = frontier_state.shape[1]
        rows += m
        lp = drafter.log_probs(ctx[:, None, :].expand(P, m, H), frontier_state)  # [P, m, V]
        top, tok = torch.topk(lp, K, dim=-1)  # [P, m, K]
        sc = frontier_score[..., None] + top
        base = len(tokens)
        for i in range(m):
            for j in range(K):
                tokens.append(tok[:, i, j])
                parents.append(frontier_idx[:, i])
                scores.append(sc[:, i, j])
                depths.append(d + 1)
        if d == D - 1:
            break
        # Next frontier: the M best children (path score) of this step.
        flat = sc.reshape(P, m * K)
        msel = min(M, m * K)
        best, pos = torch.topk(flat, msel, dim=-1)
        par_i, ch_j = pos // K, pos % K
        child_tok = torch.gather(tok.reshape(P, m * K), 1, pos)
        parent_state = torch.gather(frontier_state, 1, par_i[..., None].expand(P, msel, H))
        frontier_state = drafter.update_state(parent_state, emb_table[child_tok])
        frontier_idx = base + pos
        frontier_score = best
    tok_all = torch.stack(tokens, 1)  # [P, n]
    par_all = torch.stack(parents, 1)
    sc_all = torch.stack(scores, 1)
    dep_all = torch.tensor(depths)
    n = tok_all.shape[1]
    keep = torch.zeros(P, n, dtype=torch.bool)
    keep.scatter_(1, torch.topk(sc_all, min(N, n), dim=-1).indices, True)
    # Ancestor closure (a child can tie its parent's score only at probability 1): keep kept nodes' parents.
    for d in range(D, 1, -1):
        at = keep & (dep_all == d)
        par = torch.where(at, par_all, torch.full_like(par_all, n))  # column n: a dummy
        ext = torch.cat([keep, torch.zeros(P, 1, dtype=torch.bool)], 1)
        ext.scatter_(1, par, True)
        keep = ext[:, :n]
    # Duplicate children of one parent can't happen (topk ids are distinct); nodes are distinct paths.
    size = 1 + keep.sum(-1).float()
    # Accept: walk down the target's tokens.
    cur = torch.full((P,), -1, dtype=torch.long)
    acc = torch.zeros(P)
    alive = torch.ones(P, dtype=torch.bool)
    for d in range(1, D + 1):
        cand = keep & (dep_all == d) & (par_all == cur[:, None]) & (tok_all == target_next[:, d - 1 : d])
        hit = cand.any(-1) & alive
        acc += hit.float()
        cur = torch.where(hit, cand.float().argmax(-1), torch.full_like(cur, -2))
        alive = hit
    return acc, size, D, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.join(HERE, "..", "..", "models", "default")
    ap.add_argument("--target", default=os.path.join(root, "target"))
    ap.add_argument("--drafter", default=os.path.join(root, "drafter"))
    ap.add_argument("--prompts-file", default=os.path.join(root, "prompts.jsonl"))
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--costs", default="cpu1,onnx2,gpu")
    ap.add_argument("--policies", default="1x2,1x3,2x3,4x3,4x4,8x4,8x5,1x3t3/2,2x4t5/2,3x5t8/3,3x6t10/3,"
                    "4x7t16/4,6x7t24/4,6x9t32/4")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.target)
    target = AutoModelForCausalLM.from_pretrained(args.target, dtype=torch.float32).eval()
    prompts = [json.loads(line)["prompt"] for line in open(args.prompts_file, encoding="utf-8")][: args.prompts]
    drafter = load_drafter(args.drafter).eval()
    emb_table = target.get_input_embeddings().weight.detach()
    Dmax = DMAX
    ctxs, inits, nexts = [], [], []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]
            out = target.generate(ids, max_new_tokens=args.tokens + Dmax + 1, do_sample=False)[0]
            hidden = target.base_model(input_ids=out[None])[0][0]
            n = ids.shape[1]
            for t in range(n - 1, n - 1 + args.tokens):
                if t + 2 + Dmax > out.shape[0]:
                    break  # the continuation ended (EOS) before this round's drafts could be checked
                ctxs.append(hidden[t])
                inits.append(out[t + 1])
                nexts.append(out[t + 2 : t + 2 + Dmax])
    ctx, init, nxt = torch.stack(ctxs), torch.stack(inits), torch.stack(nexts)
    print(f"{len(prompts)} held-out prompts x {args.tokens} positions = {len(init)} rounds")
    costs = [c for c in args.costs.split(",")]
    head = f"{'policy':16s} {'tau':>5s} {'T':>5s} {'steps':>5s} {'rows':>5s}" + "".join(f" {c:>7s}" for c in costs)
    print(head)
    with torch.no_grad():
        for pol in args.policies.split(","):
            m = re.fullmatch(r"(\d+)x(\d+)(?:t(\d+)(?:/(\d+))?)?", pol)
            if not m or int(m[2]) < 2 or int(m[2]) - 1 > DMAX:
                sys.exit(f"--policies: '{pol}' is not WxL or WxLtN/C with 2 <= L <= {DMAX + 1}")
            W, L = int(m[1]), int(m[2])
            if m[3] is None:
                acc, size, steps, rows = beam_policy(drafter, ctx, init, emb_table, nxt, W, L)
            else:
                N, C = int(m[3]), int(m[4] or W)
                acc, size, steps, rows = tree_policy(drafter, ctx, init, emb_table, nxt, L - 1, W, C, N)
            tau, T = 1 + acc.mean().item(), size.mean().item()
            line = f"{pol:16s} {tau:5.2f} {T:5.2f} {steps:5d} {rows:5d}"
            for c in costs:
                a, d, r = COSTS[c]
                line += f" {tau / (1 + a * (T - 1) + steps * d + (rows - steps) * r):6.2f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()
