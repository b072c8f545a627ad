"""End-to-end trainer runs on a tiny random target (CPU, fp32): DDP equals single process, resume is exact,
self-distillation produces masked rows."""
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from redrafter_train.cli import main

TRAIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _common(env, out):
    return ["--target", env["target"], "--data", env["text"], "--output", str(out), "--seq-len", "24",
            "--layers", "1", "--predict-n", "3", "--lr", "1e-2", "--dtype", "fp32", "--eval-fraction", "0.1",
            "--log-every", "1", "--warmup-steps", "1"]


def _weights(out):
    return load_file(os.path.join(out, "model.safetensors"))


def test_ddp_two_ranks_equals_single_process(tiny_env, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main(_common(tiny_env, single) + ["--max-steps", "3", "--batch", "2", "--grad-accum", "2"]) == 0
    env = dict(os.environ, PYTHONPATH=TRAIN_DIR, OMP_NUM_THREADS="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "redrafter_train"] + _common(tiny_env, ddp) + ["--max-steps", "3", "--batch", "2"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "global batch 4 = 2 x 1 accum x 2 ranks" in r.stdout
    a, b = _weights(single), _weights(ddp)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k
    # ... and training did move the weights away from their (seeded) initialization.
    from redrafter_train.model import Drafter, DrafterConfig
    torch.manual_seed(0)
    fresh = Drafter(DrafterConfig(16, 104, 32, 1, True)).state_dict()
    assert all(not torch.allclose(fresh[k], a[k]) for k in a)


def test_resume_is_exact(tiny_env, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["--max-steps", "4", "--batch", "3"]
    assert main(_common(tiny_env, straight) + args) == 0
    assert main(_common(tiny_env, resumed) + args + ["--stop-at-step", "2"]) == 0
    assert os.path.exists(resumed / "checkpoint-2" / "trainer_state.pt")
    state = torch.load(resumed / "checkpoint-2" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 2 and state["optimizer"]["state"]
    assert main(_common(tiny_env, resumed) + args + ["--resume", "auto"]) == 0
    a, b = _weights(straight), _weights(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_self_distillation_rows(tiny_env, tmp_path):
    out = tmp_path / "distill"
    assert main(_common(tiny_env, out) + ["--max-steps", "2", "--batch", "4", "--distill-contexts", "12",
                                          "--distill-context", "8", "--distill-length", "10",
                                          "--distill-batch", "5"]) == 0
    caches = [f for f in os.listdir(out) if f.startswith("distill-")]
    assert len(caches) == 1
    blob = torch.load(out / caches[0])
    ids, labels = blob["input_ids"], blob["labels"]
    assert ids.shape == (12, 18)
    assert (labels[:, :8] == -100).all()  # no loss on the context
    # The continuation is the target's greedy output: check one row against a plain greedy decode.
    from transformers import AutoModelForCausalLM
    target = AutoModelForCausalLM.from_pretrained(tiny_env["target"]).eval()
    x = ids[:1, :8]
    with torch.no_grad():
        for _ in range(10):
            x = torch.cat([x, target(x).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    kept = labels[0, 8:] != -100
    assert torch.equal(ids[0, 8:][kept], x[0, 8:][kept])
    assert (labels[0, 8:][kept] == ids[0, 8:][kept]).all()
    # A second run reuses the cache.
    assert main(_common(tiny_env, out) + ["--max-steps", "1", "--batch", "4", "--distill-contexts", "12",
                                          "--distill-context", "8", "--distill-length", "10"]) == 0


def test_init_fine_tunes_from_an_existing_drafter(tiny_env, tmp_path):
    base, tuned, frozen = tmp_path / "base", tmp_path / "tuned", tmp_path / "frozen"
    assert main(_common(tiny_env, base) + ["--max-steps", "2", "--batch", "2", "--layers", "2"]) == 0
    # --init's architecture wins over --layers; with lr 0 the result is the starting drafter itself.
    assert main(_common(tiny_env, frozen) + ["--max-steps", "1", "--batch", "2", "--init", str(base),
                                             "--lr", "0"]) == 0
    a, b = _weights(base), _weights(frozen)
    assert a.keys() == b.keys() and "lm_head.1.linear.weight" in b
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main(_common(tiny_env, tuned) + ["--max-steps", "2", "--batch", "2", "--init", str(base)]) == 0
    c = _weights(tuned)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_grow_layers_deepens_the_init_drafter_exactly(tiny_env, tmp_path):
    import json
    base, grown = tmp_path / "base", tmp_path / "grown"
    assert main(_common(tiny_env, base) + ["--max-steps", "1", "--batch", "2"]) == 0
    # lr 0: the result is the starting drafter with two identity ResBlocks before its head.
    assert main(_common(tiny_env, grown) + ["--max-steps", "1", "--batch", "2", "--init", str(base),
                                            "--grow-layers", "3", "--lr", "0"]) == 0
    a, b = _weights(base), _weights(grown)
    assert json.loads((grown / "config.json").read_text())["num_draft_layers"] == 3
    assert torch.equal(a["lm_head.1.weight"], b["lm_head.3.weight"])
    assert torch.equal(a["lm_head.0.linear.weight"], b["lm_head.0.linear.weight"])
    for i in (1, 2):
        assert not b[f"lm_head.{i}.linear.weight"].any() and not b[f"lm_head.{i}.linear.bias"].any()
    assert main(_common(tiny_env, tmp_path / "x") + ["--max-steps", "1", "--grow-layers", "3"]) == 2


def test_init_refuses_a_drafter_of_another_size(tiny_env, tmp_path):
    import json
    import pytest
    base = tmp_path / "base"
    assert main(_common(tiny_env, base) + ["--max-steps", "1", "--batch", "2"]) == 0
    cfg = json.loads((base / "config.json").read_text())
    cfg["hidden_size"] = 32
    (base / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="hidden_size 32 / vocab_size 104 do not match"):
        main(_common(tiny_env, tmp_path / "x") + ["--max-steps", "1", "--init", str(base)])


def test_sampled_contexts_need_no_data(tiny_env, tmp_path):
    out = tmp_path / "sampled"
    common = [a for a in _common(tiny_env, out)]
    i = common.index("--data")
    del common[i:i + 2]
    assert main(common + ["--max-steps", "1", "--batch", "4", "--distill-contexts", "6", "--distill-context", "8",
                          "--distill-length", "5", "--distill-prompts", "sampled"]) == 0
    caches = [f for f in os.listdir(out) if f.startswith("distill-")]
    blob = torch.load(out / caches[0])
    ids, labels = blob["input_ids"], blob["labels"]
    assert ids.shape == (6, 13) and blob["settings"]["prompts"] == "sampled"
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_env["target"])
    bos = tok("", add_special_tokens=True)["input_ids"] or [tok.bos_token_id if tok.bos_token_id is not None
                                                            else tok.eos_token_id]
    target = AutoModelForCausalLM.from_pretrained(tiny_env["target"]).eval()
    for r in range(6):
        kept = (labels[r] != -100).nonzero().flatten()
        start = int(kept[0])  # the context: BOS, then what the target sampled
        assert ids[r, :len(bos)].tolist() == bos and 1 <= start <= 8
        with torch.no_grad():  # the continuation is the target's greedy output after that context
            x = ids[r:r + 1, :start]
            for _ in range(len(kept)):
                x = torch.cat([x, target(x).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        assert torch.equal(ids[r, kept], x[0, start:start + len(kept)])
    assert main(common + ["--max-steps", "1"]) == 2  # without --data and sampled contexts: a usage error


def test_both_mixes_data_contexts_and_sampled_ones(tiny_env, tmp_path):
    from redrafter_train.data import distill_prompts
    from transformers import AutoTokenizer
    out = tmp_path / "both"
    assert main(_common(tiny_env, out) + ["--max-steps", "1", "--batch", "4", "--distill-contexts", "7",
                                          "--distill-context", "8", "--distill-length", "5",
                                          "--distill-prompts", "both"]) == 0
    blob = torch.load(out / [f for f in os.listdir(out) if f.startswith("distill-")][0])
    ids, labels = blob["input_ids"], blob["labels"]
    assert ids.shape == (7, 13) and blob["settings"]["prompts"] == "both"
    # The first 4 (7 - 7 // 2) rows begin with the contexts cut from --data; the other 3 were sampled, so
    # their context ends where the labels start (at most 8 tokens, shorter when the sample hit an EOS).
    tok = AutoTokenizer.from_pretrained(tiny_env["target"])
    cut = distill_prompts(tiny_env["text"], tok, 4, 8, 0)
    for r in range(4):
        assert ids[r, :8].tolist() == cut[r] and int((labels[r] != -100).nonzero()[0]) == 8
    for r in range(4, 7):
        assert 1 <= int((labels[r] != -100).nonzero()[0]) <= 8


def test_time_schedule_decays_by_max_minutes(tiny_env, tmp_path, capsys):
    # A budget far below one step's time: wall-time progress is past the end at once, so the first step
    # already logs the cosine floor although --max-steps is large.
    args = _common(tiny_env, tmp_path / "timed") + ["--max-steps", "1000", "--batch", "2", "--min-lr-ratio", "0.1",
                                                    "--max-minutes", "0.00001", "--time-schedule"]
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("step 1/1000 "))
    assert " lr 1.00e-03 " in line, line  # 0.1 x --lr 1e-2
    assert main(args[:-1] + ["--max-minutes", "0", "--time-schedule"]) == 2  # needs a budget


def test_sampled_contexts_prefer_full_length(monkeypatch):
    # 8 contexts asked: 10 are sampled (a quarter more); those an EOS (id 2) cut short come last.
    from redrafter_train import distill
    calls = []

    def fake(target, prompts, gen_len, *a, **k):
        calls.append((len(prompts), gen_len))
        rows = [[1, 5, 6, 7] if i % 3 else [1, 5, 2, 7] for i in range(len(prompts))]
        return [(r, r) for r in rows]

    monkeypatch.setattr(distill, "generate_continuations", fake)

    class Tok:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [1]}

    out = distill.sample_contexts(None, Tok(), 8, 4, 64, [2], "cpu", print, seed=0)
    assert calls == [(10, 3)]
    assert out == [[1, 5, 6, 7]] * 6 + [[1, 5]] * 2  # the 6 full-length samples, then 2 cut at the EOS


def _kl_to_target(env, drafter_dir, steps=3):
    """Mean KL(target || drafter) of the drafter's first K steps over the tiny text's windows, unwarped."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from redrafter_train.model import load_drafter
    target = AutoModelForCausalLM.from_pretrained(env["target"]).eval()
    tok = AutoTokenizer.from_pretrained(env["target"])
    ids = torch.tensor(tok(open(env["text"]).read()[:400])["input_ids"])[None, :96]
    drafter = load_drafter(str(drafter_dir)).eval()
    with torch.no_grad():
        hidden = target.base_model(input_ids=ids)[0]
        embs = target.get_input_embeddings()(ids)
        total, n = 0.0, 0
        for j, x in enumerate(drafter.step_inputs(hidden, embs, steps)):
            q = drafter.head(x[:, : -(j + 2)]).log_softmax(-1)
            p = target.get_output_embeddings()(hidden[:, j + 1: -1]).log_softmax(-1)
            total += float((p.exp() * (p - q)).sum())
            n += q.shape[1]
    return total / n


def test_soft_targets_fit_the_target_distribution(tiny_env, tmp_path):
    hard, soft = tmp_path / "hard", tmp_path / "soft"
    args = ["--max-steps", "30", "--batch", "4"]
    assert main(_common(tiny_env, hard) + args) == 0
    assert main(_common(tiny_env, soft) + args + ["--soft-weight", "1", "--soft-temperature", "1"]) == 0
    kl_hard, kl_soft = _kl_to_target(tiny_env, hard), _kl_to_target(tiny_env, soft)
    # Same seed, data and steps: only the loss differs, and the soft one lands nearer the target.
    assert kl_soft < 0.9 * kl_hard, (kl_soft, kl_hard)
    assert main(_common(tiny_env, tmp_path / "x") + ["--max-steps", "1", "--soft-weight", "1.5"]) == 2
    assert main(_common(tiny_env, tmp_path / "x") + ["--max-steps", "1", "--soft-temperature", "0"]) == 2
