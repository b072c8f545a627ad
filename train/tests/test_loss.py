import math

import torch

from redrafter_train.loss import drafter_loss, drafter_loss_sums
from redrafter_train.model import Drafter, DrafterConfig

# The reference's loss-test fixture (apple/ml-recurrent-drafter recurrent_drafting/train/loss_test.py):
# logits [next_n=2, batch=1, seq=4, vocab=3], labels [[0, 1, 2, 1]], top_k 3 -> 1.6388.
FIXTURE_LOGITS = torch.tensor([
    [[[-4.2755, -4.0159, -5.4326], [-7.3534, -5.2731, -4.7144], [-6.3034, -5.6929, -4.1427],
      [-4.4837, -4.3300, -6.1975]]],
    [[[-5.6221, -2.1564, -5.9357], [-2.7976, -5.3193, -4.0888], [-4.9951, -4.7358, -6.5123],
      [-4.8608, -4.8744, -6.2276]]],
])
FIXTURE_LABELS = torch.tensor([[0, 1, 2, 1]])


def test_reference_fixture_1_6388():
    loss, log = drafter_loss(FIXTURE_LOGITS, FIXTURE_LABELS, 2, 3)
    assert torch.allclose(loss, torch.tensor(1.6388), atol=1e-4), loss
    assert set(log) >= {"redrafter0_top1", "redrafter1_top3", "redrafter0_loss", "redrafter1_loss"}


def test_fixture_by_hand():
    # Step 0 pairs positions 0,1 with labels 2,1; step 1 pairs position 0 with label 1.
    def ce(row, y):
        return -(row[y] - math.log(sum(math.exp(v) for v in row)))
    L = FIXTURE_LOGITS.tolist()
    step0 = (ce(L[0][0][0], 2) + ce(L[0][0][1], 1)) / 2
    step1 = ce(L[1][0][0], 1)
    loss, log = drafter_loss(FIXTURE_LOGITS, FIXTURE_LABELS, 2, 3)
    assert abs(float(loss) - (step0 + step1)) < 1e-5
    assert abs(log["redrafter0_loss"] - step0) < 1e-5
    # top-1 of step 0: argmax of row 0 is 1 (label 2: miss), of row 1 is 2 (label 1: miss); top-3 always hits.
    assert log["redrafter0_top1"] == 0.0 and log["redrafter0_top3"] == 1.0
    assert log["redrafter1_top1"] == 1.0  # row [-5.62, -2.16, -5.94] argmax 1 == label 1


def test_ignored_labels_are_excluded():
    masked = FIXTURE_LABELS.clone()
    masked[0, 2] = -100  # drops step 0's first pair; the mean is over the remaining label only
    loss, log = drafter_loss(FIXTURE_LOGITS, masked, 2, 3)
    row = FIXTURE_LOGITS[0, 0, 1]
    assert abs(log["redrafter0_loss"] - float(-torch.log_softmax(row, -1)[1])) < 1e-6


def test_lean_sums_match_reference_formula():
    torch.manual_seed(0)
    cfg = DrafterConfig(hidden_size=8, vocab_size=60, exit_dim=12, num_draft_layers=2, rnn=True)
    model = Drafter(cfg)
    B, T, K = 3, 11, 4
    hidden, embs = torch.randn(B, T, 8), torch.randn(B, T, 8)
    labels = torch.randint(0, 60, (B, T))
    labels[0, :5] = -100
    labels[2, 7:] = -100
    inputs = model.step_inputs(hidden, embs, K)
    logits = torch.stack([model.head(x) for x in inputs])
    ref, log = drafter_loss(logits, labels, K, 5)
    ce, cnt, hits = drafter_loss_sums(model, inputs, labels, top_k=5, chunk=4)
    assert torch.allclose((ce / cnt).sum(), ref, atol=1e-5)
    for j in range(K):
        for k in range(1, 6):
            assert abs(float(hits[j, k - 1] / cnt[j]) - log[f"redrafter{j}_top{k}"]) < 1e-6
    # Gradients through the checkpointed chunks equal those of the plain formula.
    (ce / cnt).sum().backward()
    g1 = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref2, _ = drafter_loss(torch.stack([model.head(x) for x in model.step_inputs(hidden, embs, K)]), labels, K, 1)
    ref2.backward()
    for a, p in zip(g1, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)


def _soft_setup():
    torch.manual_seed(1)
    cfg = DrafterConfig(hidden_size=8, vocab_size=30, exit_dim=12, num_draft_layers=1, rnn=True)
    model = Drafter(cfg)
    teacher = torch.nn.Linear(8, 30, bias=False)
    B, T, K = 2, 9, 3
    hidden, embs = torch.randn(B, T, 8), torch.randn(B, T, 8)
    labels = torch.randint(0, 30, (B, T))
    labels[1, 6:] = -100
    return model, teacher, hidden, embs, labels, K


def _soft_by_hand(model, teacher, hidden, embs, labels, K, w, temp):
    """Per step j: sum over kept rows of (1 - w) CE + w T^2 CE(softmax(teacher / T), student / T)."""
    out = []
    T_ = hidden.shape[1]
    for j, x in enumerate(model.step_inputs(hidden, embs, K)):
        y = labels[:, j + 2:]
        keep = y.ne(-100)
        s = model.head(x[:, : -(j + 2)][keep])
        t = teacher(hidden[:, j + 1: T_ - 1][keep]).detach()
        ce = torch.nn.functional.cross_entropy(s, y[keep], reduction="sum")
        soft = -((t / temp).softmax(-1) * (s / temp).log_softmax(-1)).sum() * temp ** 2
        out.append((1 - w) * ce + w * soft)
    return torch.stack(out)


def test_soft_targets_match_the_formula_and_its_gradient():
    model, teacher, hidden, embs, labels, K = _soft_setup()
    for w, temp in ((0.5, 1.0), (1.0, 2.0)):
        want = _soft_by_hand(model, teacher, hidden, embs, labels, K, w, temp)
        model.zero_grad()
        want.sum().backward()
        g_want = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        got, cnt, _ = model(hidden, embs, labels, K, chunk=4, checkpoint=True, teacher_head=teacher,
                            soft_weight=w, soft_temperature=temp)
        assert torch.allclose(got, want, atol=1e-4), (w, temp, got, want)
        got.sum().backward()
        for a, p in zip(g_want, model.parameters()):
            assert torch.allclose(a, p.grad, atol=1e-5), (w, temp)
        assert teacher.weight.grad is None, "the teacher stays frozen"
    # The soft term moved the loss: w = 1 is not the plain CE.
    plain, _, _ = model(hidden, embs, labels, K, chunk=4)
    assert not torch.allclose(got, plain)


def test_soft_weight_zero_is_the_reference_loss():
    model, teacher, hidden, embs, labels, K = _soft_setup()
    a, _, ha = model(hidden, embs, labels, K, chunk=4)
    b, _, hb = model(hidden, embs, labels, K, chunk=4, teacher_head=teacher, soft_weight=0.0)
    assert torch.equal(a, b) and torch.equal(ha, hb)


def test_soft_targets_need_the_teacher():
    model, _, hidden, embs, labels, K = _soft_setup()
    try:
        drafter_loss_sums(model, model.step_inputs(hidden, embs, K), labels, soft_weight=0.5)
    except ValueError as e:
        assert "teacher_head and teacher_hidden" in str(e)
    else:
        raise AssertionError("soft_weight without a teacher was accepted")
