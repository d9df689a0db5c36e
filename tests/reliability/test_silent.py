"""Results that used to be silently wrong (issue 13)."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images, mlp, rows
from torch import Tensor, nn

import attribkit


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(0)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.detach())


class BatchCentred(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return y - y.mean(0)


@pytest.mark.parametrize("method", ["integrated_gradients", "ig_adaptive_rule",
                                    "smoothgrad"])
@case("silent errors", "x.detach() inside forward (the score does not reach the inputs)",
      "integrated gradients raise (all gradients zero while F(x) != F(x')); methods without a "
      "baseline (saliency, SmoothGrad) warn that the attribution is all zeros")
def test_detached_input_is_detected(method: str) -> None:
    model = Detached().double().eval()
    x = rows(3)
    if method == "integrated_gradients":
        with pytest.raises(attribkit.InputError, match="does not depend on the inputs"):
            attribkit.integrated_gradients(model, x, target=0, steps=8)
    elif method == "ig_adaptive_rule":
        with pytest.raises(attribkit.InputError, match="does not depend"):
            attribkit.integrated_gradients(model, x, target=0, steps=8, rule="adaptive")
    else:
        with pytest.warns(RuntimeWarning, match="all zeros"):
            attr = attribkit.smoothgrad(model, x, target=0, n_samples=4)
        assert float(attr.values.abs().max()) == 0.0


@case("silent errors", "x.detach() inside forward, explained by DeepLIFT (propagation)",
      "raises the same error instead of returning zeros")
def test_detached_input_is_detected_by_propagation() -> None:
    model = Detached().double().eval()
    with pytest.raises(attribkit.InputError, match="does not depend"):
        attribkit.deeplift(model, rows(3), target=0)


@pytest.mark.parametrize("n", [1, 3])
@case("silent errors", "a batch-dependent model, y - y.mean(0) (one example and three)",
      "refused: a 2-row probe shows row 0's output changing with its batch-mates, so the "
      "attribution would mix path points of different examples")
def test_batch_dependent_model_is_refused(n: int) -> None:
    with pytest.raises(attribkit.InputError, match="other rows of its batch"):
        attribkit.integrated_gradients(BatchCentred().double().eval(), rows(n), target=0, steps=8)


@case("silent errors", "a model that ignores its input altogether (returns a constant)",
      "a RuntimeWarning that the attribution is all zeros; F(x) = F(x') so nothing is lost",
      "fixed")
def test_constant_model_warns() -> None:
    def constant(x: Tensor) -> Tensor:
        return torch.ones(x.shape[0], 2, dtype=x.dtype)

    with pytest.warns(RuntimeWarning, match="all zeros"):
        attr = attribkit.integrated_gradients(constant, rows(2), target=0, steps=4)
    assert float(attr.values.abs().max()) == 0.0


def relu6_net(scale: float = 1.0, act: type[nn.Module] = nn.ReLU6) -> nn.Sequential:
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), act(), nn.Conv2d(4, 4, 3, padding=1),
                          act(), nn.Flatten(), nn.Linear(144, 3)).double().eval()
    with torch.no_grad():
        model[5].weight.mul_(scale)
        model[5].bias.mul_(scale)
    return model


@case("silent errors", "DeconvNet on a ReLU6 network with the logit scaled by 1 and by 300",
      "the map scales with the logit (ratio 300 to 1e-12): only the rectification is applied "
      "to the backward signal, never the unit's clip at 6; equal to Captum's Deconvolution on "
      "the same weights with ReLU (its hooks rectify ReLU only)")
def test_deconvnet_relu6_is_scale_equivariant_and_matches_captum() -> None:
    from captum.attr import Deconvolution

    x = images(2, seed=7)
    small = attribkit.deconvnet(relu6_net(1.0), x, target=1).values
    big = attribkit.deconvnet(relu6_net(300.0), x, target=1).values
    torch.testing.assert_close(big, 300.0 * small, atol=1e-12, rtol=1e-12)
    # without max pooling the DeconvNet map does not depend on forward activations, so the
    # ReLU copy (which Captum rectifies) has the same map
    relu = relu6_net(300.0, act=nn.ReLU)
    with pytest.warns(UserWarning):
        ref = Deconvolution(relu).attribute(x.clone().requires_grad_(True), target=1)
    torch.testing.assert_close(big, ref, atol=1e-10, rtol=1e-10)


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, module: nn.Module, grad_in: object, grad_out: object) -> None:
        self.calls += 1


@pytest.mark.parametrize("method", ["deeplift", "guided_backprop"])
@case("silent errors", "DeepLIFT and guided backprop on a model carrying the user's own "
      "register_full_backward_hook",
      "runs (the hook's identity nodes are structural) and the user's hook still fires; equal "
      "to Captum's DeepLift / GuidedBackprop on the same hooked model and to the hook-free "
      "result")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_user_backward_hooks_are_accepted(method: str) -> None:
    from captum.attr import DeepLift, GuidedBackprop

    model = cnn(8)
    plain = copy.deepcopy(model)
    rec = Recorder()
    handle = model[2].register_full_backward_hook(rec)
    x = images(2, seed=8)
    try:
        if method == "deeplift":
            ours = attribkit.deeplift(model, x, target=2).values
            ref = DeepLift(model).attribute(x.clone(), baselines=torch.zeros_like(x), target=2)
        else:
            ours = attribkit.guided_backprop(model, x, target=2).values
            ref = GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=2)
        assert rec.calls > 0
    finally:
        handle.remove()
    free = attribkit.explain(plain, x, method=method, target=2).values
    torch.testing.assert_close(ours, free, atol=0, rtol=0)
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-8)
