"""Models with several inputs against Captum's tuple inputs (test-only oracle), float64."""

from __future__ import annotations

import pytest
import torch
from captum.attr import (
    DeepLift,
    FeatureAblation,
    InputXGradient,
    IntegratedGradients,
    Saliency,
    ShapleyValues,
)
from torch import Tensor, nn

import attribkit
from attribkit.core.multi import SEVERAL_INPUTS
from attribkit.core.multi_result import MultiAttribution


class ImageAndMeta(nn.Module):
    """``model(image (N, 2, 3, 3), meta (N, 4)[, scale (N, 1)])``: a conv branch and a dense one."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(2, 3, 2)
        self.img = nn.Linear(12, 5)
        self.meta = nn.Linear(4, 5)
        self.act, self.act2 = nn.ReLU(), nn.ReLU()
        self.head = nn.Linear(10, 3)

    def forward(self, image: Tensor, meta: Tensor, scale: Tensor | None = None) -> Tensor:
        a = self.img(self.act(self.conv(image)).flatten(1))
        h = self.head(self.act2(torch.cat([a, self.meta(meta)], dim=1)))
        return h if scale is None else h * scale


@pytest.fixture
def net() -> nn.Module:
    return ImageAndMeta().double().eval()


def _data(n: int = 3, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 2, 3, 3, generator=g, dtype=torch.float64),
            torch.randn(n, 4, generator=g, dtype=torch.float64))


TARGET = torch.tensor([0, 2, 1])


def _close(ours: tuple[Tensor, ...], theirs: tuple[Tensor, ...], atol: float = 1e-9) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=atol)


def test_integrated_gradients_matches_captum_and_is_complete_over_all_inputs(net):
    x, b = _data(seed=0), _data(seed=1)
    ours = attribkit.integrated_gradients(net, x, baseline=b, target=TARGET, steps=16)
    theirs = IntegratedGradients(net).attribute(x, baselines=b, target=TARGET, n_steps=16,
                                                method="gausslegendre")
    assert isinstance(ours, MultiAttribution)
    _close(ours.values, theirs)
    # completeness holds over both inputs together, checked against the model directly
    sel = torch.arange(3)
    delta = net(*x)[sel, TARGET] - net(*b)[sel, TARGET]
    torch.testing.assert_close(ours.delta, delta.detach(), rtol=0, atol=1e-12)
    total = theirs[0].sum(dim=(1, 2, 3)) + theirs[1].sum(dim=1)
    torch.testing.assert_close(ours.total(), total.detach(), rtol=0, atol=1e-9)
    # with 16 nodes the ReLU kinks leave a quadrature error; to a tolerance the gap closes
    fine = attribkit.integrated_gradients(net, x, baseline=b, target=TARGET, tolerance=1e-4)
    assert float(fine.relative_gap.max()) < 1e-3
    shares = ours.totals()
    torch.testing.assert_close(shares[0] + shares[1], ours.total(), rtol=0, atol=1e-12)
    # each input's Attribution has its own shape and no per-input "gap" to misread
    assert ours[0].values.shape == (3, 2, 3, 3) and ours[1].gap is None
    torch.testing.assert_close(ours[1].baselines, b[1], rtol=0, atol=0)


def test_saliency_and_gradient_x_input_match_captum(net):
    x = _data()
    _close(attribkit.saliency(net, x, target=TARGET).values,
           Saliency(net).attribute(x, target=TARGET, abs=False))
    _close(attribkit.saliency(net, x, target=TARGET, absolute=True).values,
           Saliency(net).attribute(x, target=TARGET, abs=True))
    _close(attribkit.gradient_x_input(net, x, target=TARGET).values,
           InputXGradient(net).attribute(x, target=TARGET))


def test_occlusion_per_scalar_matches_captum_feature_ablation(net):
    x, b = _data(seed=2), _data(seed=3)
    ours = attribkit.occlusion(net, x, baseline=b, target=TARGET)
    theirs = FeatureAblation(net).attribute(x, baselines=b, target=TARGET)
    _close(ours.values, theirs)
    # a number as the baseline fills every input with it
    _close(attribkit.occlusion(net, x, baseline=0.5, target=1).values,
           FeatureAblation(net).attribute(x, baselines=(0.5, 0.5), target=1))


def test_exact_shapley_with_a_tuple_of_masks_matches_captum(net):
    x, b = _data(n=2, seed=4), _data(n=2, seed=5)
    g_img = torch.tensor([[[0, 0, 1], [0, 0, 1], [0, 1, 1]]]).repeat(2, 1, 1)  # both channels
    g_meta = torch.tensor([0, 0, 1, 1])
    ours = attribkit.shapley_values(net, x, baseline=b, target=1, groups=(g_img, g_meta))
    assert ours.params["players"] == 2 + 2
    # Captum groups by equal ids across inputs, so give the metadata ids after the image's
    masks = (g_img[None], (g_meta + 2)[None])
    theirs = ShapleyValues(net).attribute(x, baselines=b, target=1, feature_mask=masks)
    theirs = tuple(t.double() for t in theirs)  # Captum accumulates in float32 here
    # Captum gives each feature its group's value; attribkit splits it over the group's features
    ids = ours.extras["group_ids"]
    per_feature = ours.layout.split(ours.extras["players"].gather(1, ids))
    _close(per_feature, theirs, atol=1e-6)
    torch.testing.assert_close(ours.gap, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)
    # None in the tuple: every scalar of that input is a player of its own
    one_each = attribkit.shapley_values(net, x, baseline=b, target=1, groups=(g_img, None))
    assert one_each.params["players"] == 2 + 4


def test_deeplift_matches_captum(net):
    x, b = _data(seed=6), _data(seed=7)
    ours = attribkit.deeplift(net, x, baseline=b, target=TARGET)
    theirs = DeepLift(net).attribute(x, baselines=b, target=TARGET)
    _close(ours.values, theirs)


def test_forward_args_follow_the_inputs(net):
    x, b = _data(seed=8), _data(seed=9)
    scale = torch.tensor([[1.0], [2.0], [-0.5]], dtype=torch.float64)
    ours = attribkit.integrated_gradients(net, x, baseline=b, target=TARGET, steps=8,
                                          forward_args=(scale,))
    theirs = IntegratedGradients(net).attribute(x, baselines=b, target=TARGET, n_steps=8,
                                                method="gausslegendre",
                                                additional_forward_args=(scale,))
    _close(ours.values, theirs, atol=1e-8)


def test_several_targets_split_per_input(net):
    x = _data()
    ours = attribkit.integrated_gradients(net, x, target=attribkit.all_classes(), steps=8)
    assert ours.values[0].shape == (3, 3, 2, 3, 3) and ours.values[1].shape == (3, 3, 4)
    for k in range(3):
        one = attribkit.integrated_gradients(net, x, target=k, steps=8)
        _close(ours.for_target(k).values, one.values, atol=1e-12)


def test_expected_gradients_equals_a_hand_built_flat_problem(net):
    x = _data(n=2, seed=10)
    bg = _data(n=5, seed=11)
    ours = attribkit.expected_gradients(net, x, background=bg, target=2, n_samples=12, seed=3)

    def flat_model(z: Tensor) -> Tensor:  # written here, not with attribkit's layout
        return net(z[:, :18].reshape(-1, 2, 3, 3), z[:, 18:])

    def flat(t: tuple[Tensor, Tensor]) -> Tensor:
        return torch.cat([t[0].reshape(len(t[0]), -1), t[1]], dim=1)

    ref = attribkit.expected_gradients(flat_model, flat(x), background=flat(bg), target=2,
                                       n_samples=12, seed=3)
    _close(ours.values, (ref.values[:, :18].reshape(2, 2, 3, 3), ref.values[:, 18:]), atol=0)
    torch.testing.assert_close(ours.flat.extras["stderr"], ref.extras["stderr"], rtol=0, atol=0)


def test_one_input_in_a_tuple_and_explain(net):
    def single(v: Tensor) -> Tensor:
        return net(v[:, :18].reshape(-1, 2, 3, 3), v[:, 18:])

    v = torch.cat([t.reshape(3, -1) for t in _data()], dim=1)
    ours = attribkit.explain(single, (v,), method="ig", target=TARGET, steps=8)
    plain = attribkit.integrated_gradients(single, v, target=TARGET, steps=8)
    assert len(ours) == 1
    _close(ours.values, (plain.values,), atol=0)


def test_save_and_load_round_trip(net, tmp_path):
    x = _data()
    ours = attribkit.integrated_gradients(net, x, target=TARGET, steps=8)
    path = ours.save(tmp_path / "two.attrib")
    back = MultiAttribution.from_flat(attribkit.load(path))
    _close(back.values, ours.values, atol=0)
    _close(back.inputs, x, atol=0)
    assert back.layout == ours.layout
    arrays = back.to(torch.float32).numpy()
    assert [a.dtype.name for a in arrays] == ["float32", "float32"]
    assert arrays[1].shape == (3, 4)


def test_the_supported_methods_are_listed():
    assert {"integrated_gradients", "saliency", "gradient_x_input", "occlusion",
            "shapley_values", "expected_gradients", "deeplift",
            "prediction_difference"} <= set(SEVERAL_INPUTS)


def test_smoothgrad_equals_a_hand_built_flat_problem_and_needs_stdev(net):
    x = _data(n=2, seed=12)

    def flat_model(z: Tensor) -> Tensor:
        return net(z[:, :18].reshape(-1, 2, 3, 3), z[:, 18:])

    z = torch.cat([x[0].reshape(2, -1), x[1]], dim=1)
    for fn in (attribkit.smoothgrad, attribkit.vargrad):
        ours = fn(net, x, target=1, stdev=0.2, n_samples=6, seed=4)
        ref = fn(flat_model, z, target=1, stdev=0.2, n_samples=6, seed=4)
        _close(ours.values, (ref.values[:, :18].reshape(2, 2, 3, 3), ref.values[:, 18:]), atol=0)
    with pytest.raises(attribkit.InputError, match=r"give stdev="):
        attribkit.smoothgrad(net, x, target=1)


def test_deletion_on_the_flat_problem_runs_from_f_x_to_f_baseline(net):
    x, b = _data(seed=13), _data(seed=14)
    attr = attribkit.integrated_gradients(net, x, baseline=b, target=TARGET, steps=8)
    curve = attribkit.evaluate.deletion_curve(attr.flat_model(net), attr.flat.inputs, attr.flat,
                                              baseline=attr.flat.baselines, steps=4)
    sel = torch.arange(3)
    ends = (net(*x)[sel, TARGET].detach(), net(*b)[sel, TARGET].detach())
    torch.testing.assert_close(curve.scores[:, 0], ends[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(curve.scores[:, -1], ends[1], rtol=0, atol=1e-12)


def test_prediction_difference_background_per_input(net):
    x, bg = _data(n=2, seed=15), _data(n=3, seed=16)

    def flat_model(z: Tensor) -> Tensor:
        return net(z[:, :18].reshape(-1, 2, 3, 3), z[:, 18:])

    def flat(t: tuple[Tensor, Tensor]) -> Tensor:
        return torch.cat([t[0].reshape(len(t[0]), -1), t[1]], dim=1)

    ours = attribkit.prediction_difference(net, x, background=bg, target=0)
    ref = attribkit.prediction_difference(flat_model, flat(x), background=flat(bg), target=0)
    _close(ours.values, (ref.values[:, :18].reshape(2, 2, 3, 3), ref.values[:, 18:]), atol=0)
    # the hand loop for one feature: F(x) - mean_b F(x with that feature := b's)
    img = x[0][:1].repeat(3, 1, 1, 1)
    img[:, 1, 2, 0] = bg[0][:, 1, 2, 0]
    drop = net(x[0][:1], x[1][:1])[0, 0] - net(img, x[1][:1].repeat(3, 1))[:, 0].mean()
    torch.testing.assert_close(ours.values[0][0, 1, 2, 0], drop.detach(), rtol=0, atol=1e-12)
    with pytest.raises(attribkit.InputError, match=r"background of input 1 of 2 has 2 samples"):
        attribkit.prediction_difference(net, x, background=(bg[0], bg[1][:2]), target=0)
