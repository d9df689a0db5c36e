"""The model's state after a call: buffers, flags, training mode (issue 13)."""

from __future__ import annotations

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import images, rows, same, snapshot
from torch import Tensor, nn

import attribkit


def bn_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(108, 2)).double()


class Counter(nn.Module):
    """A layer that counts its training-mode calls in a buffer (like a running statistic)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 3)
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("mean", torch.zeros(5))
        self.fail_after: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            with torch.no_grad():
                self.seen += x.shape[0]
                self.mean.mul_(0.9).add_(0.1 * x.mean(0))
        if self.fail_after is not None and int(self.seen) > self.fail_after:
            raise RuntimeError("boom")
        return self.lin(x)


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "occlusion"])
@case("model state", "a model in train() mode with BatchNorm2d",
      "refused before any forward pass (InputError: call model.eval()); running_mean, "
      "running_var and num_batches_tracked are bit-for-bit unchanged, the model stays in "
      "training mode")
def test_batchnorm_in_training_mode_is_refused_untouched(method: str) -> None:
    model = bn_net().train()
    before = snapshot(model)
    with pytest.raises(attribkit.InputError, match=r"model\.eval\(\)"):
        attribkit.explain(model, images(2), method=method, target=0)
    assert same(before, snapshot(model)) and model.training


@case("model state", "a model in train() mode whose layer updates buffers in forward (a "
      "counter and a running mean), attributed successfully and with a forward pass that "
      "raises midway",
      "every buffer of a module in training mode is copied on entry and written back on "
      "exit: bit-for-bit equal after success and after the exception")
def test_training_buffers_restored_after_success_and_failure() -> None:
    model = Counter().double().train()
    model.mean.fill_(0.5)
    before = snapshot(model)
    attribkit.integrated_gradients(model, rows(4), target=1, steps=8)
    assert same(before, snapshot(model))
    model.fail_after = 6
    with pytest.raises(RuntimeError, match="boom"):
        attribkit.integrated_gradients(model, rows(4), target=1, steps=8)
    model.fail_after = None
    assert same(before, snapshot(model)) and model.training


@case("model state", "the same model with BatchNorm in eval() mode",
      "runs; nothing changes; attributions use the running statistics (equal to the result "
      "on a copy with the BatchNorm folded into the convolution by hand)", "held")
def test_batchnorm_in_eval_mode_uses_running_statistics() -> None:
    model = bn_net(1)
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.eval()
    before = snapshot(model)
    x = images(2, seed=1)
    ours = attribkit.integrated_gradients(model, x, target=1, steps=16).values
    assert same(before, snapshot(model))
    conv, bn = model[0], model[1]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    folded = nn.Conv2d(2, 3, 3, padding=1).double()
    with torch.no_grad():
        assert bn.running_var is not None and bn.running_mean is not None
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        folded.weight.copy_(conv.weight * s[:, None, None, None])
        assert conv.bias is not None
        folded.bias.copy_((conv.bias - bn.running_mean) * s + bn.bias)
    other = nn.Sequential(folded, nn.ReLU(), nn.Flatten(), model[4]).eval()
    ref = attribkit.integrated_gradients(other, x, target=1, steps=16).values
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-9)


@case("model state", "a model in train() mode with Dropout (no BatchNorm)",
      "a RuntimeWarning says the output is random; the model stays in training mode", "held")
def test_dropout_in_training_mode_warns() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Dropout(0.5), nn.Linear(4, 2)).double().train()
    with pytest.warns(RuntimeWarning, match="training mode"):
        attribkit.integrated_gradients(model, rows(2), target=0, steps=4)
    assert model.training


@case("model state", "a parameter's .grad after an attribution",
      "untouched (gradients are taken with respect to the inputs only, never accumulated "
      "into parameters)", "held")
def test_parameter_grads_are_not_accumulated() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2)).double().eval()
    for method in ("integrated_gradients", "saliency", "deeplift", "lrp", "smoothgrad"):
        attribkit.explain(model, rows(2), method=method, target=0)
    assert all(p.grad is None for p in model.parameters())
