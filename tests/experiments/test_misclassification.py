"""Debugging a misclassification (seed 003, Figure 6): the map statistics against hand-worked
maps, the IG wiring on a small model, and (slow) the photos EfficientNet-Lite0 gets wrong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attribkit import integrated_gradients
from attribkit.experiments.misclassification import CASES, Case, diagnose, map_statistics


def test_map_statistics_by_hand() -> None:
    a = torch.zeros(4, 5, dtype=torch.float64)
    a[1, 3] = 2.0  # one bright pixel: row centre (1 + 0.5) / 4, column (3 + 0.5) / 5
    b = torch.zeros_like(a)
    b[3, 0] = 1.0
    s = map_statistics(a, b, top=0.05)  # top 5 % of 20 pixels: one pixel each
    assert s["jaccard"] == 0.0
    assert s["row_wrong"] == pytest.approx(1.5 / 4) and s["col_wrong"] == pytest.approx(3.5 / 5)
    assert s["row_right"] == pytest.approx(3.5 / 4) and s["col_right"] == pytest.approx(0.5 / 5)
    # correlation of two one-hot maps of 20 pixels: -1/19
    assert s["pearson"] == pytest.approx(-1 / 19, abs=1e-12)
    g = torch.Generator().manual_seed(0)
    m = torch.rand(10, 10, generator=g, dtype=torch.float64)
    same = map_statistics(m, 3 * m, top=0.1)
    assert same["jaccard"] == 1.0 and same["pearson"] == pytest.approx(1.0, abs=1e-12)


def test_diagnose_rows_are_chosen_then_true_class() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3), nn.Softmax(dim=-1)).double().eval()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    chosen = int(model(x).argmax())
    truth = (chosen + 1) % 3
    names = {0: "zero", 1: "one", 2: "two"}
    d = diagnose(model, x, Case("toy", names[truth], "a toy"), baseline=0.0,
                 class_name=names.__getitem__, steps=16)
    assert (d.chosen, d.truth, d.wrong) == (chosen, truth, True)
    for row, cls in enumerate((chosen, truth)):
        ref = integrated_gradients(model, x, target=cls, baseline=torch.zeros_like(x), steps=16,
                                   rule="adaptive").values
        torch.testing.assert_close(d.attribution.values[row:row + 1], ref, rtol=1e-10,
                                   atol=1e-14)
    with torch.no_grad():
        p = model(x)[0]
    assert d.p_chosen == pytest.approx(float(p[chosen])) and d.p_truth == pytest.approx(
        float(p[truth]))
    with pytest.raises(KeyError, match="no class"):
        diagnose(model, x, Case("toy", "four", ""), baseline=0.0,
                 class_name=names.__getitem__, steps=4)


@pytest.mark.slow
def test_efficientnet_gets_the_cases_wrong_and_saturates() -> None:
    """The photos of CASES are misclassified (top-1 measured 2026-12: tripod 0.94 on the
    cameraman, Egyptian Mau 0.39 on Chelsea); the logit of Chelsea's top class reaches 90 % of
    its rise by alpha = 0.5 (Figure 2b); the path gradients equal interior_gradients there."""
    from attribkit import interior_gradients
    from attribkit.experiments._paths import default_layers, path_activity, path_gradients
    from attribkit.zoo import vision

    net = vision.load_efficientnet_lite0()
    photos = vision.sample_photos([c.photo for c in CASES])
    x = torch.cat(list(photos.values()))
    with torch.no_grad():
        top = net(x).argmax(dim=1).tolist()
    for c, t in zip(CASES, top, strict=True):
        assert vision.class_name(t) != c.truth, c
    assert vision.class_name(top[0]) == "tripod"
    alphas = torch.tensor([0.0, 0.1, 0.3, 0.5, 1.0])
    layers = default_layers(net)
    act = path_activity(net, x[1:], baseline=vision.BLACK, alphas=alphas, layers=layers)
    rise = (act.logit[0] - act.logit[0, 0]) / (act.logit[0, -1] - act.logit[0, 0])
    assert float(rise[3]) >= 0.9
    assert list(layers) == ["_blocks.3", "_blocks.7", "_blocks.11", "_blocks.15"]
    prob, _logit = path_gradients(net, x[1:], baseline=vision.BLACK,
                                 alphas=torch.tensor([0.1, 1.0]), target=act.target)
    ref = interior_gradients(vision.SoftmaxModel(net), x[1:], target=act.target,
                             baseline=torch.full_like(x[1:], vision.BLACK),
                             alphas=[0.1, 1.0]).mean_magnitude()
    torch.testing.assert_close(prob, ref.to(torch.float64), rtol=1e-4, atol=0)
