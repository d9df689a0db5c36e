"""Grad-CAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attribkit
from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.core.guard import hook_state
from attribkit.methods.cam import grad_cam


def test_by_hand(make_cnn, rng):
    """Channel weights = mean gradient over positions; map = ReLU(sum_c w_c A_c)."""
    model = make_cnn(seed=1)
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    acts = model[:4](x).detach().requires_grad_(True)
    out = model[4:](acts)
    (g,) = torch.autograd.grad(out[:, 7].sum(), acts)
    ref = torch.relu((g.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True)).detach()
    a = grad_cam(model, x, layer=model[3], target=7)
    torch.testing.assert_close(a.extras["layer_map"], ref, rtol=0, atol=1e-12)
    up = F.interpolate(ref, size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(a.values, up, rtol=0, atol=1e-12)
    assert a.values.shape == (2, 1, 8, 8) and a.inputs.shape == x.shape


def test_captum_oracle(make_cnn, rng):
    captum = pytest.importorskip("captum.attr")
    model = make_cnn(seed=2)
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    t = torch.tensor([3, 4])
    ref = captum.LayerGradCam(model, model[3]).attribute(x, target=t).detach()
    a = grad_cam(model, x, layer="3", target=t, relu=False)
    torch.testing.assert_close(a.extras["layer_map"], ref, rtol=0, atol=1e-12)
    up = captum.LayerAttribution.interpolate(ref, (8, 8), interpolate_mode="bilinear")
    torch.testing.assert_close(a.values, up, rtol=0, atol=1e-12)
    a = grad_cam(model, x, layer="3", target=t, upsample=False)
    torch.testing.assert_close(a.values, torch.relu(ref), rtol=0, atol=1e-12)


def test_several_targets(make_cnn, rng):
    model = make_cnn(seed=3)
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    both = grad_cam(model, x, layer="3", target=attribkit.classes([1, 2]))
    assert both.values.shape == (2, 2, 1, 8, 8)
    for k in (1, 2):
        torch.testing.assert_close(both.values[:, k - 1], grad_cam(model, x, layer="3",
                                                                   target=k).values)


def test_errors_leave_no_hooks(make_cnn, rng):
    model = make_cnn()
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    before = hook_state(model)
    with pytest.raises(InputError, match="no layer named 'conv9'"):
        grad_cam(model, x, layer="conv9")
    with pytest.raises(InputError, match="feature maps"):
        grad_cam(model, x, layer="7")
    with pytest.raises(InputError, match="not part of the model"):
        grad_cam(model, x, layer=torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(UnsupportedModelError):
        grad_cam(lambda t: t.flatten(1), x, layer="0")
    assert hook_state(model) == before
    info = attribkit.methods()["grad_cam"]
    assert info.needs_module and info.family == "cam" and not info.complete
