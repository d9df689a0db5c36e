"""A small MLP on scikit-learn's breast-cancer data, ready to attribute (extra ``tabular``).

The 569 tumours of ``sklearn.datasets.load_breast_cancer`` have 30 columns: 10 base measurements
of the cell nuclei (radius, texture, ...) each given as its ``mean``, its standard ``error`` and its
``worst`` value. The data are split once (75 % / 25 %, stratified, fixed seed), standardised with
the training mean and standard deviation, and a ``30-32-16-2`` ReLU network is trained on them in
float64, full batch, deterministically from a seed (well under a second). The trained weights are
cached in :func:`attribkit.zoo._cache.cache_dir` so later calls only load them.

The model returns two logits per row, class 0 ``malignant`` and class 1 ``benign``. In the
standardised units the all-zero input is the average training tumour, a natural baseline.
:data:`FEATURE_GROUPS` and :func:`group_mask` gather the 30 columns into the 10 base
measurements, for Shapley values over column groups::

    from attribkit.zoo import tabular
    import attribkit

    model, data = tabular.load_breast_cancer_mlp(seed=0)
    attr = attribkit.integrated_gradients(model, data.X_test[:5], target=0)
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import tempfile
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.core.threads import one_thread
from attribkit.zoo._cache import cache_dir

__all__ = [
    "CLASS_NAMES",
    "FEATURE_GROUPS",
    "FEATURE_NAMES",
    "GROUP_NAMES",
    "HIDDEN",
    "MODEL_VERSION",
    "BreastCancerData",
    "accuracy",
    "breast_cancer_data",
    "build_mlp",
    "group_mask",
    "load_breast_cancer_mlp",
    "model_cache_path",
    "train_breast_cancer_mlp",
]

MODEL_VERSION = "2"
"""Bumped whenever the data split, architecture or training changes; part of the cache key."""
HIDDEN: tuple[int, int] = (32, 16)
"""Widths of the two hidden ReLU layers."""
TRAIN_STEPS = 300
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-2
TEST_FRACTION = 0.25
SPLIT_SEED = 0

GROUP_NAMES: tuple[str, ...] = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
"""The 10 base measurements of a cell nucleus."""
FEATURE_NAMES: tuple[str, ...] = (
    *(f"mean {g}" for g in GROUP_NAMES),
    *(f"{g} error" for g in GROUP_NAMES),
    *(f"worst {g}" for g in GROUP_NAMES),
)
"""The 30 column names, in scikit-learn's order."""
FEATURE_GROUPS: dict[str, tuple[int, ...]] = {
    g: (i, i + len(GROUP_NAMES), i + 2 * len(GROUP_NAMES)) for i, g in enumerate(GROUP_NAMES)
}
"""Base measurement -> its three column indices (mean, error, worst)."""
CLASS_NAMES: tuple[str, str] = ("malignant", "benign")
"""Class 0 and class 1 of the model output."""

_EXTRA_HINT = "install the tabular extra: pip install 'attribkit[tabular]'"


def group_mask() -> Tensor:
    """The group id (0..9, an index into :data:`GROUP_NAMES`) of each of the 30 columns.

    Returns
    -------
    Tensor
        ``(30,)`` int64; columns ``i``, ``i + 10`` and ``i + 20`` share group ``i``.
    """
    mask = torch.empty(len(FEATURE_NAMES), dtype=torch.long)
    for gid, name in enumerate(GROUP_NAMES):
        mask[list(FEATURE_GROUPS[name])] = gid
    return mask


@dataclasses.dataclass(frozen=True)
class BreastCancerData:
    """The standardised breast-cancer split (float64) and what is needed to read it.

    Attributes
    ----------
    X_train, X_test : Tensor
        ``(426, 30)`` and ``(143, 30)`` float64, standardised with the training statistics.
    y_train, y_test : Tensor
        int64 labels, 0 malignant, 1 benign.
    mean, std : Tensor
        ``(30,)`` float64 training mean and standard deviation in the raw units.
    feature_names : tuple of str
        The 30 column names.
    class_names : tuple of str
        ``("malignant", "benign")``.
    train_accuracy, test_accuracy : float
        Accuracy of the model returned alongside (NaN from :func:`breast_cancer_data`).
    seed : int or None
        Seed of the model returned alongside (None from :func:`breast_cancer_data`).
    """

    X_train: Tensor
    X_test: Tensor
    y_train: Tensor
    y_test: Tensor
    mean: Tensor
    std: Tensor
    feature_names: tuple[str, ...] = FEATURE_NAMES
    class_names: tuple[str, ...] = CLASS_NAMES
    train_accuracy: float = math.nan
    test_accuracy: float = math.nan
    seed: int | None = None

    def standardise(self, raw: Tensor | np.ndarray[Any, Any]) -> Tensor:
        """Raw measurements ``(N, 30)`` -> the model's float64 input.

        Parameters
        ----------
        raw : Tensor or numpy.ndarray
            Rows in the units of ``load_breast_cancer().data``.

        Returns
        -------
        Tensor
            ``(raw - mean) / std``.
        """
        r = torch.as_tensor(np.asarray(raw, dtype=np.float64))
        if r.dim() != 2 or r.shape[1] != self.mean.numel():
            raise InputError(f"expected raw rows of shape (N, 30), got {tuple(r.shape)}.")
        return (r - self.mean) / self.std

    def unstandardise(self, x: Tensor) -> Tensor:
        """The model's input ``(N, 30)`` -> raw measurements.

        Parameters
        ----------
        x : Tensor
            Standardised rows.

        Returns
        -------
        Tensor
            ``x * std + mean``.
        """
        return x.double() * self.std + self.mean


def breast_cancer_data() -> BreastCancerData:
    """Load, split (75/25, stratified, fixed seed 0) and standardise the breast-cancer data.

    Returns
    -------
    BreastCancerData
        The split, without accuracies (see :func:`load_breast_cancer_mlp`).
    """
    try:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.tabular needs scikit-learn; {_EXTRA_HINT}.") from err
    bunch = load_breast_cancer()
    if tuple(str(n) for n in bunch.feature_names) != FEATURE_NAMES:  # pragma: no cover
        raise InputError("scikit-learn's breast-cancer columns changed; update FEATURE_NAMES.")
    x_tr, x_te, y_tr, y_te = train_test_split(
        np.asarray(bunch.data, dtype=np.float64),
        np.asarray(bunch.target, dtype=np.int64),
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=bunch.target,
    )
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    return BreastCancerData(
        X_train=torch.from_numpy((x_tr - mean) / std),
        X_test=torch.from_numpy((x_te - mean) / std),
        y_train=torch.from_numpy(y_tr),
        y_test=torch.from_numpy(y_te),
        mean=torch.from_numpy(mean),
        std=torch.from_numpy(std),
    )


def build_mlp() -> nn.Sequential:
    """The untrained ``30-32-16-2`` ReLU network, float64 (initialised from the global RNG).

    Returns
    -------
    torch.nn.Sequential
        Linear, ReLU, Linear, ReLU, Linear.
    """
    h1, h2 = HIDDEN
    return nn.Sequential(
        nn.Linear(len(FEATURE_NAMES), h1),
        nn.ReLU(),
        nn.Linear(h1, h2),
        nn.ReLU(),
        nn.Linear(h2, len(CLASS_NAMES)),
    ).double()


def train_breast_cancer_mlp(
    data: BreastCancerData, seed: int = 0, *, steps: int = TRAIN_STEPS
) -> nn.Sequential:
    """Train the MLP on ``data.X_train`` from scratch, deterministically (no cache).

    Full-batch AdamW (learning rate 1e-3, weight decay 1e-2) on the cross-entropy, on one CPU
    thread. The global random state and thread count are left as they were.

    Parameters
    ----------
    data : BreastCancerData
        From :func:`breast_cancer_data`.
    seed : int, default 0
        Seeds the initial weights.
    steps : int, default 300
        Optimiser steps.

    Returns
    -------
    torch.nn.Sequential
        The trained model, float64, in eval mode.
    """
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    model.train()
    # One thread: the matrices are tiny (threads only add overhead, badly so on a busy machine)
    # and the result no longer depends on the machine's thread count.
    with one_thread(deterministic=False):
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(data.X_train), data.y_train)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Share of rows whose arg-max logit equals the label.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning ``(N, C)`` logits.
    x : Tensor
        ``(N, ...)`` inputs.
    y : Tensor
        ``(N,)`` integer labels.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``.
    """
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return float((pred == y).double().mean())


def model_cache_path(seed: int = 0) -> pathlib.Path:
    """Where the weights of the model trained with ``seed`` are cached.

    Parameters
    ----------
    seed : int, default 0
        The training seed.

    Returns
    -------
    pathlib.Path
        ``<cache_dir>/tabular/breast_cancer_mlp-v<MODEL_VERSION>-seed<seed>.pt``.
    """
    return cache_dir("tabular") / f"breast_cancer_mlp-v{MODEL_VERSION}-seed{int(seed)}.pt"


def _load_cached(path: pathlib.Path) -> nn.Sequential | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_mlp()
        model.load_state_dict(state)
    except Exception:  # a partial or stale file: retrain and overwrite it
        return None
    return model.eval()


def _save_atomically(model: nn.Module, path: pathlib.Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_breast_cancer_mlp(
    seed: int = 0, *, cache: bool = True
) -> tuple[nn.Sequential, BreastCancerData]:
    """The trained breast-cancer MLP and its data, training it once if it is not cached.

    Each call returns a new model object, so changing it does not affect later calls.

    Parameters
    ----------
    seed : int, default 0
        Training seed (the data split is always the same).
    cache : bool, default True
        Read the weights from, and write them to, :func:`model_cache_path`. ``False`` always
        trains and writes nothing.

    Returns
    -------
    (torch.nn.Sequential, BreastCancerData)
        The float64 model in eval mode, mapping standardised rows ``(N, 30)`` to logits
        ``(N, 2)``, and the data with ``train_accuracy``, ``test_accuracy`` and ``seed`` filled in.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an int, got {type(seed).__name__}.")
    data = breast_cancer_data()
    path = model_cache_path(seed) if cache else None
    model = _load_cached(path) if path is not None else None
    if model is None:
        model = train_breast_cancer_mlp(data, seed)
        if path is not None:
            _save_atomically(model, path)
    data = dataclasses.replace(
        data,
        train_accuracy=accuracy(model, data.X_train, data.y_train),
        test_accuracy=accuracy(model, data.X_test, data.y_test),
        seed=seed,
    )
    return model, data
