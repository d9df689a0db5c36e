"""The AOPC experiment's own ablation loop against attribkit.evaluate.ablation_curve, and its
block ranking against a hand computation."""

from __future__ import annotations

import pytest
import torch

from attribkit.evaluate import ablation_curve
from attribkit.experiments.aopc_photos import ablation_scores, aopc_from_scores, pixel_ranks


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 12 * 12, 5)).double()


@pytest.mark.parametrize(("block", "k", "sign"), [(1, 7, "absolute"), (1, 7, "all"),
                                                  (4, 1, "absolute")])
def test_probability_and_logit_curves_match_ablation_curve(block: int, k: int, sign: str) -> None:
    net = _net()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 12, 12, generator=g, dtype=torch.float64)
    a = torch.randn(3, 3, 12, 12, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 2, 4])
    groups = None
    if block > 1:
        idx = torch.arange(12) // block
        groups = idx[:, None] * 3 + idx[None, :]
    p, lg = ablation_scores(net, x, pixel_ranks(a, block=block, sign=sign), t, fill=-1.0, k=k,
                            steps=9, batch_size=4)
    soft = torch.nn.Sequential(net, torch.nn.Softmax(dim=-1))
    for scores, model in ((p, soft), (lg, net)):
        ref = ablation_curve(model, x, a, k=k, steps=9, target=t, baseline=-1.0, groups=groups,
                             sign=sign)
        assert torch.allclose(aopc_from_scores(scores), ref.aopc_per_example, atol=1e-12)


def test_block_ranks_by_hand() -> None:
    a = torch.zeros(1, 1, 4, 5, dtype=torch.float64)
    a[0, 0, 0, 0] = -5.0  # block (0, 0): |.| sum 5
    a[0, 0, 3, 4] = 3.0   # block (1, 2), a partial block: 3
    a[0, 0, 2, 2] = 1.0   # block (1, 1): 1
    r = pixel_ranks(a, block=2)
    want = torch.tensor([[0, 0, 3, 3, 4], [0, 0, 3, 3, 4], [5, 5, 2, 2, 1], [5, 5, 2, 2, 1]])
    assert torch.equal(r[0], want)
    signed = pixel_ranks(a, block=2, sign="all")
    assert int(signed[0, 0, 0]) == 5  # the negative block goes last
    assert torch.equal(aopc_from_scores(torch.tensor([[1.0, 0.5, 0.0]]))[0],
                       torch.tensor([0.0, 0.25, 0.5]))


def test_table_columns_say_what_they_hold() -> None:
    from attribkit.experiments.aopc_photos import Protocol, header

    # the paper's protocol: 100 pixels a step, 50 steps; the early column after 10 steps
    assert header(Protocol("paper")) == [
        "ranking", "AOPC@10 (1,000 px)", "AOPC@50 (5,000 px) [95 % CI]",
        "AOPC@50 minus random [95 % CI]"]
    assert header(Protocol("blocks", block=10, k=1))[1:3] == [
        "AOPC@10 (10 10x10 blocks)", "AOPC@50 (50 10x10 blocks) [95 % CI]"]
