"""Guided Grad-CAM against Captum's ``GuidedGradCam`` (nearest up-sampling), and the paper's
bilinear version as the product of its two factors."""

from __future__ import annotations

import pytest
import torch
from captum.attr import GuidedGradCam

import attribkit
from attribkit.core.errors import InputError
from attribkit.core.guard import hook_state


@pytest.mark.parametrize("layer", [0, 3])
def test_matches_captum(make_cnn, rng, layer):
    model = make_cnn(seed=1)
    x = torch.randn(3, 3, 8, 8, generator=rng, dtype=torch.float64)
    t = torch.tensor([0, 5, 9])
    before = hook_state(model)
    ours = attribkit.explain(model, x, "guided_grad_cam", layer=model[layer], target=t,
                             interpolation="nearest")
    assert hook_state(model) == before
    with pytest.warns(UserWarning):  # Captum's note that it hooks the ReLUs
        ref = GuidedGradCam(model, model[layer]).attribute(x.clone().requires_grad_(),
                                                           target=t).detach()
    assert int(torch.count_nonzero(ref)) > ref.numel() // 4  # not a map of zeros
    scale = float(ref.abs().max())
    torch.testing.assert_close(ours.values, ref, rtol=1e-10, atol=1e-12 * scale)


def test_bilinear_is_grad_cam_times_guided_backprop(make_cnn, rng):
    model = make_cnn(seed=2)
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    ours = attribkit.guided_grad_cam(model, x, layer="3")
    cam = attribkit.grad_cam(model, x, layer="3", target=ours.target)
    gb = attribkit.guided_backprop(model, x, target=ours.target)
    torch.testing.assert_close(ours.values, gb.values * cam.values)
    assert ours.values.shape == x.shape


def test_refuses_a_baseline_and_unknown_interpolation(make_cnn, rng):
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    with pytest.raises(InputError, match="no baseline"):
        attribkit.guided_grad_cam(make_cnn(), x, layer="3", baseline=0.0)
    with pytest.raises(InputError, match="interpolation"):
        attribkit.guided_grad_cam(make_cnn(), x, layer="3", interpolation="cubic")
