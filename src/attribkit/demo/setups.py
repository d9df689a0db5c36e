"""What the image report explains: EfficientNet-Lite0 on sample photos, or a tiny seeded CNN."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["ToyNet", "VisionSetup", "toy_setup", "vision_setup"]


@dataclass
class VisionSetup:
    """What the image pipeline needs: a model, photos and how to name and draw things."""

    model: Callable[..., Tensor]
    photos: dict[str, Tensor]
    baseline_value: float
    class_name: Callable[[int], str]
    to_image: Callable[[Tensor], np.ndarray[Any, Any]]
    saturation_photos: dict[str, Tensor]
    ig_steps: int = 32
    alphas: int = 12
    compare_steps: int = 6
    patch: int = 28
    aopc_k: int = 500
    aopc_steps: int = 10
    compare_budget_s: float = 35.0
    title: str = "attribkit demo"
    module_model: nn.Module | None = None
    """The same function built only from modules (for propagation rules), where it differs."""
    channels_last: bool = False
    """Run IG in the channels-last layout (faster for EfficientNet on CPUs; see benchmarks)."""
    experiments: bool = False
    """Add the papers' experiments of the vision task (:mod:`attribkit.experiments`)."""


def vision_setup(n_photos: int) -> VisionSetup:
    """EfficientNet-Lite0 (softmax output) on the first ``n_photos`` sample photos."""
    from attribkit.zoo import vision

    names = ["chelsea", "coffee", "rocket", "astronaut", "flower", "china"][:max(1, n_photos)]
    photos = vision.sample_photos(names)
    sat = vision.sample_photos(list(vision.PHOTOS))
    net = vision.load_efficientnet_lite0()
    return VisionSetup(model=vision.SoftmaxModel(net),
                       module_model=nn.Sequential(net, nn.Softmax(dim=-1)), photos=photos,
                       baseline_value=vision.BLACK,
                       class_name=vision.class_name, to_image=vision.deprocess,
                       saturation_photos=sat, channels_last=True, experiments=True,
                       title="attribkit demo: EfficientNet-Lite0 on ImageNet photos")


class ToyNet(nn.Module):
    """A tiny CNN whose class 0 looks at the bright square of the synthetic images."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                                 nn.Flatten(), nn.Linear(64, 3), nn.Softmax(dim=-1))

    def forward(self, x: Tensor) -> Tensor:
        """Class probabilities ``(N, 3)``."""
        out: Tensor = self.net(x)
        return out


def toy_setup() -> VisionSetup:
    """:class:`ToyNet` (float64) on two synthetic 16 x 16 images, with budgets of seconds."""
    g = torch.Generator().manual_seed(0)
    photos = {}
    for i in range(2):
        x = torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64) * 0.3
        x[:, :, 4 + i:9 + i, 4:9] = 0.9
        photos[f"toy<{i}>"] = x
    model = ToyNet().double().eval()
    return VisionSetup(model=model, photos=photos, baseline_value=0.0,
                       class_name=lambda c: f"class {c}",
                       to_image=lambda t: (t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255)
                       .round().astype(np.uint8),
                       saturation_photos=photos, ig_steps=8, alphas=5, compare_steps=4, patch=4,
                       aopc_k=16, aopc_steps=4, compare_budget_s=30.0,
                       title="attribkit demo (toy)")
