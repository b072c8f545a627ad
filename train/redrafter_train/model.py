"""The recurrent drafter, as Apple's ml-recurrent-drafter defines it (modeling_drafter.py, train/model.py).

Checkpoint compatibility is the point: parameter names, config.json keys and the forward computation match
the reference, so a directory written by `save_drafter` loads in the reference (AutoModel with its
DrafterConfig registered), in its MLX port, and in this project's TypeScript drafter.

    state   s' = SiLU(rnn_w(e) + rnn_u(s))   (rnn; rnn_u has the bias)   or   s' = e + s;  s = 0 at start
    input   x  = [h ; s']                     (context first)
    head       = input_proj (only when exit_dim != 2H) -> ResBlocks x + SiLU(Ax + b) -> Linear(E -> V, no bias)
    inference  q = log_softmax(top50(logits - rowmax))   values below the 50th largest -> -50000
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

MODEL_TYPE = "recurrent_drafting_drafter"
LOG_0 = -50000.0
WARP_TOP_K = 50
IGNORE_INDEX = -100


@dataclass
class DrafterConfig:
    hidden_size: int
    vocab_size: int
    exit_dim: int
    num_draft_layers: int
    rnn: bool = True

    def to_dict(self) -> dict:
        # The reference's keys; num_lookback_tokens is unused there and written as its class default.
        return {
            "architectures": ["Drafter"],
            "model_type": MODEL_TYPE,
            "hidden_size": self.hidden_size,
            "vocab_size": self.vocab_size,
            "exit_dim": self.exit_dim,
            "num_draft_layers": self.num_draft_layers,
            "num_lookback_tokens": -1,
            "rnn": self.rnn,
            "torch_dtype": "float32",
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json") -> "DrafterConfig":
        if d.get("model_type") != MODEL_TYPE:
            raise ValueError(f"{where}: field 'model_type' is {d.get('model_type')!r}, expected {MODEL_TYPE!r}")
        for key in ("hidden_size", "vocab_size", "num_draft_layers"):
            if not isinstance(d.get(key), int):
                raise ValueError(f"{where}: field {key!r} missing or not an integer")
        exit_dim = d.get("exit_dim", -1)
        if exit_dim == -1:
            exit_dim = 2 * d["hidden_size"]
        # emb_norm / rms_norm_eps (MLX) and num_lookback_tokens are never used by the forward pass.
        return cls(d["hidden_size"], d["vocab_size"], exit_dim, d["num_draft_layers"], bool(d.get("rnn", False)))


class ResBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.silu(self.linear(x))


def warp_logits(logits: torch.Tensor, top_k: int = WARP_TOP_K) -> torch.Tensor:
    """Subtract the row max, then set every value strictly below the top_k-th largest to LOG_0."""
    logits = logits - logits.max(dim=-1, keepdim=True).values
    k = min(top_k, logits.shape[-1])
    threshold = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < threshold, LOG_0)


class Drafter(nn.Module):
    def __init__(self, cfg: DrafterConfig):
        super().__init__()
        self.config = cfg
        if cfg.exit_dim != 2 * cfg.hidden_size:
            self.input_proj = nn.Linear(2 * cfg.hidden_size, cfg.exit_dim, bias=True)
        self.lm_head = nn.Sequential(
            *[ResBlock(cfg.exit_dim) for _ in range(cfg.num_draft_layers)],
            nn.Linear(cfg.exit_dim, cfg.vocab_size, bias=False),
        )
        if cfg.rnn:
            self.rnn_u = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=True)
            self.rnn_w = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)

    # --- pieces shared by training and inference -------------------------------------------------------
    def update_state(self, state: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.config.rnn:
            return F.silu(self.rnn_w(emb) + self.rnn_u(state))
        return emb + state

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 2H] -> [..., V] raw logits (no warp)."""
        if hasattr(self, "input_proj"):
            x = self.input_proj(x)
        return self.lm_head(x)

    # --- training ----------------------------------------------------------------------------------------
    def step_inputs(self, hidden: torch.Tensor, embs: torch.Tensor, next_n: int) -> list[torch.Tensor]:
        """Teacher-forced head inputs for all positions at once (reference train/model.py).

        hidden, embs: [B, T, H] (target final-norm hidden states; target input embeddings of the tokens).
        Returns next_n tensors [B, T, 2H]; entry j at position t sees h_t and e_{t+1..t+j+1} and predicts
        token t+j+2. The roll wraps around at the end; only positions whose labels are cut off see it.
        """
        state = torch.zeros_like(embs)
        out = []
        for _ in range(next_n):
            embs = torch.roll(embs, -1, dims=1)
            state = self.update_state(state, embs)
            out.append(torch.cat((hidden, state), dim=-1))
        return out

    def forward(self, hidden: torch.Tensor, embs: torch.Tensor, labels: torch.Tensor, next_n: int,
                top_k: int = 5, chunk: int = 8192, checkpoint: bool = True, teacher_head=None,
                soft_weight: float = 0.0, soft_temperature: float = 1.0):
        """Training forward: per-step cross-entropy sums and top-k hit counts (see loss.drafter_loss_sums);
        with soft_weight > 0, mixed with soft targets from teacher_head on `hidden`."""
        from .loss import drafter_loss_sums
        return drafter_loss_sums(self, self.step_inputs(hidden, embs, next_n), labels, top_k, chunk, checkpoint,
                                 teacher_head, hidden if soft_weight > 0 else None, soft_weight, soft_temperature)

    # --- inference (the reference's beam search; used for fixtures and parity) ---------------------------
    def log_probs(self, ctx: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return warp_logits(self.head(torch.cat((ctx, state), dim=-1))).log_softmax(dim=-1)

    @torch.no_grad()
    def beam_search(self, ctx: torch.Tensor, init_token: torch.Tensor, embedding: torch.Tensor,
                    width: int, length: int):
        """Reference beam search. ctx [B, H], init_token [B], embedding [V, H].

        Returns beams [B, W, L] (column 0 = init token), q [B, W, L-1, V] (the chosen parents' rows), and a
        trace per step of (tokens [B, W], parents [B, W], rows [B, W, V]) in the DraftRound step convention:
        the tokens fed in, the beams whose state they continue, the log-prob rows computed.
        """
        B, H = ctx.shape
        V = embedding.shape[0]
        score = torch.full((B, width), LOG_0, dtype=torch.float32)
        score[:, 0] = 0.0
        context = ctx[:, None, :].expand(B, width, H)
        beams = init_token[:, None, None].expand(B, width, 1).clone()
        state = torch.zeros(B, width, H, dtype=ctx.dtype)
        parents = torch.zeros(B, width, dtype=torch.long)
        prev_state = state
        q = torch.zeros(B, width, 0, V)
        trace = []
        for _ in range(length - 1):
            tokens = beams[..., -1]
            state = self.update_state(torch.gather(prev_state, 1, parents[..., None].expand(B, width, H)),
                                      embedding[tokens])
            lp = self.log_probs(context, state)
            trace.append((tokens.clone(), parents.clone(), lp.clone()))
            score, idx = torch.topk((lp + score[..., None]).reshape(B, width * V), width, dim=-1)
            parents, tok = idx // V, idx % V
            beams = torch.cat([torch.gather(beams, 1, parents[..., None].expand(-1, -1, beams.shape[-1])),
                               tok[..., None]], dim=-1)
            q = torch.cat([torch.gather(q, 1, parents[..., None, None].expand(-1, -1, q.shape[2], V)),
                           torch.gather(lp, 1, parents[..., None].expand(-1, -1, V))[:, :, None]], dim=2)
            prev_state = state
        return beams, q, trace


def save_drafter(model: Drafter, out_dir: str, dtype: torch.dtype = torch.float32) -> None:
    """config.json + model.safetensors with the reference's tensor names."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = model.config.to_dict()
    cfg["torch_dtype"] = str(dtype).replace("torch.", "")
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    # metadata format=pt: transformers refuses safetensors files without it.
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})


def grow_drafter(model: Drafter, layers: int) -> Drafter:
    """A copy of `model` with `layers` ResBlocks that computes exactly what `model` does.

    The new blocks go after the existing ones, just before the vocabulary head, with zero weight and bias:
    each is then the identity (x + SiLU(0) = x), yet trainable (SiLU'(0) = 1/2 lets gradients reach it). So a
    deeper drafter can start from a trained shallower one instead of from scratch.
    """
    n = model.config.num_draft_layers
    if layers < n:
        raise ValueError(f"grow_drafter: the drafter has {n} ResBlocks; cannot grow it to {layers}")
    cfg = replace(model.config, num_draft_layers=layers)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state[f"lm_head.{layers}.weight"] = state.pop(f"lm_head.{n}.weight")
    for i in range(n, layers):
        state[f"lm_head.{i}.linear.weight"] = torch.zeros(cfg.exit_dim, cfg.exit_dim)
        state[f"lm_head.{i}.linear.bias"] = torch.zeros(cfg.exit_dim)
    grown = Drafter(cfg)
    grown.load_state_dict(state)  # strict: every tensor accounted for
    return grown


def load_drafter(path: str) -> Drafter:
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = DrafterConfig.from_dict(json.load(f), cfg_path)
    model = Drafter(cfg)
    state = load_file(os.path.join(path, "model.safetensors"))
    state.pop("emb_norm.weight", None)  # MLX-only, unused
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}/model.safetensors: missing tensors {missing}, unexpected tensors {unexpected}")
    return model
