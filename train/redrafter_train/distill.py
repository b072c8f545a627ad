"""Self-distillation data: the target continues contexts cut from the data, and the drafter learns to predict
the target's own continuations (the paper's knowledge distillation; the reference repo trains on ground truth
only). Generation is batched (left-padded prompts) with the target's KV cache via `generate`. Rows are
context + continuation with labels only on the continuation (up to and including the first EOS). Results
are cached to a .pt file keyed by the settings; under DDP every rank generates its own share, then all ranks
read all shares.
"""
from __future__ import annotations

import hashlib
import json
import os
import time

import torch
import torch.distributed as dist

from .data import distill_prompts, pad_id, pad_rows
from .model import IGNORE_INDEX


def _key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def generate_continuations(target, prompts: list[list[int]], gen_len: int, batch: int, sample: bool,
                           temperature: float, eos_ids: list[int], pad: int, device, log=print,
                           seed: int = 0) -> list[tuple[list[int], list[int]]]:
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(seed)
    t0 = time.time()
    for b in range(0, len(prompts), batch):
        chunk = prompts[b:b + batch]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, p in enumerate(chunk):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))  # sampling is reproducible per batch
        kwargs = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if sample else dict(do_sample=False)
        out = target.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=gen_len,
                              min_new_tokens=1, pad_token_id=pad, eos_token_id=eos_ids or None, use_cache=True,
                              **kwargs)
        out = out[:, width:].cpu().tolist()
        for p, cont in zip(chunk, out):
            cut = len(cont)
            for i, t in enumerate(cont):
                if t in eos_ids:
                    cut = i + 1
                    break
            cont = cont[:cut]
            rows.append((p + cont, [IGNORE_INDEX] * len(p) + cont))
        done = min(b + batch, len(prompts))
        log(f"distill: {done}/{len(prompts)} contexts, {time.time() - t0:.0f}s")
    return rows


def distill_rows(args, target, tokenizer, device, rank: int, world: int, log=print):
    """[N, ctx+gen] ids and labels of self-distilled rows, generated once and cached on disk."""
    settings = {"data": os.path.abspath(args.data), "target": os.path.abspath(args.target),
                "num": args.distill_contexts, "ctx": args.distill_context, "gen": args.distill_length,
                "sample": args.distill_sample, "temperature": args.distill_temperature, "seed": args.seed}
    cache = args.distill_cache or os.path.join(args.output, f"distill-{_key(settings)}.pt")
    if os.path.exists(cache):
        blob = torch.load(cache)
        if blob.get("settings") == settings:
            log(f"distill: using cached {cache} ({blob['input_ids'].shape[0]} rows)")
            return blob["input_ids"], blob["labels"]
        log(f"distill: {cache} was made with other settings; regenerating")
    prompts = distill_prompts(args.data, tokenizer, args.distill_contexts, args.distill_context, args.seed)
    mine = list(range(rank, len(prompts), world))
    eos = target.generation_config.eos_token_id if target.generation_config is not None else None
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    rows = generate_continuations(target, [prompts[i] for i in mine], args.distill_length, args.distill_batch,
                                  args.distill_sample, args.distill_temperature, eos, pad_id(tokenizer), device,
                                  log, seed=args.seed * 1000 + rank)
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    part = f"{cache}.part{rank}"
    torch.save({"index": mine, "rows": rows}, part)
    if world > 1:
        dist.barrier()
    ordered = [None] * len(prompts)
    for r in range(world):
        blob = torch.load(f"{cache}.part{r}")
        for i, row in zip(blob["index"], blob["rows"]):
            ordered[i] = row
    seq_len = args.distill_context + args.distill_length
    ids, labels = pad_rows(ordered, seq_len, pad_id(tokenizer))
    if world > 1:
        dist.barrier()  # everyone has read every part
    if rank == 0:
        torch.save({"settings": settings, "input_ids": ids, "labels": labels}, cache)
        for r in range(world):
            os.remove(f"{cache}.part{r}")
        log(f"distill: wrote {cache} ({ids.shape[0]} rows of {seq_len} tokens)")
    return ids, labels
