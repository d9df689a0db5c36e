"""Guided IG against PAIR ``saliency.core.GuidedIG`` (float64), and its limits and guards."""

from __future__ import annotations

import pytest
import torch
from tests.methods.paths._pair import call_model, chw, hwc, pair

import attribkit
from attribkit.core.errors import InputError
from attribkit.core.guard import hook_state


def _smooth_cnn(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.Softplus(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 10)).double().eval()


@pytest.mark.parametrize(("fraction", "max_dist"), [(0.25, 0.02), (0.1, 0.3), (0.5, 1.0)])
def test_matches_pair_on_a_cnn(rng, fraction, max_dist):
    model = _smooth_cnn()
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    b = 0.1 * torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    t = torch.tensor([3, 7])
    ours = attribkit.guided_ig(model, x, target=t, baseline=b, steps=16, fraction=fraction,
                               max_dist=max_dist)
    for e in range(2):
        ref = pair.GuidedIG().GetMask(hwc(x[e]), call_model(model, int(t[e])),
                                      x_baseline=hwc(b[e]), x_steps=16, fraction=fraction,
                                      max_dist=max_dist)
        assert chw(ref).abs().max() > 1e-4  # a real attribution, not zeros
        torch.testing.assert_close(ours.values[e], chw(ref), rtol=1e-9, atol=1e-12)


def test_matches_pair_on_an_mlp_through_explain(make_mlp, rng):
    model = make_mlp(n_in=7)
    x = torch.randn(3, 7, generator=rng, dtype=torch.float64)
    ours = attribkit.explain(model, x, "guided-ig", target=1, steps=25, max_dist=0.1)
    for e in range(3):
        ref = pair.GuidedIG().GetMask(x[e].numpy(), call_model(model, 1), x_steps=25,
                                      max_dist=0.1)
        torch.testing.assert_close(ours.values[e], chw(ref), rtol=1e-9, atol=1e-12)
    # a path method: completeness up to the quadrature error, which shrinks with the steps
    assert ours.relative_gap is not None and float(ours.relative_gap.max()) < 0.2


def test_batched_equals_one_at_a_time(make_mlp, rng):
    model = make_mlp()
    x = torch.randn(4, 6, generator=rng, dtype=torch.float64)
    both = attribkit.guided_ig(model, x, target=0, steps=10, batch_size=3)
    for e in range(4):
        one = attribkit.guided_ig(model, x[e:e + 1], target=0, steps=10)
        torch.testing.assert_close(both.values[e:e + 1], one.values, rtol=1e-12, atol=1e-14)
    assert both.params["gradient_evaluations"] == 4 * 10


def test_zero_max_dist_is_the_straight_path(make_mlp, rng):
    # every feature is held at alpha: Integrated Gradients with gradients at each step's start
    model = make_mlp()
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    g = attribkit.guided_ig(model, x, target=2, steps=12, max_dist=0.0)
    ig = attribkit.integrated_gradients(model, x, target=2, steps=12, rule="riemann_left")
    torch.testing.assert_close(g.values, ig.values, rtol=1e-10, atol=1e-13)


def test_input_equal_to_baseline_gives_zeros(make_mlp, rng):
    model = make_mlp()
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    b = x.clone()
    b[1] = 0.0
    res = attribkit.guided_ig(model, x, baseline=b, target=0, steps=5)
    assert torch.count_nonzero(res.values[0]) == 0
    assert torch.count_nonzero(res.values[1]) > 0


def test_bad_options_and_model_untouched(make_cnn, rng):
    model = make_cnn()
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    before = hook_state(model)
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(InputError, match="fraction"):
        attribkit.guided_ig(model, x, fraction=0.0)
    with pytest.raises(InputError, match="max_dist"):
        attribkit.guided_ig(model, x, max_dist=2.0)
    attribkit.guided_ig(model, x, steps=3)
    assert hook_state(model) == before
    assert [p.requires_grad for p in model.parameters()] == flags
    assert not model.training
