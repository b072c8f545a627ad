import json

import pytest
import torch
from safetensors.torch import load_file

from redrafter_train.model import LOG_0, Drafter, DrafterConfig, load_drafter, save_drafter, warp_logits


def test_checkpoint_names_and_round_trip(tmp_path):
    cfg = DrafterConfig(hidden_size=4, vocab_size=70, exit_dim=8, num_draft_layers=2, rnn=True)
    m = Drafter(cfg)
    save_drafter(m, str(tmp_path))
    names = set(load_file(str(tmp_path / "model.safetensors")))
    assert names == {"lm_head.0.linear.weight", "lm_head.0.linear.bias", "lm_head.1.linear.weight",
                     "lm_head.1.linear.bias", "lm_head.2.weight", "rnn_u.weight", "rnn_u.bias", "rnn_w.weight"}
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["model_type"] == "recurrent_drafting_drafter" and conf["exit_dim"] == 8 and conf["rnn"] is True
    m2 = load_drafter(str(tmp_path))
    for (a, p), (b, q) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert a == b and torch.equal(p, q)


def test_input_proj_only_when_exit_dim_differs(tmp_path):
    m = Drafter(DrafterConfig(hidden_size=4, vocab_size=10, exit_dim=6, num_draft_layers=0, rnn=False))
    save_drafter(m, str(tmp_path))
    assert set(load_file(str(tmp_path / "model.safetensors"))) == {"input_proj.weight", "input_proj.bias",
                                                                   "lm_head.0.weight"}


def test_wrong_model_type_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4}))
    with pytest.raises(ValueError, match="model_type"):
        load_drafter(str(tmp_path))


def test_warp_keeps_ties_at_threshold():
    row = torch.tensor([[3.0] * 52 + [1.0] * 3])  # 52 values tie for the 50th place
    w = warp_logits(row)
    assert (w[0, :52] == 0).all() and (w[0, 52:] == LOG_0).all()


def test_teacher_forced_steps_equal_inference_chain():
    """Step j of the parallel training forward at position t equals the inference recurrence fed
    tokens t+1..t+j+1 with context h_t."""
    torch.manual_seed(1)
    cfg = DrafterConfig(hidden_size=6, vocab_size=20, exit_dim=12, num_draft_layers=1, rnn=True)
    m = Drafter(cfg)
    T, K = 9, 3
    hidden, embs = torch.randn(1, T, 6), torch.randn(1, T, 6)
    inputs = m.step_inputs(hidden, embs, K)
    t = 2
    state = torch.zeros(6)
    for j in range(K):
        state = m.update_state(state, embs[0, t + j + 1])
        assert torch.allclose(inputs[j][0, t], torch.cat([hidden[0, t], state]), atol=1e-6)


def test_beam_search_trace_is_consistent():
    torch.manual_seed(2)
    cfg = DrafterConfig(hidden_size=6, vocab_size=64, exit_dim=12, num_draft_layers=1, rnn=True)
    m = Drafter(cfg)
    emb = torch.randn(64, 6)
    beams, q, trace = m.beam_search(torch.randn(2, 6), torch.tensor([3, 5]), emb, width=3, length=4)
    assert beams.shape == (2, 3, 4) and q.shape == (2, 3, 3, 64)
    assert (beams[:, :, 0] == torch.tensor([[3], [5]])).all()
    # Every stored q row is one of the rows computed at that step (a chosen parent's row).
    for s, (_, _, rows) in enumerate(trace):
        for b in range(2):
            for w in range(3):
                assert any(torch.equal(q[b, w, s], rows[b, p]) for p in range(3))
    # Beams come out sorted by their joint log-probability (sum of q at the drafted tokens).
    score = torch.gather(q, 3, beams[:, :, 1:, None]).squeeze(-1).sum(-1)
    assert (score[:, :-1] >= score[:, 1:]).all()


def test_grow_drafter_starts_exactly_where_the_shallow_one_was(tmp_path):
    from redrafter_train.model import grow_drafter
    torch.manual_seed(0)
    for exit_dim, rnn in ((12, True), (8, False)):  # with input_proj (exit_dim != 2H) and without
        small = Drafter(DrafterConfig(hidden_size=4, vocab_size=30, exit_dim=exit_dim, num_draft_layers=1, rnn=rnn))
        big = grow_drafter(small, 3)
        assert big.config.num_draft_layers == 3
        ctx, state = torch.randn(5, 4), torch.randn(5, 4)
        assert torch.equal(big.log_probs(ctx, state), small.log_probs(ctx, state))
        hidden, embs = torch.randn(2, 7, 4), torch.randn(2, 7, 4)
        for a, b in zip(big.step_inputs(hidden, embs, 3), small.step_inputs(hidden, embs, 3)):
            assert torch.equal(big.head(a), small.head(b))
        # The new blocks learn: a loss step moves their weights off zero.
        big.head(torch.randn(3, 8)).sum().backward()
        assert big.lm_head[1].linear.weight.grad.abs().sum() > 0
        # Saved and loaded like any drafter (config says 3 ResBlocks; the head is lm_head.3).
        save_drafter(big, str(tmp_path / f"grown{exit_dim}"))
        names = set(load_file(str(tmp_path / f"grown{exit_dim}" / "model.safetensors")))
        assert "lm_head.3.weight" in names and "lm_head.2.linear.weight" in names
        again = load_drafter(str(tmp_path / f"grown{exit_dim}"))
        assert torch.equal(again.log_probs(ctx, state), small.log_probs(ctx, state))
    with pytest.raises(ValueError, match="cannot grow it to 0"):
        grow_drafter(small, 0)
