"""The one training loop of the chemistry zoo's graph networks, and their batched predictions.

The property regressor (:mod:`attribkit.zoo.chem.properties`) and the activity classifier
(:mod:`attribkit.zoo.chem.activity`) are both fitted by :func:`fit`: float32 Adam with a
one-cycle schedule on size-sorted mini-batches in a seeded order, on one thread with
``torch.use_deterministic_algorithms``, so that a seed gives the same weights bit for bit on one
machine. Another processor may still give other weights: the float32 kernels choose their
vector instructions (AVX2, AVX-512, ...) and with them the order of their sums by processor, and
training amplifies a last-bit difference (two epochs on 120 molecules already end in other
weights under ``ATEN_CPU_CAPABILITY=default`` than on AVX-512, and in others again with
``MKL_CBWR=COMPATIBLE``). Setting both before Python starts pins PyTorch's and MKL's kernel
paths; the spread over seeds that :mod:`attribkit.experiments.chem_seeds` reports is what a
retrain elsewhere can change.
The two models differ only in the loss, the targets and the weight decay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.threads import one_thread
from attribkit.zoo.chem.features import MolFeatures, batch_features
from attribkit.zoo.chem.model import GraphConvNet

__all__ = ["batches", "fit", "predict"]


def batches(sizes: Sequence[int], batch_size: int, gen: torch.Generator) -> list[list[int]]:
    """Mini-batches of molecules of similar size, in a random order drawn from ``gen``.

    Parameters
    ----------
    sizes : sequence of int
        Atoms per molecule.
    batch_size : int
        Molecules per batch (the last batch may be smaller).
    gen : torch.Generator
        Draws the order of the batches.

    Returns
    -------
    list of list of int
        Molecule indices, one list per batch.
    """
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    groups = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    perm = torch.randperm(len(groups), generator=gen).tolist()
    return [groups[p] for p in perm]


def fit(net: GraphConvNet, features: Sequence[MolFeatures], targets: np.ndarray[Any, Any],
        loss: Callable[[Tensor, Tensor], Tensor], *, epochs: int, batch_size: int, lr: float,
        seed: int, weight_decay: float = 0.0) -> None:
    """Train ``net`` in place on float32 batches; it is left in eval mode.

    Parameters
    ----------
    net : GraphConvNet
        The network, initialised (and its output scale and offset set) by the caller.
    features : sequence of MolFeatures
        The training molecules.
    targets : numpy.ndarray
        ``(M,)`` one target per molecule.
    loss : callable
        ``loss(scores, targets)`` of a batch, a scalar tensor.
    epochs : int
        Passes over the molecules.
    batch_size : int
        Molecules per step.
    lr : float
        Peak Adam learning rate of the one-cycle schedule.
    seed : int
        Seed of the batch order.
    weight_decay : float
        Adam's weight decay.
    """
    gen = torch.Generator().manual_seed(seed)
    sizes = [f.n_atoms for f in features]
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * len(batches(sizes, batch_size, torch.Generator().manual_seed(0)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps))
    cached: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]] = {}
    net.train()
    # small ops: one thread is faster and bitwise reproducible; no nondeterministic kernel
    with one_thread(deterministic=True):
        for _ in range(epochs):
            for idx in batches(sizes, batch_size, gen):
                key = tuple(idx)
                if key not in cached:
                    cached[key] = batch_features([features[i] for i in idx],
                                                 dtype=torch.float32)
                a, p, m = cached[key]
                y = torch.as_tensor(targets[idx], dtype=torch.float32)
                value = loss(net(a, p, m), y)
                opt.zero_grad()
                torch.autograd.backward(value)
                opt.step()
                sched.step()
    net.eval()


def predict(net: GraphConvNet, features: Sequence[MolFeatures], batch_size: int,
            dtype: torch.dtype = torch.float64) -> np.ndarray[Any, Any]:
    """The network's scores of ``features``, in size-sorted batches without gradients.

    Parameters
    ----------
    net : GraphConvNet
        The network, in ``dtype``.
    features : sequence of MolFeatures
        The molecules.
    batch_size : int
        Molecules per batch.
    dtype : torch.dtype
        Dtype of the batched features.

    Returns
    -------
    numpy.ndarray
        ``(M,)`` float64 scores in the order of ``features``.
    """
    order = sorted(range(len(features)), key=lambda i: features[i].n_atoms)
    out = np.zeros(len(features))
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            a, p, m = batch_features([features[i] for i in idx], dtype=dtype)
            out[idx] = net(a, p, m).double().numpy()
    return out
