"""Molecular properties: the NCI molecules with TPSA or Crippen logP, and the trained regressor.

:func:`train_property_model` fits a :class:`~attribkit.zoo.chem.model.GraphConvNet` on the NCI
``first_5k.tpsa.csv`` molecules that ship with RDKit, to their TPSA (``"tpsa"``) or to Crippen
logP computed by RDKit (``"logp"``), deterministically from a seed
(:func:`attribkit.zoo.chem.training.fit`); the weights are cached in ``cache_dir("chem")``.
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

from attribkit.core.errors import InputError
from attribkit.zoo._cache import cache_dir
from attribkit.zoo.chem.features import MolFeatures, featurize, mol_from_smiles
from attribkit.zoo.chem.model import GraphConvNet, MoleculeModel
from attribkit.zoo.chem.training import fit, predict

__all__ = [
    "MAX_ATOMS",
    "MODEL_VERSION",
    "PROPERTIES",
    "MoleculeSet",
    "TrainedModel",
    "load_molecules",
    "load_property_model",
    "property_values",
    "train_property_model",
]

MODEL_VERSION = "1"
"""Bumped whenever the data, features, architecture or training change; part of the cache key."""
MAX_ATOMS = 40
"""Molecules with more heavy atoms are left out of the training and test sets."""
PROPERTIES: tuple[str, ...] = ("tpsa", "logp")
"""Targets :func:`train_property_model` knows."""
_N_TEST = 300
_EXTRA_HINT = "install the chem extra: pip install 'attribkit[chem]'"


@dataclasses.dataclass(frozen=True)
class MoleculeSet:
    """Molecules with their features and a property.

    Attributes
    ----------
    smiles : tuple of str
        Input SMILES.
    features : tuple of MolFeatures
        Featurised molecules.
    values : numpy.ndarray
        ``(M,)`` float64 property values.
    """

    smiles: tuple[str, ...]
    features: tuple[MolFeatures, ...]
    values: np.ndarray[Any, Any]

    def __len__(self) -> int:
        return len(self.smiles)


@functools.lru_cache(maxsize=1)
def _nci_smiles() -> tuple[tuple[str, ...], tuple[float, ...]]:
    try:
        import pandas as pd
        from rdkit import RDConfig
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.chem needs RDKit and pandas; {_EXTRA_HINT}.") from err
    path = os.path.join(RDConfig.RDDataDir, "NCI", "first_5k.tpsa.csv")
    # First line is a comment; '#' inside SMILES is a triple bond, so no comment= option.
    df = pd.read_csv(path, skiprows=1, header=None, names=["smiles", "tpsa"])
    return tuple(str(s) for s in df["smiles"]), tuple(float(v) for v in df["tpsa"])


def property_values(mol: Any, prop: str) -> float:
    """The exact property RDKit computes: ``"tpsa"`` (``CalcTPSA``) or ``"logp"`` (Crippen).

    Parameters
    ----------
    mol : rdkit.Chem.Mol or str
        A molecule or SMILES.
    prop : str
        ``"tpsa"`` or ``"logp"``.

    Returns
    -------
    float
        The value.
    """
    from rdkit.Chem import Crippen as _crippen
    from rdkit.Chem import rdMolDescriptors

    crippen: Any = _crippen
    if isinstance(mol, str):
        mol = mol_from_smiles(mol)
    if prop == "tpsa":
        return float(rdMolDescriptors.CalcTPSA(mol))
    if prop == "logp":
        return float(crippen.MolLogP(mol))
    raise InputError(f"unknown property {prop!r}; choose one of {PROPERTIES}.")


def load_molecules(prop: str = "tpsa", split: str = "train", n: int | None = None,
                   seed: int = 0) -> MoleculeSet:
    """A seeded train or test subset of the NCI molecules, featurised, with a property.

    Molecules that RDKit cannot parse or with more than :data:`MAX_ATOMS` heavy atoms are left
    out. The last 300 molecules of a seeded permutation are the test set; the training set is
    drawn from the others, so the two never overlap whatever ``n`` is.

    Parameters
    ----------
    prop : str
        ``"tpsa"`` (the file's values) or ``"logp"`` (Crippen logP by RDKit).
    split : str
        ``"train"`` or ``"test"``.
    n : int, optional
        Molecules to take (default: all of the split).
    seed : int
        Permutation seed.

    Returns
    -------
    MoleculeSet
        The molecules.
    """
    if prop not in PROPERTIES:
        raise InputError(f"unknown property {prop!r}; choose one of {PROPERTIES}.")
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test', got {split!r}.")
    smiles, tpsa = _nci_smiles()
    perm = np.random.default_rng(seed).permutation(len(smiles))
    order = perm[-_N_TEST:] if split == "test" else perm[:-_N_TEST]
    chosen: list[str] = []
    feats: list[MolFeatures] = []
    values: list[float] = []
    for i in order:
        if n is not None and len(chosen) >= n:
            break
        try:
            mol = mol_from_smiles(smiles[i])
        except InputError:
            continue
        if not 2 <= mol.GetNumAtoms() <= MAX_ATOMS:
            continue
        chosen.append(smiles[i])
        feats.append(featurize(mol))
        values.append(tpsa[i] if prop == "tpsa" else property_values(mol, "logp"))
    return MoleculeSet(tuple(chosen), tuple(feats), np.asarray(values, dtype=np.float64))


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A trained property model and its fit.

    Attributes
    ----------
    model : MoleculeModel
        The model (eval mode).
    prop : str
        The property.
    train_rmse, test_rmse : float
        Root mean squared errors in the property's units.
    test_r2 : float
        Coefficient of determination on the held-out molecules.
    n_train, epochs, seed : int
        How it was trained.
    """

    model: MoleculeModel
    prop: str
    train_rmse: float
    test_rmse: float
    test_r2: float
    n_train: int
    epochs: int
    seed: int


def _cache_path(prop: str, n_train: int, epochs: int, seed: int) -> pathlib.Path:
    return cache_dir("chem") / f"{prop}_v{MODEL_VERSION}_n{n_train}_e{epochs}_s{seed}.pt"


def train_property_model(prop: str = "tpsa", n_train: int = 2000, epochs: int = 30,
                         seed: int = 0, n_test: int = 200, batch_size: int = 16,
                         lr: float = 3e-3, cache: bool = True) -> TrainedModel:
    """Train (or load from the cache) a :class:`GraphConvNet` on TPSA or Crippen logP.

    Training is full float32 Adam on size-sorted mini-batches, deterministic given ``seed``;
    the returned model is float64 for precise attributions.

    Parameters
    ----------
    prop : str
        ``"tpsa"`` or ``"logp"``.
    n_train : int
        Training molecules.
    epochs : int
        Passes over them.
    seed : int
        Seed of the split, the initialisation and the batch order.
    n_test : int
        Held-out molecules for the reported error.
    batch_size : int
        Molecules per step.
    lr : float
        Adam learning rate (cosine-decayed to zero).
    cache : bool
        Read and write the weights in the cache directory.

    Returns
    -------
    TrainedModel
        The model and its errors.
    """
    train = load_molecules(prop, "train", n_train, seed)
    test = load_molecules(prop, "test", n_test, seed)
    path = _cache_path(prop, n_train, epochs, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = GraphConvNet()
    if cache and path.is_file():
        blob = torch.load(path, weights_only=True)
        net.load_state_dict(blob["state"])
    else:
        scale = float(np.std(train.values)) or 1.0
        per_atom = float(np.sum(train.values) / sum(f.n_atoms for f in train.features))
        net.get_buffer("scale").fill_(scale)
        net.get_buffer("offset").fill_(per_atom / scale)

        def loss(scores: Tensor, y: Tensor) -> Tensor:
            return ((scores - y) / scale).pow(2).mean()

        fit(net, train.features, train.values, loss, epochs=epochs, batch_size=batch_size,
            lr=lr, seed=seed)
        if cache:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state": net.state_dict()}, tmp)
            tmp.replace(path)
    net = net.double().eval()
    tr = predict(net, train.features, 128)
    te = predict(net, test.features, 128)
    rmse_tr = float(np.sqrt(np.mean((tr - train.values) ** 2)))
    rmse_te = float(np.sqrt(np.mean((te - test.values) ** 2)))
    r2 = float(1 - np.sum((te - test.values) ** 2)
               / np.sum((test.values - test.values.mean()) ** 2))
    return TrainedModel(model=MoleculeModel(net).eval(), prop=prop, train_rmse=rmse_tr,
                        test_rmse=rmse_te, test_r2=r2, n_train=len(train), epochs=epochs,
                        seed=seed)


def load_property_model(prop: str = "tpsa", seed: int = 0) -> MoleculeModel:
    """The full (cached, or trained now in about a minute) float64 model for ``prop``.

    Parameters
    ----------
    prop : str
        ``"tpsa"`` or ``"logp"``.
    seed : int
        Training seed.

    Returns
    -------
    MoleculeModel
        The model, eval mode.
    """
    return train_property_model(prop, seed=seed).model
