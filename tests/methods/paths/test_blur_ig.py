"""Blur IG against PAIR ``saliency.core.BlurIG`` (float64); the blur against SciPy's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from tests.methods.paths._pair import call_model, chw, hwc, pair

import attribkit
from attribkit.core.errors import InputError
from attribkit.methods.paths._blur import blur


@pytest.mark.parametrize("sigma", [0.0, 0.01, 0.3, 1.7, 9.0])
def test_blur_is_scipy_gaussian_filter_with_zero_padding(rng, sigma):
    x = torch.randn(2, 3, 7, 9, generator=rng, dtype=torch.float64)
    ours = blur(x, [sigma, sigma])
    for e in range(2):
        ref = (hwc(x[e]) if sigma == 0 else
               ndimage.gaussian_filter(hwc(x[e]), sigma=[sigma, sigma, 0], mode="constant"))
        torch.testing.assert_close(ours[e], chw(ref), rtol=1e-12, atol=1e-14)


def test_blur_of_a_sequence_along_its_axis(rng):
    x = torch.randn(2, 2, 11, generator=rng, dtype=torch.float64)
    ours = blur(x, [1.5, 0.7])
    for e, s in enumerate((1.5, 0.7)):
        ref = ndimage.gaussian_filter1d(x[e].numpy(), s, axis=-1, mode="constant")
        torch.testing.assert_close(ours[e], torch.as_tensor(ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("steps", "max_sigma", "sqrt"), [(12, 4.0, False), (10, 20.0, True)])
def test_matches_pair(make_cnn, rng, steps, max_sigma, sqrt):
    model = make_cnn()
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    t = torch.tensor([1, 4])
    ours = attribkit.explain(model, x, "blur_ig", target=t, steps=steps, max_sigma=max_sigma,
                             sqrt=sqrt, batch_size=7)
    for e in range(2):
        # PAIR at its default batch_size=1: with larger batches it weights every row of a
        # batch by the step width of the batch's last row (a PAIR bug)
        ref = pair.BlurIG().GetMask(hwc(x[e]), call_model(model, int(t[e])), steps=steps,
                                    max_sigma=max_sigma, sqrt=sqrt)
        assert chw(ref).abs().max() > 1e-4
        torch.testing.assert_close(ours.values[e], chw(ref), rtol=1e-9, atol=1e-12)
    # the baseline is the widest blur, and F(x') is the model there
    assert ours.baselines is not None
    last = max_sigma ** 0.5 if sqrt else max_sigma
    torch.testing.assert_close(ours.baselines, blur(x, [last, last]))
    assert ours.baseline_output is not None
    torch.testing.assert_close(ours.baseline_output,
                               model(ours.baselines).gather(1, t[:, None])[:, 0])


def test_completeness_improves_with_steps(make_cnn, rng):
    model = make_cnn(seed=3)
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    gaps = [float(attribkit.blur_ig(model, x, target=0, steps=s, max_sigma=3.0).relative_gap[0])
            for s in (8, 64)]
    assert gaps[1] < gaps[0]
    assert gaps[1] < 0.1


def test_refuses_flat_inputs_and_a_baseline(make_mlp, make_cnn, rng):
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        attribkit.blur_ig(make_mlp(), torch.randn(2, 6, dtype=torch.float64))
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    with pytest.raises(InputError, match="max_sigma"):
        attribkit.blur_ig(make_cnn(), x, baseline=0.0)
    with pytest.raises(InputError, match="positive"):
        attribkit.blur_ig(make_cnn(), x, max_sigma=-1.0)
    assert np.isfinite(attribkit.blur_ig(make_cnn(), x, steps=2).numpy()).all()
