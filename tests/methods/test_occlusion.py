"""Occlusion-1, Occlusion-patch and Prediction Difference."""

from __future__ import annotations

import pytest
import torch

import attribkit
from attribkit.core.errors import BaselineError, InputError
from attribkit.methods.occlusion import occlusion, prediction_difference, window_grid
from attribkit.toys import Polynomial


def test_occlusion_1_closed_form():
    a = occlusion(Polynomial([[2, 1]]), torch.ones(1, 2, dtype=torch.float64))
    torch.testing.assert_close(a.values, torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    # not complete: 1 + 1 != F(x) - F(0) = 1
    torch.testing.assert_close(a.gap, torch.tensor([1.0], dtype=torch.float64))


def test_occlusion_1_by_hand(make_mlp, rng):
    model = make_mlp(n_in=5, seed=1)
    x = torch.randn(3, 5, generator=rng, dtype=torch.float64)
    b = torch.randn(3, 5, generator=rng, dtype=torch.float64)
    a = occlusion(model, x, baseline=b, target=2)
    with torch.no_grad():
        for i in range(5):
            occluded = x.clone()
            occluded[:, i] = b[:, i]
            torch.testing.assert_close(a.values[:, i], model(x)[:, 2] - model(occluded)[:, 2],
                                       rtol=0, atol=1e-12)


def test_patches_by_hand(make_cnn, rng):
    """Overlapping windows: each pixel gets the mean drop of the windows that cover it."""
    model = make_cnn(seed=3)
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    a = occlusion(model, x, target=4, window=(4, 4), stride=(2, 3), fill=-0.5)
    with torch.no_grad():
        base = model(x)[0, 4]
        total = torch.zeros(3, 8, 8, dtype=torch.float64)
        count = torch.zeros(3, 8, 8, dtype=torch.float64)
        for r in (0, 2, 4):
            for c in (0, 3, 6):
                occ = x.clone()
                occ[:, :, r:r + 4, c:c + 4] = -0.5
                total[:, r:r + 4, c:c + 4] += base - model(occ)[0, 4]
                count[:, r:r + 4, c:c + 4] += 1
    torch.testing.assert_close(a.values[0], total / count, rtol=0, atol=1e-12)
    assert a.extras["window_drops"].shape == (1, 1, 3, 3)


@pytest.mark.parametrize(("window", "stride"), [((4, 3), (2, 3)), ((1, 1), (1, 1))])
def test_captum_occlusion_oracle(make_cnn, rng, window, stride):
    captum = pytest.importorskip("captum.attr")
    model = make_cnn(seed=4)
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    ours = occlusion(model, x, target=1, window=window, stride=stride, baseline=0.3)
    ref = captum.Occlusion(model).attribute(x, sliding_window_shapes=(3, *window),
                                            strides=(3, *stride), target=1, baselines=0.3,
                                            perturbations_per_eval=16)
    torch.testing.assert_close(ours.values, ref.detach().double(), rtol=0, atol=1e-6)


def test_several_targets_and_batching(make_mlp, rng):
    model = make_mlp(n_in=4, seed=5)
    x = torch.randn(2, 4, generator=rng, dtype=torch.float64)
    both = occlusion(model, x, target=attribkit.classes([0, 1]), batch_size=3)
    assert both.values.shape == (2, 2, 4)
    for k in (0, 1):
        torch.testing.assert_close(both.values[:, k], occlusion(model, x, target=k).values)


def test_prediction_difference_is_mean_occlusion(make_mlp, rng):
    model = make_mlp(n_in=6, seed=6)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    bg = torch.randn(5, 6, generator=rng, dtype=torch.float64)
    pd = prediction_difference(model, x, background=bg, target=0)
    with torch.no_grad():
        for i in range(6):
            drops = []
            for j in range(5):
                occ = x.clone()
                occ[:, i] = bg[j, i]
                drops.append(model(x)[:, 0] - model(occ)[:, 0])
            torch.testing.assert_close(pd.values[:, i], torch.stack(drops).mean(0), rtol=0,
                                       atol=1e-12)


def test_window_grid_covers_the_axis():
    (g,) = window_grid((10,), 4, 3)
    assert g.shape == (3, 10)  # starts 0, 3, 6
    assert bool(g.any(dim=0).all())
    (g,) = window_grid((10,), 3, 4)
    assert g.shape == (3, 10)  # starts 0, 4, 8; the last window is clipped to 8..9
    assert g.sum(dim=1).tolist() == [3, 3, 2]


def test_uncovered_features_get_zero(make_mlp, rng):
    model = make_mlp(n_in=6, seed=7)
    x = torch.randn(1, 6, generator=rng, dtype=torch.float64)
    a = occlusion(model, x, window=1, stride=3)
    assert bool(torch.isfinite(a.values).all())
    assert a.values[0, [1, 2, 4, 5]].abs().max() == 0


def test_errors(make_cnn, rng):
    model = make_cnn()
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    with pytest.raises(InputError, match="larger than axis"):
        occlusion(model, x, window=(9, 2))
    with pytest.raises(InputError, match="more axes"):
        occlusion(model, x, window=(1, 1, 1, 1))
    with pytest.raises(InputError, match="either fill"):
        occlusion(model, x, fill=0.0, baseline=1.0)
    with pytest.raises(BaselineError, match="does not fit"):
        prediction_difference(model, x, background=torch.zeros(4, 3, 8, 7, dtype=torch.float64))
    with pytest.raises(BaselineError, match="dtype"):
        prediction_difference(model, x, background=torch.zeros(4, 3, 8, 8))


def test_registry_metadata():
    info = attribkit.methods()["occlusion"]
    assert not info.complete and info.family == "perturbation" and info.needs_baseline
    assert "completeness" not in info.axioms
    assert not attribkit.methods()["prediction_difference"].complete


def test_int_window_on_an_image_is_a_square_patch(make_cnn, rng):
    """window=2 on (N, 3, H, W) covers a 2 x 2 patch of every channel, as (2, 2) does."""
    model = make_cnn()
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    gh, gw = window_grid((3, 8, 8), 2)[1:]
    assert gh.shape == (4, 8) and gw.shape == (4, 8)
    a = occlusion(model, x, target=2, window=2, stride=2)
    b = occlusion(model, x, target=2, window=(2, 2))
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    assert a.extras["window_drops"].shape == (1, 1, 4, 4)
    # the drop of the top-left window, computed by hand
    occ = x.clone()
    occ[:, :, :2, :2] = 0.0
    drop = model(x)[0, 2] - model(occ)[0, 2]
    torch.testing.assert_close(a.values[0, :, :2, :2], drop.expand(3, 2, 2), rtol=0, atol=1e-12)
