"""A tiny seeded image classifier for live-mode tests (``tests.serve.tiny_model:build``)."""

from __future__ import annotations

import torch
from torch import nn


def build() -> nn.Module:
    """A 5-class CNN on ``(N, 3, H, W)`` images of any size, float32, eval mode."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 5), nn.Softmax(dim=1)).eval()


def build_mlp() -> nn.Module:
    """A 3-class MLP on rows of 8 numbers, float32, eval mode."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)).eval()
