"""Attributions of molecules to atoms and atom pairs, and faithfulness against exact truth.

:func:`explain_molecule` runs a registered method on one molecule and splits the attribution of
its packed row into atoms and atom pairs (:class:`MoleculeAttribution`); :func:`faithfulness`
measures how well a method recovers RDKit's exact per-atom contributions of TPSA or Crippen logP.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.zoo.chem.features import (
    N_ATOM_FEATURES,
    N_PAIR_FEATURES,
    MolFeatures,
    featurize,
    logp_contributions,
    mol_from_smiles,
    pack,
    tpsa_contributions,
    unpack,
)
from attribkit.zoo.chem.properties import PROPERTIES, MoleculeSet

__all__ = [
    "FaithfulnessResult",
    "MoleculeAttribution",
    "exact_contributions",
    "explain_molecule",
    "faithfulness",
    "pearson",
    "player_groups",
    "split_attribution",
]


@dataclasses.dataclass(frozen=True)
class MoleculeAttribution:
    """Attributions of one molecule's score to its atoms and atom pairs.

    Attributes
    ----------
    atoms : Tensor
        ``(A,)`` sum over each atom's feature attributions.
    pairs : Tensor
        ``(A, A)`` sum over each ordered pair's feature attributions (zero diagonal).
    bonded : Tensor
        ``(A, A)`` bool, True for bonded pairs.
    delta : float
        ``F(x) - F(x')`` of the attributed score (NaN when the method has no baseline).
    method : str
        The method's name.
    """

    atoms: Tensor
    pairs: Tensor
    bonded: Tensor
    delta: float
    method: str

    @property
    def total(self) -> float:
        """Sum of all atom and pair attributions."""
        return float(self.atoms.sum() + self.pairs.sum())

    def pair_matrix(self) -> Tensor:
        """``(A, A)`` symmetric attribution per unordered pair: ``pairs + pairs.T``."""
        return self.pairs + self.pairs.T

    def per_atom(self, include_pairs: bool = True) -> Tensor:
        """One score per atom.

        Parameters
        ----------
        include_pairs : bool
            Add half of each pair's attribution to each of its two atoms (the scores then sum to
            :attr:`total`); otherwise the atom features' attributions alone.

        Returns
        -------
        Tensor
            ``(A,)``.
        """
        if not include_pairs:
            return self.atoms
        return self.atoms + 0.5 * self.pair_matrix().sum(dim=1)

    def shares(self) -> dict[str, float]:
        """Fractions of :attr:`total` carried by atoms, bonded pairs and other pairs.

        Returns
        -------
        dict
            ``{"atoms": ..., "bonded_pairs": ..., "other_pairs": ...}`` (they sum to 1).
        """
        total = self.total
        if total == 0:
            return {"atoms": math.nan, "bonded_pairs": math.nan, "other_pairs": math.nan}
        bonded = float(self.pairs[self.bonded].sum())
        other = float(self.pairs.sum()) - bonded
        return {"atoms": float(self.atoms.sum()) / total, "bonded_pairs": bonded / total,
                "other_pairs": other / total}


def split_attribution(values: Tensor, bonded: Tensor, delta: float = math.nan,
                      method: str = "") -> MoleculeAttribution:
    """Turn the attribution of one packed molecule row into per-atom and per-pair scores.

    Parameters
    ----------
    values : Tensor
        ``(L,)`` or ``(1, L)`` attribution of a packed row (see :func:`pack`).
    bonded : Tensor
        ``(A, A)`` bonded-pair mask of the molecule.
    delta : float
        ``F(x) - F(x')`` to record.
    method : str
        Method name to record.

    Returns
    -------
    MoleculeAttribution
        Sums over each atom's and each pair's features.
    """
    row = values.reshape(1, -1) if values.dim() == 1 else values
    if row.shape[0] != 1:
        raise InputError("split_attribution() takes the attribution of one molecule.")
    atoms, pairs = unpack(row)
    n = atoms.shape[1]
    if bonded.shape != (n, n):
        raise InputError(f"bonded mask {tuple(bonded.shape)} does not match {n} atoms.")
    return MoleculeAttribution(atoms=atoms[0].sum(dim=-1), pairs=pairs[0].sum(dim=-1),
                               bonded=bonded.bool(), delta=delta, method=method)


def player_groups(n_atoms: int) -> Tensor:
    """Player ids of a packed row: one player per atom and one per unordered atom pair.

    Atom ``i``'s features get id ``i``; both ordered entries ``(i, j)`` and ``(j, i)`` of a pair
    get one id ``A + k``; the diagonal pairs (always zero) get ``-1`` (no player).

    Parameters
    ----------
    n_atoms : int
        Atoms ``A`` of the molecule.

    Returns
    -------
    Tensor
        ``(A * Fa + A * A * Fp,)`` int64, for methods with a ``groups`` option (Shapley values).
    """
    a = n_atoms
    atom_ids = torch.arange(a).repeat_interleave(N_ATOM_FEATURES)
    iu = torch.triu_indices(a, a, offset=1)
    pair = torch.full((a, a), -1, dtype=torch.long)
    ids = a + torch.arange(iu.shape[1])
    pair[iu[0], iu[1]] = ids
    pair[iu[1], iu[0]] = ids
    pair_ids = pair.unsqueeze(-1).expand(a, a, N_PAIR_FEATURES).reshape(-1)
    return torch.cat([atom_ids, pair_ids])


def _method_options(name: str, steps: int, packed: Tensor) -> dict[str, Any]:
    from attribkit.methods.registry import get

    sig = inspect.signature(get(name).fn)
    opts: dict[str, Any] = {}
    if "baseline" in sig.parameters:
        opts["baseline"] = None  # zeros: the paper's scaled-to-zero counterfactual
    if "background" in sig.parameters:
        opts["background"] = torch.zeros_like(packed)  # the same counterfactual as reference
    if "groups" in sig.parameters:
        opts["groups"] = player_groups(unpack(packed)[0].shape[1])
    if "steps" in sig.parameters:
        opts["steps"] = steps
    if "seed" in sig.parameters:
        opts["seed"] = 0
    return opts


def explain_molecule(model: nn.Module, mol: Any, method: str = "integrated_gradients",
                     steps: int = 50, **options: Any) -> MoleculeAttribution:
    """Attribute a :class:`MoleculeModel`'s score on one molecule to its atoms and pairs.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`MoleculeModel` (float64 from :func:`load_property_model`).
    mol : rdkit.Chem.Mol, str or MolFeatures
        The molecule.
    method : str
        A registered method (``attribkit.methods.registry.methods()``).
    steps : int
        Path steps for path methods.
    **options : Any
        Passed to the method. They override the defaults given to methods that take them:
        the zero ``baseline`` (the paper's counterfactual), a zero ``background``, ``groups`` =
        :func:`player_groups` (one player per atom and per pair), ``steps`` and ``seed=0``.

    Returns
    -------
    MoleculeAttribution
        Per-atom and per-pair attributions.
    """
    from attribkit.methods.registry import explain

    feats = mol if isinstance(mol, MolFeatures) else featurize(mol)
    dtype = next(model.parameters()).dtype
    packed = pack(feats.atoms.to(dtype), feats.pairs.to(dtype))
    opts = {**_method_options(method, steps, packed), **options}
    attr = explain(model, packed, method=method, **opts)
    delta = attr.delta
    return split_attribution(attr.values[0], feats.bonded,
                             delta=float(delta[0]) if delta is not None else math.nan,
                             method=method)


def exact_contributions(mol: Any, prop: str) -> np.ndarray[Any, Any]:
    """RDKit's exact per-atom contributions of ``prop`` (``"tpsa"`` or ``"logp"``).

    Parameters
    ----------
    mol : rdkit.Chem.Mol or str
        The molecule.
    prop : str
        The property.

    Returns
    -------
    numpy.ndarray
        ``(A,)`` float64.
    """
    if prop == "tpsa":
        return tpsa_contributions(mol)
    if prop == "logp":
        return logp_contributions(mol)
    raise InputError(f"unknown property {prop!r}; choose one of {PROPERTIES}.")


def pearson(a: np.ndarray[Any, Any] | Tensor, b: np.ndarray[Any, Any] | Tensor) -> float:
    """Pearson correlation of two vectors; NaN when either is constant.

    Parameters
    ----------
    a, b : numpy.ndarray or Tensor
        Vectors of equal length.

    Returns
    -------
    float
        The correlation in ``[-1, 1]``, or NaN.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / den if den > 1e-12 else math.nan


@dataclasses.dataclass(frozen=True)
class FaithfulnessResult:
    """How well one method recovers RDKit's exact per-atom contributions.

    Attributes
    ----------
    method : str
        The method.
    corr_with_pairs, corr_atoms_only : float
        Mean per-molecule Pearson correlation, per-atom attribution with half of each pair added,
        and atom features alone.
    n_molecules : int
        Molecules averaged (molecules whose exact contributions are all equal are left out).
    shares : dict
        Fractions of the attributed total, summed over the molecules, carried by atoms, bonded
        pairs and other pairs (sums of each part over the sum of the totals).
    seconds : float
        Wall time.
    error : str
        Why the method was skipped (empty when it ran).
    """

    method: str
    corr_with_pairs: float
    corr_atoms_only: float
    n_molecules: int
    shares: dict[str, float]
    seconds: float
    error: str = ""


def faithfulness(model: nn.Module, molecules: MoleculeSet, prop: str,
                 methods: Iterable[str] | None = None, steps: int = 50,
                 time_limit: float | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None,
                 ) -> list[FaithfulnessResult]:
    """Mean per-molecule correlation of each method's per-atom attribution with the exact truth.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`MoleculeModel` trained on ``prop``.
    molecules : MoleculeSet
        Held-out molecules (see :func:`load_molecules`).
    prop : str
        ``"tpsa"`` or ``"logp"``: which exact contributions to compare with.
    methods : iterable of str, optional
        Method names (default: every registered method). A method that raises is reported with
        its error instead of numbers.
    steps : int
        Path steps for path methods.
    time_limit : float, optional
        Skip a method whose first molecule takes longer than this many seconds.
    options : mapping, optional
        Extra options per method name, e.g. ``{"occlusion": {"batch_size": 512}}``.

    Returns
    -------
    list of FaithfulnessResult
        Sorted best first by ``corr_with_pairs`` (skipped methods last).
    """
    from attribkit.methods.registry import methods as registered

    names = list(methods) if methods is not None else list(registered())
    truths = [exact_contributions(mol_from_smiles(s), prop) for s in molecules.smiles]
    results = []
    for name in names:
        start = time.perf_counter()
        c_pairs, c_atoms, share_rows = [], [], []
        error = ""
        for k, (feats, truth) in enumerate(zip(molecules.features, truths, strict=True)):
            try:
                expl = explain_molecule(model, feats, method=name, steps=steps,
                                        **dict((options or {}).get(name, {})))
            except Exception as err:  # a method that cannot handle this model is reported
                error = f"{type(err).__name__}: {err}".splitlines()[0][:160]
                break
            if k == 0 and time_limit is not None and time.perf_counter() - start > time_limit:
                error = f"skipped: over {time_limit:g} s per molecule"
                break
            bonded = float(expl.pairs[expl.bonded].sum())
            share_rows.append({"total": expl.total, "atoms": float(expl.atoms.sum()),
                               "bonded_pairs": bonded,
                               "other_pairs": float(expl.pairs.sum()) - bonded})
            c_pairs.append(pearson(expl.per_atom(True), truth))
            c_atoms.append(pearson(expl.per_atom(False), truth))
        ok = [i for i, c in enumerate(c_pairs) if not math.isnan(c)]
        total = sum(parts["total"] for parts in share_rows)
        shares = {key: sum(parts[key] for parts in share_rows) / total if total else math.nan
                  for key in ("atoms", "bonded_pairs", "other_pairs")}
        results.append(FaithfulnessResult(
            method=name,
            corr_with_pairs=float(np.mean([c_pairs[i] for i in ok])) if ok and not error
            else math.nan,
            corr_atoms_only=float(np.nanmean([c_atoms[i] for i in ok])) if ok and not error
            else math.nan,
            n_molecules=0 if error else len(ok), shares=shares if not error else {},
            seconds=time.perf_counter() - start, error=error))
    return sorted(results, key=lambda r: (math.isnan(r.corr_with_pairs), -r.corr_with_pairs
                                          if not math.isnan(r.corr_with_pairs) else 0.0))

