"""Self-distillation data: the target continues contexts cut from the data, and the drafter learns to predict
the target's own continuations (the paper's knowledge distillation; the reference repo trains on ground truth
only). Generation is batched (prompts grouped by length, so no padding) with the target's KV cache. Rows are
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
    """Continue every prompt by gen_len tokens (cut after the first EOS).

    Prompts are grouped by length so a batch needs no padding, attention mask or position ids, and decoding
    is a plain loop of forward calls with the KV cache: on a 2-core CPU 7-10 contexts of 64 tokens per
    second against 2.4-5.7 for `generate` with left padding. Rows come back in the prompts' order. `pad` is
    unused (kept for callers).
    """
    del pad
    # Sample where the logits are: a [batch, vocab] copy to the host per step would dominate on a GPU.
    gen = torch.Generator(device=device).manual_seed(seed)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    batches, cur = [], []
    for i in order:
        if cur and (len(prompts[cur[0]]) != len(prompts[i]) or len(cur) == batch):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    rows: list = [None] * len(prompts)
    t0, done, next_log = time.time(), 0, 0
    for idx in batches:
        ids = torch.tensor([prompts[i] for i in idx], dtype=torch.long, device=device)
        out = target(input_ids=ids, use_cache=True)
        past, conts = out.past_key_values, []
        for step in range(gen_len):
            logits = out.logits[:, -1, :].float()
            if sample:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=gen)
            else:
                nxt = logits.argmax(dim=-1, keepdim=True)
            conts.append(nxt)
            if step + 1 < gen_len:
                out = target(input_ids=nxt, past_key_values=past, use_cache=True)
                past = out.past_key_values
        conts = torch.cat(conts, dim=1).cpu().tolist()
        for i, cont in zip(idx, conts):
            cut = len(cont)
            for j, t in enumerate(cont):
                if t in eos_ids:
                    cut = j + 1
                    break
            cont = cont[:cut]
            rows[i] = (prompts[i] + cont, [IGNORE_INDEX] * len(prompts[i]) + cont)
        done += len(idx)
        if done >= next_log or done == len(prompts):
            log(f"distill: {done}/{len(prompts)} contexts, {time.time() - t0:.0f}s")
            next_log = done + max(batch, len(prompts) // 20)
    return rows


def sample_contexts(target, tokenizer, num: int, ctx_len: int, batch: int, eos_ids: list[int], device, log,
                    seed: int) -> list[list[int]]:
    """Contexts the target writes itself: from the tokenizer's text start (BOS), ctx_len tokens sampled at
    temperature 1, cut before an EOS. Text the target has never seen (so it cannot recite a memorized
    continuation), in its own distribution: what a drafter meets on unseen prompts. Full-length samples are
    preferred over ones an EOS cut short (so documents shorter than ctx_len are under-represented)."""
    head = tokenizer("", add_special_tokens=True)["input_ids"]
    if not head:  # tokenizers that add no BOS: start from the BOS id, else (GPT-2 style) the EOS id
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ValueError("--distill-prompts sampled needs a BOS or EOS token to start the target's samples")
        head = [start]
    # A quarter more samples than asked, so that contexts cut short by an EOS are mostly not needed: the
    # continuations are generated in batches of equal length, and every distinct short length would be a
    # small batch of its own (on an H200 these made 146 of 177 s of distilling 120000 contexts).
    extra = num // 4
    rows = generate_continuations(target, [head] * (num + extra), max(1, ctx_len - len(head)), batch, True, 1.0,
                                  eos_ids, 0, device, lambda m: log(m.replace("distill:", "distill contexts:")),
                                  seed=seed)
    full, short = [], []
    for ids, _ in rows:
        cut = next((i for i, t in enumerate(ids) if i >= len(head) and t in eos_ids), len(ids))
        (full if cut == len(ids) else short).append(ids[:cut])
    return (full + short)[:num]


def distill_rows(args, target, tokenizer, device, rank: int, world: int, log=print):
    """[N, ctx+gen] ids and labels of self-distilled rows, generated once and cached on disk."""
    mode = args.distill_prompts
    sampled = mode == "sampled"
    settings = {"data": None if sampled else os.path.abspath(args.data), "target": os.path.abspath(args.target),
                "num": args.distill_contexts, "ctx": args.distill_context, "gen": args.distill_length,
                "sample": args.distill_sample, "temperature": args.distill_temperature, "seed": args.seed,
                "prompts": args.distill_prompts}
    cache = args.distill_cache or os.path.join(args.output, f"distill-{_key(settings)}.pt")
    if os.path.exists(cache):
        blob = torch.load(cache)
        if blob.get("settings") == settings:
            log(f"distill: using cached {cache} ({blob['input_ids'].shape[0]} rows)")
            return blob["input_ids"], blob["labels"]
        log(f"distill: {cache} was made with other settings; regenerating")
    eos = target.generation_config.eos_token_id if target.generation_config is not None else None
    eos = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    # Contexts 0..n_data-1 are cut from the data (every rank cuts the same ones); the rest are sampled, each
    # rank sampling the indices it will continue.
    n_sampled = {"data": 0, "sampled": args.distill_contexts, "both": args.distill_contexts // 2}[mode]
    prompts: dict = {}
    if mode != "sampled":
        cut = distill_prompts(args.data, tokenizer, args.distill_contexts - n_sampled, args.distill_context,
                              args.seed)
        prompts.update(enumerate(cut))
    n_data = len(prompts)
    total = n_data + n_sampled
    mine = list(range(rank, total, world))
    if n_sampled:
        want = [i for i in mine if i >= n_data]
        prompts.update(zip(want, sample_contexts(target, tokenizer, len(want), args.distill_context,
                                                 args.distill_batch, eos, device, log,
                                                 seed=args.seed * 1000 + rank + 500)))
    rows = generate_continuations(target, [prompts[i] for i in mine], args.distill_length, args.distill_batch,
                                  args.distill_sample, args.distill_temperature, eos, pad_id(tokenizer), device,
                                  log, seed=args.seed * 1000 + rank)
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    part = f"{cache}.part{rank}"
    torch.save({"index": mine, "rows": rows}, part)
    if world > 1:
        dist.barrier()
    ordered = [None] * total
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
