"""DeepLIFT and DeepSHAP against Captum (test-only oracle) and against summation-to-delta."""

from __future__ import annotations

import pytest
import torch
from captum.attr import DeepLift, DeepLiftShap
from torch import nn

from attribkit.methods.propagation import deeplift, deepshap

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum")


def relu_mlp(seed: int, n_in: int = 5, hidden: int = 7, n_out: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out)).double().eval()


def relu_cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(4, 3, 2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 2 * 2, 4)).double().eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rescale_equals_captum_on_random_relu_mlps(seed: int) -> None:
    model = relu_mlp(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    b = torch.randn(4, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 1])
    ours = deeplift(model, x, baseline=b, target=t).values
    ref = DeepLift(model).attribute(x, baselines=b, target=t)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_rescale_equals_captum_on_a_relu_cnn() -> None:
    model = relu_cnn(3)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 6, 6, generator=g, dtype=torch.float64)
    ours = deeplift(model, x, baseline=0.1, target=2).values
    ref = DeepLift(model).attribute(x, baselines=torch.full_like(x, 0.1), target=2)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_deepshap_equals_captum(seed: int) -> None:
    model = relu_mlp(seed + 10)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    bg = torch.randn(6, 5, generator=g, dtype=torch.float64)
    attr = deepshap(model, x, background=bg, target=1)
    ref = DeepLiftShap(model).attribute(x, baselines=bg, target=1)
    torch.testing.assert_close(attr.values, ref, atol=1e-6, rtol=0)
    # summation to delta against the mean background output
    mean_out = model(bg)[:, 1].mean()
    torch.testing.assert_close(attr.total(), model(x)[:, 1] - mean_out, atol=1e-9, rtol=0)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-9


def mixed_cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Dropout(0.3), nn.Linear(16, 6), nn.Sigmoid(), nn.Linear(6, 3), nn.ReLU6(),
    ).double().eval()


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
def test_summation_to_delta_on_mixed_modules(rule: str) -> None:
    model = mixed_cnn(5)
    bn = model[1]
    assert isinstance(bn, nn.BatchNorm2d)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 2, 8, 8, generator=g, dtype=torch.float64)
    b = torch.randn(3, 2, 8, 8, generator=g, dtype=torch.float64) * 0.3
    attr = deeplift(model, x, baseline=b, target=0, rule=rule)
    expected = model(x)[:, 0] - model(b)[:, 0]
    torch.testing.assert_close(attr.total(), expected, atol=1e-8, rtol=0)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-8


def test_reveal_cancel_differs_from_rescale_and_is_complete_on_mlp() -> None:
    model = relu_mlp(7)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 5, generator=g, dtype=torch.float64)
    rc = deeplift(model, x, target=0, rule="reveal_cancel")
    rs = deeplift(model, x, target=0, rule="rescale")
    assert rc.gap is not None and rc.gap.abs().max() < 1e-9
    assert (rc.values - rs.values).abs().max() > 1e-3


def test_reveal_cancel_single_unit_closed_form() -> None:
    # y = ReLU(x1 - x2) at x = (1, 1), x' = 0: delta x+ = 1, delta x- = -1.
    # RevealCancel: dy+ = 1/2 (ReLU(1) - 0) + 1/2 (ReLU(0) - ReLU(-1)) = 0.5, dy- = -0.5,
    # so a = (0.5, -0.5) while Rescale gives (0, 0) (delta y = 0, multiplier falls to 0/0).
    lin = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0]]))
    model = nn.Sequential(lin, nn.ReLU()).eval()
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    rc = deeplift(model, x, target=0, rule="reveal_cancel").values
    torch.testing.assert_close(rc, torch.tensor([[0.5, -0.5]], dtype=torch.float64))


def test_softmax_last_layer_keeps_completeness() -> None:
    model = nn.Sequential(relu_mlp(2), nn.Softmax(dim=1)).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    attr = deeplift(model, x, target=1)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-9


def test_bad_background_is_rejected() -> None:
    from attribkit.core.errors import BaselineError
    with pytest.raises(BaselineError, match="background"):
        deepshap(relu_mlp(0), torch.zeros(2, 5, dtype=torch.float64),
                 background=torch.zeros(3, 4, dtype=torch.float64))


class Block(nn.Module):
    """A ResNet basic block: one ReLU module used twice, BatchNorms, a 1x1 downsample."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.down = nn.Conv2d(3, 4, 1, bias=False)
        self.bnd = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)) + self.bnd(self.down(x)))
        out: torch.Tensor = self.head(h)
        return out


@pytest.mark.parametrize("rule", ["rescale", "reveal_cancel"])
def test_residual_block_with_a_reused_relu_is_complete(rule: str) -> None:
    torch.manual_seed(0)
    model = Block().double().eval()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2, model.bnd):
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    attr = deeplift(model, x, target=0, rule=rule, baseline=-0.2)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-9
    assert (attr.values != 0).any()


def test_max_pooling_after_relu_stays_complete() -> None:
    # ReLU zeros make ties inside pooling windows: the winner at x may have delta x = 0 while
    # delta y != 0; sharing delta y with the reference's winner keeps summation-to-delta.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(2),
                          nn.Flatten(), nn.Linear(32, 3)).double().eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 12, 12, generator=g, dtype=torch.float64)
    b = torch.randn(4, 3, 12, 12, generator=g, dtype=torch.float64)
    attr = deeplift(model, x, baseline=b, target=0)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-9
    bg = torch.randn(3, 3, 12, 12, generator=g, dtype=torch.float64)
    shap = deepshap(model, x, background=bg, target=1)
    assert shap.gap is not None and shap.gap.abs().max() < 1e-9
