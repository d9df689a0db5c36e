"""Shared fixtures: small seeded networks in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
import torch
from torch import nn

if TYPE_CHECKING:
    from attribkit.zoo.language import TrainedLanguageModel

# pytest-xdist runs one worker per core: one thread each avoids oversubscription.
torch.set_num_threads(1)


def _mlp(n_in: int = 6, hidden: int = 8, n_out: int = 3, seed: int = 0,
         act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, hidden), act(), nn.Linear(hidden, hidden), act(),
                         nn.Linear(hidden, n_out)).double().eval()


def _cnn(channels: int = 3, classes: int = 10, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(32, classes),
    ).double().eval()


@pytest.fixture
def make_mlp() -> Callable[..., nn.Sequential]:
    """Factory of seeded float64 MLPs ``(N, n_in) -> (N, n_out)`` in eval mode."""
    return _mlp


@pytest.fixture
def make_cnn() -> Callable[..., nn.Sequential]:
    """Factory of seeded float64 CNNs ``(N, C, 8, 8) -> (N, classes)`` in eval mode."""
    return _cnn


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator for test data."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def tiny_lm() -> TrainedLanguageModel:
    """The LSTM language model of ``TINY_CONFIG`` in float64 (trains in seconds, then cached).

    Shared by the language-model tests of the zoo and the experiments: their mechanics are
    checked on this small model, never on the full training.
    """
    from attribkit.core.threads import one_thread
    from attribkit.zoo import language

    with one_thread():
        return language.load_language_model(language.TINY_CONFIG, dtype=torch.float64)
