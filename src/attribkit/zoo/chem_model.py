"""A small Weave-style graph-convolution network for molecular properties, and its training.

:class:`GraphConvNet` maps dense padded atom features ``(B, A, Fa)``, pair features
``(B, A, A, Fp)`` and an atom mask ``(B, A)`` to one score per molecule, the SUM over atoms of a
per-atom readout, so that per-atom attributions have a natural meaning. Each of its
:data:`N_LAYERS` layers updates atoms from atoms and from their pairs, and pairs from pairs and
from their two atoms (Kearnes et al. 2016). :class:`MoleculeModel` wraps it for attribkit: one
packed float row per molecule (see :func:`attribkit.zoo.chem_features.pack`).

:func:`train_property_model` fits it on the NCI ``first_5k.tpsa.csv`` molecules that ship with
RDKit, to their TPSA (``"tpsa"``) or to Crippen logP computed by RDKit (``"logp"``),
deterministically from a seed; the weights are cached in ``cache_dir("chem")``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.zoo._cache import cache_dir
from attribkit.zoo.chem_features import (
    N_ATOM_FEATURES,
    N_PAIR_FEATURES,
    MolFeatures,
    batch_features,
    featurize,
    mol_from_smiles,
    unpack,
)

__all__ = [
    "MAX_ATOMS",
    "MODEL_VERSION",
    "N_LAYERS",
    "PROPERTIES",
    "GraphConvNet",
    "MoleculeModel",
    "MoleculeSet",
    "TrainedModel",
    "WeaveLayer",
    "load_molecules",
    "load_property_model",
    "property_values",
    "train_property_model",
]

MODEL_VERSION = "1"
"""Bumped whenever the data, features, architecture or training change; part of the cache key."""
N_LAYERS = 2
"""Graph-convolution layers."""
MAX_ATOMS = 40
"""Molecules with more heavy atoms are left out of the training and test sets."""
PROPERTIES: tuple[str, ...] = ("tpsa", "logp")
"""Targets :func:`train_property_model` knows."""
_ATOM_HIDDEN = 48
_PAIR_HIDDEN = 16
_N_TEST = 300
_EXTRA_HINT = "install the chem extra: pip install 'attribkit[chem]'"


class WeaveLayer(nn.Module):
    """One atom/pair convolution: ``A' = relu(W A + Z sum_j relu(U P_ij))``,
    ``P'_ij = relu(V P_ij + X A_i + X A_j)``.

    Parameters
    ----------
    atom_in, pair_in : int
        Input widths.
    atom_out, pair_out : int
        Output widths.
    update_pairs : bool
        Whether to compute new pair states (the last layer's would be unused).
    """

    def __init__(self, atom_in: int, pair_in: int, atom_out: int, pair_out: int,
                 update_pairs: bool = True) -> None:
        super().__init__()
        self.atom_atom = nn.Linear(atom_in, atom_out)
        self.pair_message = nn.Linear(pair_in, pair_out)
        self.pair_atom = nn.Linear(pair_out, atom_out, bias=False)
        self.update_pairs = update_pairs
        self.message_relu, self.atom_relu, self.pair_relu = nn.ReLU(), nn.ReLU(), nn.ReLU()
        if update_pairs:
            self.pair_pair = nn.Linear(pair_in, pair_out)
            self.atom_pair = nn.Linear(atom_in, pair_out, bias=False)

    def forward(self, atoms: Tensor, pairs: Tensor, pair_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Updated ``(atoms, pairs)``; ``pair_mask`` ``(B, A, A)`` marks real distinct pairs."""
        messages = self.message_relu(self.pair_message(pairs)) * pair_mask.unsqueeze(-1)
        from_pairs = self.pair_atom(messages.sum(dim=2))
        new_atoms = self.atom_relu(self.atom_atom(atoms) + from_pairs)
        if not self.update_pairs:
            return new_atoms, pairs
        ap = self.atom_pair(atoms)
        new_pairs = self.pair_relu(self.pair_pair(pairs) + ap.unsqueeze(2) + ap.unsqueeze(1))
        return new_atoms, new_pairs


class GraphConvNet(nn.Module):
    """Weave-style graph network with a sum-over-atoms readout: ``(atoms, pairs, mask) -> (B,)``.

    Parameters
    ----------
    n_layers : int
        Convolution layers.
    atom_hidden, pair_hidden : int
        Hidden widths of atoms and pairs.
    """

    def __init__(self, n_layers: int = N_LAYERS, atom_hidden: int = _ATOM_HIDDEN,
                 pair_hidden: int = _PAIR_HIDDEN) -> None:
        super().__init__()
        widths = [(N_ATOM_FEATURES, N_PAIR_FEATURES)] + [(atom_hidden, pair_hidden)] * n_layers
        self.layers = nn.ModuleList(
            WeaveLayer(widths[k][0], widths[k][1], widths[k + 1][0], widths[k + 1][1],
                       update_pairs=k < n_layers - 1)
            for k in range(n_layers)
        )
        self.readout = nn.Sequential(nn.Linear(atom_hidden, atom_hidden), nn.ReLU(),
                                     nn.Linear(atom_hidden, 1))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("offset", torch.zeros(()))

    def atom_scores(self, atoms: Tensor, pairs: Tensor, mask: Tensor) -> Tensor:
        """Per-atom readouts ``(B, A)`` (zero on padding); the output is their sum."""
        eye = torch.eye(atoms.shape[1], dtype=mask.dtype, device=mask.device)
        pair_mask = mask.unsqueeze(2) * mask.unsqueeze(1) * (1 - eye)
        a, p = atoms, pairs
        for layer in self.layers:
            a, p = layer(a, p, pair_mask)
        per_atom: Tensor = self.readout(a).squeeze(-1) * mask
        scale = self.get_buffer("scale")
        offset = self.get_buffer("offset")
        return (per_atom + offset) * scale * mask

    def forward(self, atoms: Tensor, pairs: Tensor, mask: Tensor) -> Tensor:
        """Molecule scores ``(B,)`` in the property's units."""
        return self.atom_scores(atoms, pairs, mask).sum(dim=1)


class MoleculeModel(nn.Module):
    """attribkit's view of a :class:`GraphConvNet`: ``forward(packed, mask=None) -> (B,)``.

    ``packed`` holds one row per molecule (:func:`~attribkit.zoo.chem_features.pack`), so a
    single-input attribution method attributes atoms and pairs jointly. Without ``mask`` every
    atom slot is real (one molecule, or molecules of equal size); with padded batches pass the
    mask with ``forward_args=(mask,)`` so it stays fixed along the path.

    Parameters
    ----------
    net : GraphConvNet
        The trained network.
    """

    def __init__(self, net: GraphConvNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, packed: Tensor, mask: Tensor | None = None) -> Tensor:
        """Molecule scores ``(B,)``."""
        atoms, pairs = unpack(packed)
        if mask is None:
            mask = torch.ones(atoms.shape[:2], dtype=packed.dtype, device=packed.device)
        out: Tensor = self.net(atoms, pairs, mask.to(packed.dtype))
        return out


# -- data ----------------------------------------------------------------------------------------
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


# -- training ------------------------------------------------------------------------------------
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


def _batches(sizes: Sequence[int], batch_size: int, gen: torch.Generator) -> list[list[int]]:
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    groups = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    perm = torch.randperm(len(groups), generator=gen).tolist()
    return [groups[p] for p in perm]


def _predict(net: GraphConvNet, feats: Sequence[MolFeatures], dtype: torch.dtype,
             batch_size: int = 128) -> np.ndarray[Any, Any]:
    out = []
    with torch.no_grad():
        order = sorted(range(len(feats)), key=lambda i: feats[i].n_atoms)
        preds = np.zeros(len(feats))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            a, p, m = batch_features([feats[i] for i in idx], dtype=dtype)
            preds[idx] = net(a, p, m).double().numpy()
        out.append(preds)
    return out[0]


def _cache_path(prop: str, n_train: int, epochs: int, seed: int) -> pathlib.Path:
    return cache_dir("chem") / f"{prop}_v{MODEL_VERSION}_n{n_train}_e{epochs}_s{seed}.pt"


def _fit(net: GraphConvNet, train: MoleculeSet,
         cached: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]], sizes: list[int],
         batch_size: int, gen: torch.Generator, opt: torch.optim.Optimizer,
         sched: torch.optim.lr_scheduler.LRScheduler, epochs: int, scale: float) -> None:
    for _ in range(epochs):
        for idx in _batches(sizes, batch_size, gen):
            key = tuple(idx)
            if key not in cached:
                cached[key] = batch_features([train.features[i] for i in idx],
                                             dtype=torch.float32)
            a, p, m = cached[key]
            y = torch.as_tensor(train.values[idx], dtype=torch.float32)
            loss = ((net(a, p, m) - y) / scale).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()


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
        gen = torch.Generator().manual_seed(seed)
        scale = float(np.std(train.values)) or 1.0
        per_atom = float(np.sum(train.values) / sum(f.n_atoms for f in train.features))
        net.get_buffer("scale").fill_(scale)
        net.get_buffer("offset").fill_(per_atom / scale)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sizes = [f.n_atoms for f in train.features]
        steps = epochs * len(_batches(sizes, batch_size, torch.Generator().manual_seed(0)))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, steps))
        cached: dict[tuple[int, ...], tuple[Tensor, Tensor, Tensor]] = {}
        net.train()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small ops: one thread is faster and bitwise reproducible
        try:
            _fit(net, train, cached, sizes, batch_size, gen, opt, sched, epochs, scale)
        finally:
            torch.set_num_threads(threads)
        net.eval()
        if cache:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state": net.state_dict()}, tmp)
            tmp.replace(path)
    net = net.double().eval()
    tr = _predict(net, train.features, torch.float64)
    te = _predict(net, test.features, torch.float64)
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
