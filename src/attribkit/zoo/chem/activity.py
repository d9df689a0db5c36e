"""An activity classifier on the CHEMBL2321810 molecules of RDKit's contrib data (Gradients of
Counterfactuals, 3.1).

Gradients of Counterfactuals ("Gradients of Counterfactuals", section 3.1) attributes a ligand-based
virtual screening network: a Kearnes et al. graph convolution with atom and atom-pair features whose
output is the probability that a molecule is active against a target. This module builds the
same kind of model from data that ship inside RDKit:

* data: ``RDConfig.RDContribDir/FreeWilson/data/CHEMBL2321810.smi`` (SMILES, ``Name``) merged on
  ``Name`` with ``CHEMBL2321810_act.csv`` (``Act``: a pIC50, 4.27 to 9.22): 1017 sulfonamides;
* label: active when ``Act >= 6.5`` (IC50 at most about 316 nM). 6.5 is the half-log step
  nearest the median (6.44), so the classes are balanced (492 active, 525 inactive) and accuracy
  is read against a 52 % majority rate;
* split: a seeded permutation, the last 200 molecules held out;
* model: :class:`~attribkit.zoo.chem.model.GraphConvNet` (two Weave layers over atom features
  and pair features for EVERY pair of atoms, bonded or not), whose sum-over-atoms output is the
  logit; :class:`ActivityModel` returns ``sigmoid(logit)``, the two-class softmax score the
  paper attributes (``probability=False`` gives the logit);
* training: binary cross-entropy, Adam with a one-cycle schedule, float32, one thread,
  deterministic for a seed (:func:`attribkit.zoo.chem.training.fit`); cached in
  ``cache_dir("chem")``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits

from attribkit.core.errors import InputError
from attribkit.zoo._cache import cache_dir
from attribkit.zoo.chem.features import MolFeatures, featurize, mol_from_smiles
from attribkit.zoo.chem.model import GraphConvNet, MoleculeModel
from attribkit.zoo.chem.training import fit, predict

__all__ = [
    "ACTIVE_THRESHOLD",
    "ACTIVITY_VERSION",
    "ActivityModel",
    "ActivitySet",
    "TrainedClassifier",
    "load_activity",
    "load_activity_model",
    "roc_auc",
    "split_indices",
    "train_activity_model",
]

ACTIVITY_VERSION = "1"
"""Bumped whenever the data, label, architecture or training change; part of the cache key."""
ACTIVE_THRESHOLD = 6.5
"""A molecule is active when its pIC50 is at least this (IC50 <= ~316 nM)."""
_N_TEST = 200
_EXTRA_HINT = "install the chem extra: pip install 'attribkit[chem]'"


class ActivityModel(MoleculeModel):
    """A :class:`MoleculeModel` whose score is the probability of activity (or its logit).

    Parameters
    ----------
    net : GraphConvNet
        The trained network (its output is the logit).
    probability : bool
        Return ``sigmoid(logit)`` (the paper's softmax score) rather than the logit.
    """

    def __init__(self, net: GraphConvNet, probability: bool = True) -> None:
        super().__init__(net)
        self.probability = probability

    def forward(self, packed: Tensor, mask: Tensor | None = None) -> Tensor:
        """Scores ``(B,)``: probabilities of activity, or logits."""
        logit = super().forward(packed, mask)
        return torch.sigmoid(logit) if self.probability else logit


@dataclasses.dataclass(frozen=True)
class ActivitySet:
    """Molecules with their pIC50 and activity label.

    Attributes
    ----------
    smiles, names : tuple of str
        SMILES and CHEMBL record names.
    features : tuple of MolFeatures
        Featurised molecules.
    pic50 : numpy.ndarray
        ``(M,)`` float64 activities.
    labels : numpy.ndarray
        ``(M,)`` float64, 1.0 for active (``pic50 >= ACTIVE_THRESHOLD``).
    """

    smiles: tuple[str, ...]
    names: tuple[str, ...]
    features: tuple[MolFeatures, ...]
    pic50: np.ndarray[Any, Any]
    labels: np.ndarray[Any, Any]

    def __len__(self) -> int:
        return len(self.smiles)


@functools.lru_cache(maxsize=1)
def _chembl() -> tuple[tuple[str, ...], tuple[str, ...], tuple[float, ...]]:
    try:
        import pandas as pd
        from rdkit import RDConfig
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"the activity data need RDKit and pandas; {_EXTRA_HINT}.") from err
    root = os.path.join(RDConfig.RDContribDir, "FreeWilson", "data")
    smi = os.path.join(root, "CHEMBL2321810.smi")
    if not os.path.isfile(smi):
        raise InputError(f"RDKit's contrib data are missing ({smi}); install an RDKit wheel "
                         "that ships Contrib/FreeWilson.")
    mols = pd.read_csv(smi, sep=" ", header=None, names=["smiles", "Name"], dtype={"Name": str})
    act = pd.read_csv(os.path.join(root, "CHEMBL2321810_act.csv"), dtype={"Name": str})
    df = mols.merge(act, on="Name", how="inner", validate="one_to_one")
    return (tuple(str(s) for s in df["smiles"]), tuple(str(n) for n in df["Name"]),
            tuple(float(v) for v in df["Act"]))


def split_indices(seed: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Rows (file order) of the training and held-out molecules: a seeded permutation, the
    last 200 held out.

    Parameters
    ----------
    seed : int
        Permutation seed.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Training rows and held-out rows.
    """
    perm = np.random.default_rng(seed).permutation(len(_chembl()[0]))
    return perm[:-_N_TEST], perm[-_N_TEST:]


def load_activity(split: str = "all", seed: int = 0, n: int | None = None) -> ActivitySet:
    """The CHEMBL2321810 molecules, featurised and labelled; a seeded train / test split.

    Parameters
    ----------
    split : str
        ``"train"``, ``"test"`` (the last 200 of a seeded permutation) or ``"all"`` (file order).
    seed : int
        Permutation seed.
    n : int, optional
        Take only the first ``n`` molecules of the split.

    Returns
    -------
    ActivitySet
        The molecules.
    """
    if split not in ("train", "test", "all"):
        raise InputError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    smiles, names, act = _chembl()
    order = np.arange(len(smiles)) if split == "all" else split_indices(seed)[split == "test"]
    if n is not None:
        order = order[:n]
    feats = tuple(featurize(mol_from_smiles(smiles[i])) for i in order)
    pic50 = np.asarray([act[i] for i in order], dtype=np.float64)
    return ActivitySet(tuple(smiles[i] for i in order), tuple(names[i] for i in order), feats,
                       pic50, (pic50 >= ACTIVE_THRESHOLD).astype(np.float64))


def roc_auc(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> float:
    """Area under the ROC curve: the probability that an active outscores an inactive (ties 1/2).

    Parameters
    ----------
    scores, labels : numpy.ndarray
        ``(M,)`` scores and 0/1 labels.

    Returns
    -------
    float
        The AUC, NaN when one class is absent.
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels) > 0.5
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@dataclasses.dataclass(frozen=True)
class TrainedClassifier:
    """A trained activity classifier and its held-out quality.

    Attributes
    ----------
    model : ActivityModel
        float64, eval mode, probability output.
    train_accuracy, test_accuracy, test_auc : float
        Accuracy at probability 0.5 and ROC AUC.
    test_active_rate : float
        Fraction of held-out molecules that are active (the majority baseline is
        ``max(rate, 1 - rate)``).
    n_train, n_test, epochs, seed : int
        How it was trained and measured.
    seconds : float
        Training time in seconds, measured when it was trained (also when loaded from the
        cache; NaN for weights cached without it).
    cached : bool
        Whether the weights came from the cache.
    """

    model: ActivityModel
    train_accuracy: float
    test_accuracy: float
    test_auc: float
    test_active_rate: float
    n_train: int
    n_test: int
    epochs: int
    seed: int
    seconds: float
    cached: bool = False


def _cache_path(epochs: int, seed: int) -> pathlib.Path:
    return cache_dir("chem") / f"activity_v{ACTIVITY_VERSION}_e{epochs}_s{seed}.pt"


def train_activity_model(epochs: int = 25, seed: int = 0, n_train: int | None = None,
                         batch_size: int = 16, lr: float = 1e-2, n_layers: int = 2,
                         cache: bool = True) -> TrainedClassifier:
    """Train (or load from the cache) the activity classifier; measure it on held-out molecules.

    Parameters
    ----------
    epochs : int
        Passes over the training molecules.
    seed : int
        Seed of the split, the initialisation and the batch order.
    n_train : int, optional
        Use only the first ``n_train`` training molecules (tests); default all 817.
    batch_size : int
        Molecules per step.
    lr : float
        Peak Adam learning rate of the one-cycle schedule.
    n_layers : int
        Graph-convolution layers (the paper's W2N2 network has two).
    cache : bool
        Read and write the weights in the cache directory (only for the full training set).

    Returns
    -------
    TrainedClassifier
        The float64 probability model and its accuracy / ROC AUC.
    """
    import time

    use_cache = cache and n_train is None and batch_size == 16 and lr == 1e-2
    path = _cache_path(epochs, seed)
    if n_layers != 2:
        path = path.with_name(path.stem + f"_l{n_layers}.pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = GraphConvNet(n_layers=n_layers)
    if use_cache and path.is_file():
        blob = torch.load(path, weights_only=True)
        net.load_state_dict(blob["state"])
        if "quality" in blob:  # measured when it was trained: no need to featurise again
            net = net.double().eval()
            q = {k: float(v) for k, v in blob["quality"].items()}
            return TrainedClassifier(
                model=ActivityModel(net).eval(), train_accuracy=q["train_accuracy"],
                test_accuracy=q["test_accuracy"], test_auc=q["test_auc"],
                test_active_rate=q["test_active_rate"], n_train=int(q["n_train"]),
                n_test=int(q["n_test"]), epochs=epochs, seed=seed,
                seconds=q.get("seconds", float("nan")), cached=True)
    train = load_activity("train", seed, n_train)
    test = load_activity("test", seed)
    start = time.perf_counter()
    seconds = float("nan")
    trained = not (use_cache and path.is_file())
    if trained:
        rate = float(np.clip(train.labels.mean(), 0.05, 0.95))
        mean_atoms = float(np.mean([f.n_atoms for f in train.features]))
        net.get_buffer("scale").fill_(1.0)
        net.get_buffer("offset").fill_(float(np.log(rate / (1 - rate))) / mean_atoms)
        fit(net, train.features, train.labels, binary_cross_entropy_with_logits,
            epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, weight_decay=1e-5)
        seconds = time.perf_counter() - start
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net = net.double().eval()
    tr, te = predict(net, train.features, 64), predict(net, test.features, 64)
    quality = {"train_accuracy": float(np.mean((tr > 0) == (train.labels > 0.5))),
               "test_accuracy": float(np.mean((te > 0) == (test.labels > 0.5))),
               "test_auc": roc_auc(te, test.labels),
               "test_active_rate": float(test.labels.mean()),
               "n_train": float(len(train)), "n_test": float(len(test)), "seconds": seconds}
    if use_cache:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"state": state, "quality": quality}, tmp)
        tmp.replace(path)
    return TrainedClassifier(
        model=ActivityModel(net).eval(), train_accuracy=quality["train_accuracy"],
        test_accuracy=quality["test_accuracy"], test_auc=quality["test_auc"],
        test_active_rate=quality["test_active_rate"], n_train=len(train), n_test=len(test),
        epochs=epochs, seed=seed, seconds=seconds, cached=not trained)


def load_activity_model(seed: int = 0) -> ActivityModel:
    """The cached (or trained now, about a minute) float64 activity classifier.

    Parameters
    ----------
    seed : int
        Training seed.

    Returns
    -------
    ActivityModel
        Probability of activity, eval mode.
    """
    return train_activity_model(seed=seed).model
