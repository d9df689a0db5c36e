"""Gradients of Counterfactuals section 3.1's measurements on a molecule model: pair split, dead
features, saturation.

* :func:`pair_split`: how the attribution mass divides between atom features, BONDED atom pairs
  and the other (non-bonded) pairs, summed over molecules. The paper: "the atom-pairs that have
  a bond between them cumulatively contribute 46 % of the prediction score, while all other atom
  pairs cumulatively contribute -3 %". Shares are given of ``sum F(x) - F(x')`` (what the
  attributions add up to) and of ``sum F(x)`` (the prediction score itself).
* :func:`feature_columns` and :func:`dead_features`: per feature column (25 atom, 12 pair), the
  attribution summed over a molecule's atoms or pairs; a column is dead on a molecule where it is
  present (some non-zero input) yet its attribution is below ``rel_tol`` of the molecule's total
  absolute attribution, and a dead feature is one dead on at least ``most`` of the molecules
  where it is present. Columns never present get exactly zero from any method that multiplies
  by ``x - x'`` with a zero counterfactual; they are listed apart.
* :func:`twin_atoms`: the paper's "W1N2" anomaly: atoms of the same type with the same bonds
  that get exactly the same attribution although their neighbourhoods differ (not symmetric).
* :func:`saturation_path`: the score ``F(alpha x)`` and the sum of the feature gradients along
  the scaling path (Figure 13 a and b), and :func:`saturation_summary` its numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from attribkit.core.errors import InputError
from attribkit.zoo.chem.explain import MoleculeAttribution
from attribkit.zoo.chem.features import ATOM_FEATURES, PAIR_FEATURES, MolFeatures, pack, unpack

__all__ = [
    "DeadFeature",
    "PairSplit",
    "SaturationSummary",
    "TwinAtoms",
    "dead_features",
    "feature_columns",
    "pair_split",
    "saturation_path",
    "saturation_summary",
    "twin_atoms",
]


@dataclasses.dataclass(frozen=True)
class PairSplit:
    """Attribution mass of atoms, bonded pairs and non-bonded pairs, summed over molecules.

    Attributes
    ----------
    atoms, bonded, nonbonded : float
        Sums of the attributions (each unordered pair counted once, both orders added).
    delta : float
        Sum of ``F(x) - F(x')`` (NaN when a molecule has none).
    score : float
        Sum of the prediction scores ``F(x)`` (NaN when not given).
    n_molecules : int
        Molecules summed.
    """

    atoms: float
    bonded: float
    nonbonded: float
    delta: float
    score: float
    n_molecules: int

    @property
    def total(self) -> float:
        """Sum of all attributions."""
        return self.atoms + self.bonded + self.nonbonded

    def shares(self, of: str = "delta") -> dict[str, float]:
        """Fractions of ``"delta"`` (sum of F(x) - F(x')), ``"score"`` or ``"total"``."""
        den = {"delta": self.delta, "score": self.score, "total": self.total}.get(of)
        if den is None:
            raise InputError(f"shares(of={of!r}): choose 'delta', 'score' or 'total'.")
        if not den or math.isnan(den):
            return {"atoms": math.nan, "bonded_pairs": math.nan, "other_pairs": math.nan}
        return {"atoms": self.atoms / den, "bonded_pairs": self.bonded / den,
                "other_pairs": self.nonbonded / den}


def pair_split(attributions: Sequence[MoleculeAttribution],
               scores: Sequence[float] | None = None) -> PairSplit:
    """Sum the atom, bonded-pair and non-bonded-pair attributions of several molecules.

    Parameters
    ----------
    attributions : sequence of MoleculeAttribution
        One per molecule (:func:`attribkit.zoo.chem.explain_molecule`).
    scores : sequence of float, optional
        The prediction scores ``F(x)``, one per molecule.

    Returns
    -------
    PairSplit
        The sums.
    """
    if not attributions:
        raise InputError("pair_split() needs at least one molecule's attribution.")
    if scores is not None and len(scores) != len(attributions):
        raise InputError(f"pair_split(): {len(scores)} scores for {len(attributions)} molecules.")
    atoms = bonded = other = delta = 0.0
    for expl in attributions:
        b = float(expl.pairs[expl.bonded].sum())
        atoms += float(expl.atoms.sum())
        bonded += b
        other += float(expl.pairs.sum()) - b
        delta += expl.delta
    return PairSplit(atoms=atoms, bonded=bonded, nonbonded=other, delta=delta,
                     score=float(sum(scores)) if scores is not None else math.nan,
                     n_molecules=len(attributions))


def feature_columns(values: torch.Tensor, feats: MolFeatures
                    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Attribution and presence per feature column of one molecule.

    Parameters
    ----------
    values : Tensor
        ``(L,)`` or ``(1, L)`` attribution of the molecule's packed row.
    feats : MolFeatures
        The molecule's features (the attributed input).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(25 + 12,)`` attribution summed over atoms (atom columns) and ordered pairs (pair
        columns), and ``(25 + 12,)`` bool, True where the column is non-zero somewhere.
    """
    row = values.reshape(1, -1) if values.dim() == 1 else values
    a, p = unpack(row.detach().double())
    x = pack(feats.atoms.double(), feats.pairs.double())
    xa, xp = unpack(x)
    if a.shape != xa.shape:
        raise InputError(f"attribution of {a.shape[1]} atoms for a molecule of {xa.shape[1]}.")
    attr = torch.cat([a[0].sum(dim=0), p[0].sum(dim=(0, 1))]).numpy()
    present = torch.cat([(xa[0] != 0).any(dim=0), (xp[0] != 0).any(dim=(0, 1))]).numpy()
    return attr, present


@dataclasses.dataclass(frozen=True)
class DeadFeature:
    """How often one feature column gets (almost) no attribution where it is present.

    Attributes
    ----------
    name : str
        The column (``ATOM_FEATURES + PAIR_FEATURES``).
    n_present : int
        Molecules where the column is non-zero somewhere.
    n_dead : int
        Of those, molecules where its attribution is below the tolerance.
    mean_share : float
        Mean over the molecules where it is present of ``|attribution| / sum |attribution|``.
    """

    name: str
    n_present: int
    n_dead: int
    mean_share: float

    @property
    def dead_rate(self) -> float:
        """``n_dead / n_present`` (NaN when never present)."""
        return self.n_dead / self.n_present if self.n_present else math.nan


def dead_features(attributions: np.ndarray[Any, Any], present: np.ndarray[Any, Any],
                  names: Sequence[str] = ATOM_FEATURES + PAIR_FEATURES,
                  rel_tol: float = 1e-3) -> list[DeadFeature]:
    """Per feature column, on how many molecules it is present yet gets no attribution.

    Parameters
    ----------
    attributions : numpy.ndarray
        ``(M, F)`` attribution per molecule and column (:func:`feature_columns`).
    present : numpy.ndarray
        ``(M, F)`` bool presence.
    names : sequence of str
        ``F`` column names.
    rel_tol : float
        A column is dead on a molecule when ``|attribution| <= rel_tol * sum_f |attribution_f|``.

    Returns
    -------
    list of DeadFeature
        One per column, in column order; keep those with ``dead_rate >= most`` for a verdict.
    """
    attr = np.asarray(attributions, dtype=np.float64)
    pres = np.asarray(present, dtype=bool)
    if attr.ndim != 2 or attr.shape != pres.shape or attr.shape[1] != len(names):
        raise InputError(f"dead_features needs (M, {len(names)}) attributions and presence; "
                         f"got {attr.shape} and {pres.shape}.")
    mass = np.abs(attr).sum(axis=1, keepdims=True)
    share = np.abs(attr) / np.where(mass > 0, mass, 1.0)
    dead = pres & (share <= rel_tol)
    out = []
    for j, name in enumerate(names):
        n = int(pres[:, j].sum())
        out.append(DeadFeature(name=name, n_present=n, n_dead=int(dead[:, j].sum()),
                               mean_share=float(share[pres[:, j], j].mean()) if n else math.nan))
    return out


def saturation_path(model: nn.Module, feats: MolFeatures, alphas: Sequence[float] | np.ndarray[
        Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Scores, feature-gradient sums and gradient x input along ``alpha x`` (zero counterfactual).

    Parameters
    ----------
    model : torch.nn.Module
        A molecule model taking one packed row per molecule.
    feats : MolFeatures
        The molecule.
    alphas : sequence of float
        Scaling parameters in ``[0, 1]``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        ``(K,)`` ``F(alpha x)``; ``(K,)`` ``sum_i dF/dx_i`` at ``alpha x`` (Figure 13b); ``(K,)``
        ``sum_i x_i dF/dx_i`` at ``alpha x`` (the integrand of IG: its mean over ``alpha`` is
        ``F(x) - F(0)``).
    """
    dtype = next(model.parameters()).dtype
    x = pack(feats.atoms.to(dtype), feats.pairs.to(dtype))
    a = torch.as_tensor(np.asarray(alphas, dtype=np.float64), dtype=dtype).reshape(-1, 1)
    path = (a * x).detach().requires_grad_(True)
    scores = model(path)
    (grad,) = torch.autograd.grad(scores.sum(), path)
    return (scores.detach().double().numpy(), grad.sum(dim=1).double().numpy(),
            (grad * x).sum(dim=1).double().numpy())


@dataclasses.dataclass(frozen=True)
class SaturationSummary:
    """Where scores saturate along the scaling path, over several molecules (medians).

    Attributes
    ----------
    alpha_90 : float
        Median smallest ``alpha`` from which ``F(alpha x) - F(0)`` stays within 10 % of
        ``F(x) - F(0)`` (of its size).
    last_tenth : float
        Median share of the rise ``F(x) - F(0)`` gained on ``0.9 <= alpha <= 1`` (0.1 for a
        straight line; near 0 when saturated).
    grad_ratio : float
        Median of ``x . grad F(x) / (F(x) - F(0))``: what the gradient at the input explains of
        the rise (1 for a linear model; near 0 when saturated).
    n_molecules : int
        Molecules summarised.
    """

    alpha_90: float
    last_tenth: float
    grad_ratio: float
    n_molecules: int


def saturation_summary(alphas: np.ndarray[Any, Any], scores: np.ndarray[Any, Any],
                       grad_x_input: np.ndarray[Any, Any]) -> SaturationSummary:
    """Summarise ``(M, K)`` paths from :func:`saturation_path` (alphas ascending, 0.9 among them).

    Parameters
    ----------
    alphas : numpy.ndarray
        ``(K,)`` from 0 to 1, ascending, containing 0.9.
    scores, grad_x_input : numpy.ndarray
        ``(M, K)`` from :func:`saturation_path`, one row per molecule.

    Returns
    -------
    SaturationSummary
        The medians.
    """
    a = np.asarray(alphas, dtype=np.float64)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    g = np.atleast_2d(np.asarray(grad_x_input, dtype=np.float64))
    nine = np.flatnonzero(np.isclose(a, 0.9))
    if a[0] != 0 or a[-1] != 1 or not len(nine) or np.any(np.diff(a) <= 0):
        raise InputError("saturation_summary needs ascending alphas from 0 to 1 containing 0.9.")
    rise = s[:, -1] - s[:, 0]
    ok = np.abs(rise) > 1e-12
    rise_ok, s_ok = rise[ok], s[ok]
    far = np.abs(s_ok - s_ok[:, -1:]) > 0.1 * np.abs(rise_ok)[:, None]
    last_far = np.where(far.any(axis=1), far.shape[1] - 1 - np.argmax(far[:, ::-1], axis=1), -1)
    alpha_90 = a[last_far + 1]  # the last alpha is never far from itself
    return SaturationSummary(
        alpha_90=float(np.median(alpha_90)) if ok.any() else math.nan,
        last_tenth=float(np.median((s_ok[:, -1] - s_ok[:, nine[0]]) / rise_ok))
        if ok.any() else math.nan,
        grad_ratio=float(np.median(g[ok, -1] / rise_ok)) if ok.any() else math.nan,
        n_molecules=int(ok.sum()))


@dataclasses.dataclass(frozen=True)
class TwinAtoms:
    """Pairs of look-alike atoms (same atom features, same number of bonds of each type).

    Attributes
    ----------
    lookalike : int
        Such pairs of atoms within a molecule, summed over molecules.
    symmetric : int
        Of those, pairs that RDKit ranks symmetry-equivalent (equal attribution is right).
    identical : int
        Of the NON-symmetric look-alikes, pairs whose atom-feature attributions are equal within
        ``rel_tol`` of the molecule's largest: the anomaly the paper found in W1N2.
    """

    lookalike: int
    symmetric: int
    identical: int


def twin_atoms(attributions: Sequence[MoleculeAttribution], smiles: Sequence[str],
               rel_tol: float = 1e-9) -> TwinAtoms:
    """Count look-alike atoms and those of them given identical attributions without symmetry.

    Parameters
    ----------
    attributions : sequence of MoleculeAttribution
        One per molecule; ``atoms`` (the atom features' attribution) is compared.
    smiles : sequence of str
        The molecules, parsed in the atom order the attributions use.
    rel_tol : float
        Two attributions are identical when they differ by at most ``rel_tol`` times the
        molecule's largest absolute atom attribution.

    Returns
    -------
    TwinAtoms
        The counts, summed over molecules.
    """
    from rdkit import Chem as _rd

    from attribkit.zoo.chem.features import featurize, mol_from_smiles

    rd: Any = _rd
    if len(attributions) != len(smiles):
        raise InputError(f"twin_atoms(): {len(attributions)} attributions for {len(smiles)} "
                         "molecules.")
    look = sym = same = 0
    n_bond = len([n for n in PAIR_FEATURES if n.startswith("bond=")])
    for expl, smi in zip(attributions, smiles, strict=True):
        mol = mol_from_smiles(smi)
        f = featurize(mol)
        if expl.atoms.shape[0] != f.n_atoms:
            raise InputError(f"twin_atoms(): {expl.atoms.shape[0]} atom attributions for "
                             f"{smi!r} ({f.n_atoms} atoms).")
        ranks = list(rd.CanonicalRankAtoms(mol, breakTies=False))
        key = torch.cat([f.atoms, f.pairs[..., :n_bond].sum(dim=1)], dim=1)  # + bonds per type
        a = expl.atoms.double()
        scale = float(a.abs().max()) or 1.0
        for i in range(f.n_atoms):
            for j in range(i + 1, f.n_atoms):
                if not torch.equal(key[i], key[j]):
                    continue
                look += 1
                if ranks[i] == ranks[j]:
                    sym += 1
                elif abs(float(a[i] - a[j])) <= rel_tol * scale:
                    same += 1
    return TwinAtoms(lookalike=look, symmetric=sym, identical=same)
