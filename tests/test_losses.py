import math

import pytest
import torch
import torch.nn.functional as F

from flip.losses import (
    contrastive_loss,
    distillation_targets,
    gather_batch,
    itm_loss,
    momentum_contrastive_loss,
    sample_hard_negatives,
    sigmoid_loss,
    soft_cross_entropy,
)


def _pairs(n=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1), F.normalize(torch.randn(n, d, generator=g), dim=-1)


def test_contrastive_loss_values():
    # perfect, confident alignment -> ~0; uniform logits -> log N
    assert contrastive_loss(torch.eye(4) * 100) < 1e-6
    assert contrastive_loss(torch.zeros(4, 4)).item() == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match="square"):
        contrastive_loss(torch.zeros(2, 3))


def test_momentum_itc_without_momentum_queue_or_soft_targets_is_infonce():
    img, txt = _pairs()
    img.requires_grad_(True)
    scale = torch.tensor(1 / 0.07)
    loss = momentum_contrastive_loss(img, txt, img, txt, scale, alpha=0.0)
    expected = contrastive_loss(scale * img @ txt.t())
    torch.testing.assert_close(loss, expected)


def test_momentum_itc_matches_flip_formula_with_queue_and_soft_targets():
    img, txt = _pairs(4, 8, seed=1)
    img_m, txt_m = _pairs(4, 8, seed=2)
    queue_i, queue_t = _pairs(6, 8, seed=3)
    image_keys, text_keys = torch.cat([img_m, queue_i]), torch.cat([txt_m, queue_t])
    scale, alpha = torch.tensor(10.0, requires_grad=True), 0.4
    loss = momentum_contrastive_loss(img, txt, image_keys, text_keys, scale, alpha=alpha)

    # the authors' formulation, written out: sim / temp against [batch momentum; queue], soft targets
    temp = 1 / scale.detach()
    sim_i2t, sim_t2i = img @ text_keys.t() / temp, txt @ image_keys.t() / temp
    sim_i2t_m, sim_t2i_m = img_m @ text_keys.t() / temp, txt_m @ image_keys.t() / temp
    hard = torch.zeros(4, 10)
    hard.fill_diagonal_(1)
    t_i2t = alpha * sim_i2t_m.softmax(1) + (1 - alpha) * hard
    t_t2i = alpha * sim_t2i_m.softmax(1) + (1 - alpha) * hard
    loss_i2t = -(F.log_softmax(sim_i2t, 1) * t_i2t).sum(1).mean()
    loss_t2i = -(F.log_softmax(sim_t2i, 1) * t_t2i).sum(1).mean()
    torch.testing.assert_close(loss, (loss_i2t + loss_t2i) / 2)

    # gradients reach the temperature through the student logits only
    loss.backward()
    assert scale.grad is not None and scale.grad.abs() > 0
    with pytest.raises(ValueError, match="must start"):
        momentum_contrastive_loss(img, txt, image_keys[:2], text_keys, scale)


def test_distillation_targets_are_distributions():
    t = distillation_targets(torch.randn(3, 7), alpha=0.4)
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    assert (t.diagonal() >= 0.6).all()  # the pair keeps at least 1 - alpha
    torch.testing.assert_close(distillation_targets(torch.randn(3, 7), 0.0), torch.eye(3, 7))
    assert soft_cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.5, 0.5]])).item() == pytest.approx(
        math.log(2)
    )


def test_sigmoid_loss_values():
    n = 3
    logits = torch.randn(n, n)
    labels = 2 * torch.eye(n) - 1
    expected = sum(-F.logsigmoid(labels[i, j] * logits[i, j]) for i in range(n) for j in range(n)) / n
    torch.testing.assert_close(sigmoid_loss(logits), expected)
    # confident and right: near zero; confident and wrong: large
    assert sigmoid_loss(labels * 50) < 1e-6
    assert sigmoid_loss(-labels * 50) > 100
    with pytest.raises(ValueError, match="square"):
        sigmoid_loss(torch.zeros(2, 3))


def test_hard_negatives_never_pick_positives_and_follow_similarity():
    sim = torch.tensor([[0.0, 9.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pos = torch.eye(3, 4, dtype=torch.bool)
    pos[2, 3] = True  # another caption of the same image
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_hard_negatives(sim * 3, pos, generator=g) for _ in range(200)])
    assert not pos.gather(1, draws.t()).any()  # never a positive
    # rows 0 and 1 have one very similar negative: it is (almost always) the one drawn
    assert (draws[:, 0] == 1).float().mean() > 0.95 and (draws[:, 1] == 0).float().mean() > 0.95
    # row 2: uniform over its two negatives {0, 1}
    assert set(draws[:, 2].tolist()) == {0, 1}
    with pytest.raises(ValueError, match="two different images"):
        sample_hard_negatives(torch.zeros(2, 2), torch.ones(2, 2, dtype=torch.bool))


def test_hard_negatives_fall_back_to_uniform_when_softmax_underflows():
    sim = torch.tensor([[1e4, -1e4, -1e4]])  # all the mass on the positive
    pos = torch.tensor([[True, False, False]])
    draws = {int(sample_hard_negatives(sim, pos)) for _ in range(50)}
    assert draws <= {1, 2} and draws


def test_itm_loss_labels_positives_one_and_negatives_zero():
    confident_right = itm_loss(torch.tensor([[-10.0, 10.0]]), torch.tensor([[10.0, -10.0], [10.0, -10.0]]))
    confident_wrong = itm_loss(torch.tensor([[10.0, -10.0]]), torch.tensor([[-10.0, 10.0]]))
    assert confident_right < 1e-6 and confident_wrong > 10
    assert itm_loss(torch.zeros(2, 2), torch.zeros(4, 2)).item() == pytest.approx(math.log(2))


def test_gather_batch_is_identity_on_one_process():
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_batch(x) is x
