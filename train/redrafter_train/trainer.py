"""The training loop: frozen target, drafter under DDP (torchrun; NCCL on GPU, gloo on CPU) or a single
process, gradient accumulation, AdamW, warmup + cosine, bf16 autocast or fp32, checkpoints and resume.

Normalization: the loss of an optimizer step is sum_j CE_j / N_j where CE_j sums step j's cross-entropy
over every label of the step's global batch (all micro-batches, all ranks) and N_j counts those labels,
i.e. the reference's per-step mean over non-ignored labels, taken over the whole global batch. That makes
the update independent of how the global batch is split into ranks and micro-batches.
"""
from __future__ import annotations

import glob
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from .data import load_rows
from .model import IGNORE_INDEX, Drafter, DrafterConfig, grow_drafter, load_drafter, save_drafter
from .vocab import DRAFT_VOCAB_FILE, write_draft_vocab


def setup_distributed():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return rank, world, device


def lr_at(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the base lr: linear warmup over `warmup` steps, then cosine to min_ratio at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def load_target(path: str, dtype: torch.dtype, device):
    from transformers import AutoModelForCausalLM
    target = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    target.to(device).eval()
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def target_features(target, ids: torch.Tensor):
    """Final-norm hidden states and input embeddings, [B, T, H] each, without grad."""
    with torch.no_grad():
        # base_model is the decoder stack (`model` for Llama/Mistral/Qwen2); its output is after the final norm.
        hidden = target.base_model(input_ids=ids, use_cache=False)[0]
        embs = target.get_input_embeddings()(ids)
    return hidden, embs


def batch_plan(n_rows: int, global_batch: int, step: int, seed: int):
    """Row indices of the global batch for optimizer step `step`: epochs are seeded permutations, dropping the
    last partial batch, so any step's batch is known without replaying the data (exact resume)."""
    per_epoch = n_rows // global_batch
    if per_epoch == 0:
        raise ValueError(f"{n_rows} training rows are fewer than one global batch of {global_batch}")
    epoch, within = divmod(step, per_epoch)
    perm = torch.randperm(n_rows, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    return perm[within * global_batch:(within + 1) * global_batch], epoch


def tau_estimate(top1: list[float]) -> float:
    """Expected tokens per step of a greedy single-beam chain: 1 + sum_k prod_{j<=k} top1_j (treats the
    teacher-forced per-step top-1 accuracies as independent acceptance probabilities)."""
    total, run = 1.0, 1.0
    for a in top1:
        run *= a
        total += run
    return total


def accumulate_metrics(model, target, ids, labels, args, device, autocast):
    """Summed CE, counts and top-k hits over rows (no grad), in batches."""
    K = args.predict_n
    ce = torch.zeros(K, dtype=torch.float64)
    cnt = torch.zeros(K, dtype=torch.float64)
    hits = torch.zeros(K, 5, dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, ids.shape[0], args.batch):
            i, y = ids[s:s + args.batch].to(device), labels[s:s + args.batch].to(device)
            hidden, embs = target_features(target, i)
            with autocast():
                c, n, h = model(hidden, embs, y, K, top_k=5, chunk=args.loss_chunk, checkpoint=False)
            ce += c.double().cpu()
            cnt += n.double().cpu()
            hits += h.double().cpu()
    return ce, cnt, hits


def summarize(ce, cnt, hits) -> dict:
    K = ce.shape[0]
    safe = cnt.clamp(min=1)
    out = {"loss": float((ce / safe).sum()), "tokens": [int(c) for c in cnt]}
    for j in range(K):
        out[f"redrafter{j}_loss"] = float(ce[j] / safe[j])
        for k in range(hits.shape[1]):
            out[f"redrafter{j}_top{k + 1}"] = float(hits[j, k] / safe[j])
    out["tau_estimate"] = tau_estimate([out[f"redrafter{j}_top1"] for j in range(K)])
    return out


def rng_state() -> dict:
    s = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_checkpoint(out_dir: str, model: Drafter, opt, sched, step: int, args) -> str:
    path = os.path.join(out_dir, f"checkpoint-{step}")
    save_drafter(model, path)
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                "rng": rng_state(), "args": vars(args)}, os.path.join(path, "trainer_state.pt"))
    return path


def latest_checkpoint(out_dir: str) -> str | None:
    found = [(int(p.rsplit("-", 1)[1]), p) for p in glob.glob(os.path.join(out_dir, "checkpoint-*"))
             if p.rsplit("-", 1)[1].isdigit() and os.path.exists(os.path.join(p, "trainer_state.pt"))]
    return max(found)[1] if found else None


def train(args) -> dict:
    rank, world, device = setup_distributed()
    is_main = rank == 0

    def log(*a):
        if is_main:
            print(*a, flush=True)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.dtype == "bf16" and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    target_dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    target = load_target(args.target, target_dtype, device)
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(args.target)

    # Data: self-distilled rows, or the data itself.
    os.makedirs(args.output, exist_ok=True)
    if args.distill_contexts > 0:
        from .distill import distill_rows
        ids, labels = distill_rows(args, target, tokenizer, device, rank, world, log)
    else:
        ids, labels = load_rows(args.data, tokenizer, args.seq_len, log)
    n_eval = max(1, int(round(ids.shape[0] * args.eval_fraction))) if args.eval_fraction > 0 else 0
    perm = torch.randperm(ids.shape[0], generator=torch.Generator().manual_seed(args.seed))
    eval_idx, train_idx = perm[:n_eval], perm[n_eval:]
    eval_ids, eval_labels = ids[eval_idx], labels[eval_idx]
    ids, labels = ids[train_idx], labels[train_idx]
    global_batch = args.batch * args.grad_accum * world
    log(f"data: {ids.shape[0]} training rows, {n_eval} held-out rows of {ids.shape[1]} tokens; "
        f"global batch {global_batch} = {args.batch} x {args.grad_accum} accum x {world} ranks")

    vocab = target.get_input_embeddings().weight.shape[0]
    H = target.config.get_text_config().hidden_size if hasattr(target.config, "get_text_config") \
        else target.config.hidden_size
    cfg = DrafterConfig(hidden_size=H, vocab_size=vocab, exit_dim=args.exit_dim or 2 * H,
                        num_draft_layers=args.layers, rnn=not args.no_rnn)
    torch.manual_seed(args.seed)
    if args.init:
        # Fine-tune: the starting drafter's architecture wins over --layers/--exit-dim/--no-rnn.
        cfg_path = os.path.join(args.init, "config.json")
        with open(cfg_path) as f:
            cfg = DrafterConfig.from_dict(json.load(f), cfg_path)
        if (cfg.hidden_size, cfg.vocab_size) != (H, vocab):
            raise ValueError(f"{cfg_path}: drafter hidden_size {cfg.hidden_size} / vocab_size "
                             f"{cfg.vocab_size} do not match the target's {H} / {vocab}")
        model = load_drafter(args.init)
        if args.grow_layers:
            n = cfg.num_draft_layers
            if args.grow_layers < n:
                raise ValueError(f"--grow-layers {args.grow_layers}: {cfg_path} already has {n} ResBlocks")
            model = grow_drafter(model, args.grow_layers)
            cfg = model.config
            log(f"drafter: grew {n} -> {cfg.num_draft_layers} ResBlocks (the new ones start as the identity)")
        model = model.to(device)
        log(f"drafter: starting from {args.init}")
    else:
        model = Drafter(cfg).to(device)
    log(f"drafter: hidden {H}, vocab {vocab}, exit_dim {cfg.exit_dim}, layers {cfg.num_draft_layers}, "
        f"rnn {cfg.rnn}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, K={args.predict_n}")
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                            betas=(0.9, 0.999), eps=1e-8)
    warmup = args.warmup_steps if args.warmup_steps >= 0 else int(round(args.warmup_ratio * args.max_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_at(s, args.max_steps, max(1, warmup), args.min_lr_ratio))

    step = 0
    resume = latest_checkpoint(args.output) if args.resume == "auto" else args.resume
    if resume:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(os.path.join(resume, "model.safetensors"), device=str(device)))
        # CPU: RNG states must stay CPU byte tensors; the optimizer moves its state to the parameters itself.
        st = torch.load(os.path.join(resume, "trainer_state.pt"), map_location="cpu", weights_only=False)
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        step = st["step"]
        set_rng_state(st["rng"])
        log(f"resumed from {resume} at step {step}")

    use_autocast = args.dtype == "bf16"

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast)

    K = args.predict_n
    # Soft targets: the target's LM head (frozen) turns its hidden states into the distribution to fit.
    teacher_head = target.get_output_embeddings() if args.soft_weight > 0 else None
    if teacher_head is not None:
        log(f"loss: (1 - {args.soft_weight}) x CE + {args.soft_weight} x soft targets at temperature "
            f"{args.soft_temperature} (the target's own distribution; held-out loss stays plain CE)")
    stop_at = min(args.max_steps, args.stop_at_step or args.max_steps)
    t_start = time.time()
    t_log, tok_log = time.time(), 0
    last_metrics = None
    while step < stop_at:
        rows, epoch = batch_plan(ids.shape[0], global_batch, step, args.seed)
        mine = rows[rank * args.batch * args.grad_accum:(rank + 1) * args.batch * args.grad_accum]
        # Label counts of the whole global batch per step j, so every micro-batch divides by the same N_j.
        # Every rank holds all rows, so each computes the same global counts without communication.
        global_labels = labels[rows]
        counts = torch.stack([global_labels[:, j + 2:].ne(IGNORE_INDEX).sum() for j in range(K)])
        denom = counts.clamp(min=1).float().to(device)
        ce_tot = torch.zeros(K, device=device)
        hit_tot = torch.zeros(K, 5, device=device)
        model.train()
        for m in range(args.grad_accum):
            mb = mine[m * args.batch:(m + 1) * args.batch]
            x, y = ids[mb].to(device), labels[mb].to(device)
            hidden, embs = target_features(target, x)
            sync = m == args.grad_accum - 1 or world == 1
            ctx = ddp.no_sync() if (world > 1 and not sync) else _null()
            with ctx:
                with autocast():
                    ce, _, hits = ddp(hidden, embs, y, K, top_k=5, chunk=args.loss_chunk,
                                      checkpoint=args.head_checkpoint, teacher_head=teacher_head,
                                      soft_weight=args.soft_weight, soft_temperature=args.soft_temperature)
                loss = (ce / denom).sum() * world  # DDP averages gradients over ranks
                loss.backward()
            ce_tot += ce.detach()
            hit_tot += hits.detach().float()
            tok_log += int(x.numel())
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if args.time_schedule and step >= warmup:
            # After the (step-counted) warmup the cosine follows the larger of step and wall-time progress,
            # so it reaches its floor by --max-minutes.
            done = min(1.0, (step - warmup) / max(1, args.max_steps - warmup))
            done = max(done, min(1.0, (time.time() - t_start) / 60 / args.max_minutes))
            mult = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * done))
            for g in opt.param_groups:
                g["lr"] = args.lr * mult

        out_of_time = args.max_minutes > 0 and (time.time() - t_start) / 60 >= args.max_minutes
        if world > 1:
            flag = torch.tensor([1.0 if out_of_time else 0.0], device=device)
            dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if step % args.log_every == 0 or step == stop_at or out_of_time:
            if world > 1:
                dist.all_reduce(ce_tot)
                dist.all_reduce(hit_tot)
            top1 = [float(hit_tot[j, 0] / denom[j]) for j in range(K)]
            dt = time.time() - t_log
            log(f"step {step}/{args.max_steps} epoch {epoch} loss {float((ce_tot / denom).sum()):.4f} "
                f"lr {opt.param_groups[0]['lr']:.2e} top1 {' '.join(f'{a:.3f}' for a in top1)} "
                f"tau~{tau_estimate(top1):.2f} {tok_log * world / max(dt, 1e-9):.0f} tok/s"
                + (f" peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if device.type == "cuda" else ""))
            t_log, tok_log = time.time(), 0
        if args.eval_every > 0 and step % args.eval_every == 0 and n_eval and step < stop_at:
            last_metrics = evaluate(model, target, eval_ids, eval_labels, args, device, autocast, rank, world)
            log(format_eval(step, last_metrics))
        if args.save_every > 0 and step % args.save_every == 0 and step < stop_at and not out_of_time:
            if is_main:
                log(f"saved {save_checkpoint(args.output, model, opt, sched, step, args)}")
        if out_of_time:
            log(f"stopping at step {step}: --max-minutes {args.max_minutes} reached")
            break

    if is_main and step < args.max_steps:
        save_checkpoint(args.output, model, opt, sched, step, args)  # resumable
    if n_eval:
        last_metrics = evaluate(model, target, eval_ids, eval_labels, args, device, autocast, rank, world)
        log(format_eval(step, last_metrics))
    if is_main:
        save_drafter(model, args.output, torch.bfloat16 if args.save_dtype == "bf16" else torch.float32)
        with open(os.path.join(args.output, "metrics.json"), "w") as f:
            json.dump({"step": step, "eval": last_metrics, "minutes": (time.time() - t_start) / 60}, f, indent=2)
        dv = write_draft_vocab(torch.cat([labels, eval_labels]), vocab, args.output, args.draft_vocab_coverage)
        log(f"wrote drafter to {args.output} (config.json, model.safetensors, metrics.json, {DRAFT_VOCAB_FILE}: "
            f"default_size {dv['default_size'] or 'none (all tokens)'}, {dv['distinct_tokens_seen']} of {vocab} "
            f"tokens among {dv['labels_counted']} labels)")
    if world > 1:
        dist.barrier()
    return {"step": step, "eval": last_metrics, "model": model}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def evaluate(model, target, ids, labels, args, device, autocast, rank, world) -> dict:
    model.eval()
    ce, cnt, hits = accumulate_metrics(model, target, ids[rank::world], labels[rank::world], args, device, autocast)
    if world > 1:
        t = torch.cat([ce, cnt, hits.flatten()]).to(device)
        dist.all_reduce(t)
        t = t.cpu()
        K = ce.shape[0]
        ce, cnt, hits = t[:K], t[K:2 * K], t[2 * K:].view(K, -1)
    model.train()
    return summarize(ce, cnt, hits)


def format_eval(step: int, m: dict) -> str:
    K = len(m["tokens"])
    lines = [f"eval step {step}: loss {m['loss']:.4f} tau~{m['tau_estimate']:.3f} "
             f"(1 + sum_k prod_(j<=k) top1_j; greedy single-beam estimate)"]
    for j in range(K):
        accs = " ".join(f"{m[f'redrafter{j}_top{k}']:.3f}" for k in range(1, 6) if f"redrafter{j}_top{k}" in m)
        lines.append(f"  step {j + 1}: top1..5 {accs}  loss {m[f'redrafter{j}_loss']:.4f}")
    return "\n".join(lines)
