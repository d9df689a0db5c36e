"""The saturation experiment (seed 003, Figures 2b, 12, 3) against closed forms on a saturating toy
whose logit along the path is ``min(10 alpha, 6)``, and against ``interior_gradients``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from attribkit import interior_gradients
from attribkit.core.errors import InputError
from attribkit.experiments import experiments
from attribkit.experiments._paths import (
    default_layers,
    logit_network,
    path_activity,
    path_gradients,
    reach_alpha,
)
from attribkit.experiments.saturation import layer_table, magnitude_table, study, summary_table

X = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)  # sum 10


def _toy() -> nn.Sequential:
    """logits (r, -r) with r = min(ReLU(x1 + x2 + x3 + x4), 6): on alpha x, r = min(10 alpha, 6)."""
    first = nn.Linear(4, 1).double()
    last = nn.Linear(1, 2).double()
    with torch.no_grad():
        first.weight.fill_(1.0)
        first.bias.zero_()
        last.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        last.bias.zero_()
    return nn.Sequential(first, nn.ReLU6(), last).eval()


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_path_activity_closed_form_and_model_untouched() -> None:
    net = _toy()
    flags = [p.requires_grad for p in net.parameters()]
    alphas = torch.linspace(0, 1, 21, dtype=torch.float64)
    act = path_activity(net, X, baseline=0.0, alphas=alphas,
                        layers={"sum": net[0], "clip": net[1]}, batch_size=4)
    r = torch.clamp(10 * alphas, max=6.0)
    assert int(act.target[0]) == 0
    torch.testing.assert_close(act.logit[0], r, rtol=0, atol=1e-12)
    # softmax of (r, -r): sigmoid(2 r)
    torch.testing.assert_close(act.probability[0], torch.sigmoid(2 * r), rtol=0, atol=1e-12)
    # the sum layer: |10 alpha - 10| / 10; the ReLU6 layer: (6 - min(10 alpha, 6)) / 6, flat
    # (saturated) from alpha = 0.6 on
    torch.testing.assert_close(act.l2["sum"][0], 1 - alphas, rtol=0, atol=1e-12)
    torch.testing.assert_close(act.l2["clip"][0], (6 - r) / 6, rtol=0, atol=1e-12)
    assert float(act.l2["clip"][0, 12:].abs().max()) == 0.0
    # one-dimensional activations of the same sign: cosine distance 0 (alpha > 0)
    assert float(act.cosine["sum"][0, 1:].abs().max()) < 1e-12
    # 90 % of the logit's rise (5.4) is first reached at alpha = 0.55 on this grid
    assert float(reach_alpha(act.alphas, act.logit)[0]) == pytest.approx(0.55)
    # the model is as given: no hooks, same flags
    for m in net.modules():
        assert not m._forward_hooks and not m._backward_hooks
    assert [p.requires_grad for p in net.parameters()] == flags
    assert not net.training


def test_path_activity_refuses_alphas_not_ending_at_one() -> None:
    with pytest.raises(InputError, match="end at 1"):
        path_activity(_toy(), X, baseline=0.0, alphas=torch.tensor([0.0, 0.5]), layers={})


def test_path_gradients_closed_form() -> None:
    # d r / d x_i = 1 while 10 alpha < 6, else 0; d sigmoid(2 r) / d x_i = 2 s (1 - s) dr/dx_i
    alphas = torch.tensor([0.1, 0.3, 0.7, 1.0], dtype=torch.float64)
    prob, logit = path_gradients(_toy(), X, baseline=0.0, alphas=alphas,
                                 target=torch.tensor([0]), batch_size=3)
    torch.testing.assert_close(logit[0], torch.tensor([1.0, 1.0, 0.0, 0.0],
                                                      dtype=torch.float64), rtol=0, atol=1e-12)
    want = [2 * _sigmoid(2 * r) * (1 - _sigmoid(2 * r)) for r in (1.0, 3.0)] + [0.0, 0.0]
    torch.testing.assert_close(prob[0], torch.tensor(want, dtype=torch.float64), rtol=1e-12,
                               atol=1e-15)


def test_path_gradients_match_interior_gradients_on_a_cnn() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(16, 5)).double().eval()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    alphas = torch.tensor([0.05, 0.5, 1.0], dtype=torch.float64)
    target = net(x).argmax(dim=1)
    prob, logit = path_gradients(net, x, baseline=0.0, alphas=alphas, target=target)
    for model, mine in ((nn.Sequential(net, nn.Softmax(dim=-1)), prob), (net, logit)):
        ref = interior_gradients(model, x, target=target, baseline=torch.zeros_like(x),
                                 alphas=alphas).mean_magnitude()
        torch.testing.assert_close(mine, ref.to(torch.float64), rtol=1e-10, atol=1e-14)


def test_default_layers_and_logit_network() -> None:
    class Blocks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._blocks = nn.ModuleList(nn.Identity() for _ in range(16))

    assert list(default_layers(Blocks())) == ["_blocks.3", "_blocks.7", "_blocks.11",
                                              "_blocks.15"]
    net = _toy()
    assert logit_network(nn.Sequential(net, nn.Softmax(dim=-1))) is net
    assert logit_network(net) is net
    with pytest.raises(InputError, match="logits"):
        logit_network(nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=-1), nn.Identity()))


def test_tables_on_the_toy() -> None:
    names = {0: "up", 1: "down"}
    net = _toy()
    s = study(net, {"a": X, "b": 0.5 * X}, baseline=0.0, class_name=names.__getitem__,
              alphas=torch.linspace(0, 1, 21, dtype=torch.float64),
              grad_alphas=(0.1, 0.5, 1.0), layers={"clip": net[1]})
    _header, rows = summary_table(s)
    # photo a: logit 0 -> 6, 90 % at 0.55; photo b (sum 5, never clipped): 0 -> 5, at 0.9
    assert rows[0][1] == "up" and rows[0][5] == pytest.approx(6.0)
    assert rows[0][7] == pytest.approx(0.55) and rows[1][7] == pytest.approx(0.9)
    # ReLU6 layer: relative L2 (6 - min(10 a, 6)) / 6 for a, (5 - 5 a) / 5 for b; median of
    # the two at alpha = 0.2: (4/6 + 0.8) / 2; cosine 0; photo b's cosine < 0.01 from alpha 0.05
    (row,) = layer_table(s)[1]
    assert row[0] == "clip" and row[1] == pytest.approx((4 / 6 + 0.8) / 2)
    with pytest.raises(InputError, match="never ran"):
        study(net, {"a": X}, baseline=0.0, class_name=names.__getitem__,
              alphas=torch.linspace(0, 1, 3, dtype=torch.float64), layers={"x": _toy()[1]})
    _header, rows = magnitude_table(s)
    assert [r[0] for r in rows] == [0.1, 0.5, 1.0]
    # logit gradient: photo a is clipped at alpha >= 0.6 (0 at alpha = 1), photo b never:
    # mean over photos at alpha = 0.1 is 1
    assert rows[0][4] == pytest.approx(1.0)


def test_section_runs_on_the_toy_demo_setup() -> None:
    from attribkit.demo.setups import toy_setup
    from attribkit.report import Report

    rep = Report("toy")
    notes = experiments("vision")["saturation"].fn(rep, toy_setup(), quick=True,
                                                   progress=False)
    page = rep.to_html()
    assert notes == []
    assert page.count("<img") == 3 and page.count("<table>") == 3
    assert "Median α at 90 % of the rise" in page


def test_variants_section_written_from_a_study(tmp_path: Path) -> None:
    from attribkit.experiments.saturation import write_variants

    names = {0: "up", 1: "down"}
    net = _toy()
    s = study(net, {"a": X, "b": 0.5 * X}, baseline=0.0, class_name=names.__getitem__,
              alphas=torch.linspace(0, 1, 11, dtype=torch.float64), grad_alphas=(0.1, 1.0),
              layers={"clip": net[1]})
    page = write_variants(s, tmp_path / "p.md", "note").read_text()
    assert page.count("<!-- saturation-variants:start -->") == 1
    assert page.count("| a | up |") == 1 and page.count("| clip |") == 1 and "note" in page


def test_variant_photos_are_the_distinct_labelled_inputs() -> None:
    pytest.importorskip("skimage")
    from attribkit.experiments.saturation import variant_photos
    from attribkit.zoo import photo_boxes

    ims = photo_boxes.labelled_images()
    photos = variant_photos()
    assert len(ims) == 34 and len(photos) == 31
    for im in ims:
        assert torch.equal(photos[im.name.split("#")[0]], im.x)
