"""Figure 1's ablation test: the pixel selection, the control and the whole run on models whose
answer is known (one that reads only the box, one that reads only outside it)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from attribkit.experiments.ablation_offbox import (
    ablate,
    off_box_top,
    random_off_box,
    run,
    summary,
    table_rows,
)

H = W = 10


def test_off_box_top_and_ablate() -> None:
    imp = torch.arange(H * W, dtype=torch.float64).reshape(1, H, W)  # largest at the bottom
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[0, 9, :5] = True                                  # half of the top row of 10 pixels
    sel = off_box_top(imp, mask, top=0.1)
    assert int(sel.sum()) == 5 and bool(sel[0, 9, 5:].all())
    x = torch.ones(1, 3, H, W)
    z = ablate(x, sel, -2.0)
    assert float(z[:, :, 9, 5:].max()) == -2.0 and int((z == -2.0).sum()) == 15


def test_random_control_draws_as_many_off_box_pixels() -> None:
    sel = torch.zeros(2, H, W, dtype=torch.bool)
    sel[0, 0, :7] = True
    sel[1, 5, :3] = True
    mask = torch.zeros(2, H, W, dtype=torch.bool)
    mask[:, 2:8, 2:8] = True
    r = random_off_box(sel, mask, seed=0)
    assert r.flatten(1).sum(dim=1).tolist() == [7, 3]
    assert not bool((r & mask).any())


class _Reads(nn.Module):
    """Softmax of a linear map of the pixels where ``where`` is true (others ignored)."""

    def __init__(self, where: Tensor) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.where = where
        self.lin = nn.Linear(3 * H * W, 3).double()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.lin((x * self.where).flatten(1)).softmax(dim=1)
        return out


def _case(reads_box: bool) -> tuple[list, Tensor]:  # type: ignore[type-arg]
    mask = torch.zeros(2, H, W, dtype=torch.bool)
    mask[:, 2:8, 1:9] = True                               # 48 % of the image
    model = _Reads((mask if reads_box else ~mask)[:1, None].double()).eval()
    x = torch.randn(2, 3, H, W, dtype=torch.float64)
    rows = run(model, x, mask, torch.tensor([0, 2]), baseline_value=-1.0, names=["a", "b"],
               steps=8)
    return rows, mask


def test_scores_do_not_move_when_the_model_reads_only_the_box() -> None:
    rows, _ = _case(reads_box=True)
    for r in rows:
        assert r.grad_off == 0.0 and r.ig_off == 0.0 and r.area == pytest.approx(0.48)
        assert r.p_grad == r.p_ig == r.p_random == r.p
    s = summary(rows)
    assert s["grad_barely"] == s["ig_barely"] == s["random_barely"] == 2
    assert len(table_rows(rows, str)[0]) == 10


def test_scores_move_when_the_model_reads_outside_the_box() -> None:
    rows, _ = _case(reads_box=False)
    for r in rows:
        assert r.grad_off == 1.0 and r.ig_off == 1.0 and r.grad_off_after == 1.0
        assert r.p_grad != pytest.approx(r.p, abs=1e-6)
        assert r.p_random != pytest.approx(r.p, abs=1e-6)
