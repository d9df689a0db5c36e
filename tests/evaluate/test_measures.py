"""Localisation, randomisation, saturation and the comparison table on models whose answer is
known by construction."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import Tensor, nn

import attribkit
from attribkit.evaluate import (
    compare,
    localisation,
    mass_inside,
    model_randomisation,
    pointing_game,
    saturation_curves,
    spearman,
)


class RegionModel(nn.Module):
    """Reads only the top-left 4 x 4 pixels of (N, 3, 8, 8) images."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.rand(3, 4, 4, generator=g, dtype=torch.float64) + 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.w * x[:, :, :4, :4]).flatten(1).sum(dim=1)


def _images(n: int = 3, seed: int = 2) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, dtype=torch.float64, generator=g) + 0.2


def test_localisation_on_a_region_model() -> None:
    x = _images()
    ig = attribkit.integrated_gradients(RegionModel(), x, steps=16)
    box = (0, 0, 4, 4)
    loc = localisation(ig, box)
    assert loc.mass_share.tolist() == pytest.approx([1.0] * 3, abs=1e-12)
    assert loc.pointing_accuracy == 1.0
    assert loc.region_share.tolist() == pytest.approx([0.25] * 3)
    random = torch.rand(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    share = mass_inside(random, box)
    assert float(share.mean()) == pytest.approx(0.25, abs=0.08)


def test_mass_share_by_hand_and_masks() -> None:
    m = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    m[0, 0, 0, 0], m[0, 0, 3, 3] = 3.0, -1.0
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:2, :2] = True
    assert float(mass_inside(m, mask)[0]) == pytest.approx(0.75)
    assert float(mass_inside(m, mask, sign="positive")[0]) == pytest.approx(1.0)
    assert float(mass_inside(m, mask, sign="negative")[0]) == pytest.approx(0.0)
    with pytest.raises(attribkit.InputError, match="sign must be one of"):
        mass_inside(m, mask, sign="all")
    with pytest.warns(DeprecationWarning, match="sign='positive'"):
        assert float(mass_inside(m, mask, absolute=False)[0]) == pytest.approx(1.0)
    assert bool(pointing_game(m, [(2, 2, 4, 4)])[0]) is False
    assert bool(pointing_game(m, [(2, 2, 4, 4)], tolerance=2)[0]) is True


def test_spearman_matches_scipy_with_ties() -> None:
    g = torch.Generator().manual_seed(5)
    a = torch.randint(0, 4, (2, 30), generator=g).to(torch.float64)
    b = a + torch.randn(2, 30, generator=g, dtype=torch.float64)
    ours = spearman(a, b)
    for i in range(2):
        ref = stats.spearmanr(a[i].numpy(), b[i].numpy()).statistic
        assert float(ours[i]) == pytest.approx(float(ref), abs=1e-12)


def test_randomisation_drops_the_correlation_and_leaves_the_model() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 3)).double().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    res = model_randomisation(model, x, "integrated_gradients", steps=16, sign="all",
                              progress=True)
    assert res.steps == ("4", "2", "0")
    # signed IG of a randomised model is unrelated to the original (correlation 1 before)
    assert float(res.mean_correlation.abs().max()) < 0.5
    ind = model_randomisation(model, x, "integrated_gradients", mode="independent", steps=16,
                              sign="all")
    assert ind.correlations.shape == (3, 4)
    assert float(ind.mean_correlation.abs().max()) < 0.5
    # the user's model is untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    # a method that ignores the model (the input itself) keeps a correlation of 1
    def input_only(m: nn.Module, inputs: Tensor, **_: object) -> attribkit.Attribution:
        return attribkit.Attribution(values=inputs.clone(), inputs=inputs, method="input")

    same = model_randomisation(model, x, input_only)
    assert torch.allclose(same.correlations, torch.ones(3, 4, dtype=torch.float64))


def test_saturation_point_matches_closed_form() -> None:
    class Saturating(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return 1 - torch.exp(-5 * x.sum(dim=1))

    x = torch.tensor([[1.0, 1.0], [0.2, 0.1]], dtype=torch.float64)
    alphas = torch.linspace(0, 1, 2001, dtype=torch.float64)
    sat = saturation_curves(Saturating(), x, alphas=alphas, tolerance=0.05, gradients=True)
    for i, s in enumerate(x.sum(dim=1).tolist()):
        # (1 - e^{-5 a s}) / (1 - e^{-5 s}) >= 0.95  <=>  a >= -ln(1 - 0.95 (1 - e^{-5 s})) / 5 s
        closed = -math.log(1 - 0.95 * (1 - math.exp(-5 * s))) / (5 * s)
        assert float(sat.saturation_alpha[i]) == pytest.approx(closed, abs=1e-3)
        # first alpha reaching 90 %: (1 - e^{-5 a s}) = 0.9 (1 - e^{-5 s})
        reach = -math.log(1 - 0.9 * (1 - math.exp(-5 * s))) / (5 * s)
        assert float(sat.reach_alpha(0.9)[i]) == pytest.approx(reach, abs=1e-3)
    assert sat.gradient_magnitude is not None and sat.gradient_magnitude.shape == (2, 2001)
    # the gradient at alpha = 1 is far smaller than at alpha = 0 for the saturated example
    assert float(sat.gradient_magnitude[0, -1]) < 1e-3 * float(sat.gradient_magnitude[0, 0])


def test_compare_table() -> None:
    x = _images(2)
    model = RegionModel()
    table = compare(model, x, ["integrated_gradients", "random", "no_such_method"],
                    measures=("aopc", "deletion", "insertion", "completeness", "localisation",
                              "pointing"),
                    region=(0, 0, 4, 4), k=2, steps=8,
                    method_options={"integrated_gradients": {"steps": 16}})
    assert "no_such_method" in table.errors
    assert table.mean("integrated_gradients", "aopc") > table.mean("random", "aopc")
    assert table.mean("integrated_gradients", "localisation") == pytest.approx(1.0)
    assert table.mean("integrated_gradients", "completeness") < 1e-3
    assert table.best("insertion") == "integrated_gradients"
    md = table.to_markdown()
    assert md.startswith("| method | aopc ↑") and "| random |" in md
    d = table.to_dict()
    assert set(d["curves"]["integrated_gradients"]) == {"aopc", "deletion", "insertion"}
