"""RDKit featurisation of molecules into atom and atom-pair features (Kearnes et al. "simple").

Atoms (:data:`ATOM_FEATURES`, 25 columns): one-hot element (C, N, O, S, F, Cl, Br, I, P, other),
one-hot degree (0..5+), formal charge (<=-1, 0, >=+1), aromaticity, one-hot number of hydrogens
(0..3+), ring membership. Atom pairs (:data:`PAIR_FEATURES`, 12 columns, for every ordered pair of
distinct atoms): one-hot bond type (single, double, triple, aromatic; all zero when not bonded),
one-hot graph distance (1..6, 7+ or disconnected), same ring. The diagonal pairs are all zero.

A batch of molecules is a dense padded triple ``atoms (B, A, Fa)``, ``pairs (B, A, A, Fp)``,
``mask (B, A)``. :func:`pack` flattens atoms and pairs into one float row per molecule so that a
single-input attribution method sees both; :func:`unpack` inverts it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = [
    "ATOM_FEATURES",
    "ELEMENTS",
    "N_ATOM_FEATURES",
    "N_PAIR_FEATURES",
    "PAIR_FEATURES",
    "MolFeatures",
    "batch_features",
    "featurize",
    "logp_contributions",
    "mol_from_smiles",
    "n_atoms_of",
    "pack",
    "tpsa_contributions",
    "unpack",
]

_EXTRA_HINT = "install the chem extra: pip install 'attribkit[chem]'"

ELEMENTS: tuple[str, ...] = ("C", "N", "O", "S", "F", "Cl", "Br", "I", "P")
"""Elements with their own one-hot column; any other element sets ``element=other``."""
_MAX_DEGREE = 5
_MAX_HS = 3
_MAX_DISTANCE = 7
ATOM_FEATURES: tuple[str, ...] = (
    *(f"element={e}" for e in ELEMENTS), "element=other",
    *(f"degree={d}" for d in range(_MAX_DEGREE)), f"degree>={_MAX_DEGREE}",
    "charge<=-1", "charge=0", "charge>=+1",
    "aromatic",
    *(f"hydrogens={h}" for h in range(_MAX_HS)), f"hydrogens>={_MAX_HS}",
    "in_ring",
)
"""Names of the atom feature columns."""
_BOND_TYPES: tuple[str, ...] = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
PAIR_FEATURES: tuple[str, ...] = (
    *(f"bond={b.lower()}" for b in _BOND_TYPES),
    *(f"distance={d}" for d in range(1, _MAX_DISTANCE)), f"distance>={_MAX_DISTANCE}",
    "same_ring",
)
"""Names of the atom-pair feature columns."""
N_ATOM_FEATURES = len(ATOM_FEATURES)
"""Atom feature columns (25)."""
N_PAIR_FEATURES = len(PAIR_FEATURES)
"""Atom-pair feature columns (12)."""


def _chem() -> Any:
    try:
        from rdkit import Chem
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.chem needs RDKit; {_EXTRA_HINT}.") from err
    return Chem


def mol_from_smiles(smiles: str) -> Any:
    """Parse a SMILES string with RDKit (errors logged by RDKit are silenced).

    Parameters
    ----------
    smiles : str
        The SMILES.

    Returns
    -------
    rdkit.Chem.Mol
        The molecule (hydrogens implicit).
    """
    from rdkit import RDLogger as _rdlogger

    chem = _chem()
    rdlogger: Any = _rdlogger
    rdlogger.DisableLog("rdApp.*")
    try:
        mol = chem.MolFromSmiles(smiles)
    finally:
        rdlogger.EnableLog("rdApp.*")
    if mol is None:
        raise InputError(f"RDKit cannot parse the SMILES {smiles!r}; check it (valences, rings).")
    return mol


@dataclasses.dataclass(frozen=True)
class MolFeatures:
    """The features of one molecule.

    Attributes
    ----------
    atoms : Tensor
        ``(A, Fa)`` float64 atom features.
    pairs : Tensor
        ``(A, A, Fp)`` float64 atom-pair features (symmetric, zero diagonal).
    bonded : Tensor
        ``(A, A)`` bool, True where two atoms share a bond.
    smiles : str
        The canonical SMILES.
    """

    atoms: Tensor
    pairs: Tensor
    bonded: Tensor
    smiles: str

    @property
    def n_atoms(self) -> int:
        """Number of (heavy) atoms."""
        return int(self.atoms.shape[0])


def _one_hot(index: int, size: int) -> list[float]:
    row = [0.0] * size
    row[min(max(index, 0), size - 1)] = 1.0
    return row


def featurize(mol: Any) -> MolFeatures:
    """Atom and atom-pair features of a molecule.

    Parameters
    ----------
    mol : rdkit.Chem.Mol or str
        A molecule or a SMILES string.

    Returns
    -------
    MolFeatures
        The features, float64.
    """
    chem = _chem()
    if isinstance(mol, str):
        mol = mol_from_smiles(mol)
    n = mol.GetNumAtoms()
    if n == 0:
        raise InputError("the molecule has no atoms.")
    rows = []
    for atom in mol.GetAtoms():
        sym = atom.GetSymbol()
        elem = ELEMENTS.index(sym) if sym in ELEMENTS else len(ELEMENTS)
        charge = atom.GetFormalCharge()
        rows.append(
            _one_hot(elem, len(ELEMENTS) + 1)
            + _one_hot(atom.GetDegree(), _MAX_DEGREE + 1)
            + _one_hot(int(np.sign(charge)) + 1, 3)
            + [float(atom.GetIsAromatic())]
            + _one_hot(atom.GetTotalNumHs(), _MAX_HS + 1)
            + [float(atom.IsInRing())]
        )
    dist = np.asarray(chem.GetDistanceMatrix(mol), dtype=np.float64)
    pairs_np = np.zeros((n, n, N_PAIR_FEATURES), dtype=np.float64)
    bonded_np = np.zeros((n, n), dtype=bool)
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        name = str(bond.GetBondType())
        if name in _BOND_TYPES:
            k = _BOND_TYPES.index(name)
            pairs_np[i, j, k] = pairs_np[j, i, k] = 1.0
        bonded_np[i, j] = bonded_np[j, i] = True
    off = len(_BOND_TYPES)
    # RDKit puts a large number (1e8) between disconnected fragments.
    bucket = np.clip(np.where(np.isfinite(dist), dist, _MAX_DISTANCE), 1, _MAX_DISTANCE)
    ii, jj = np.nonzero(~np.eye(n, dtype=bool))
    pairs_np[ii, jj, off + bucket[ii, jj].astype(np.int64) - 1] = 1.0
    ring_atoms = mol.GetRingInfo().AtomRings()
    if ring_atoms:
        member = np.zeros((n, len(ring_atoms)), dtype=np.float64)
        for r, ring in enumerate(ring_atoms):
            member[list(ring), r] = 1.0
        same = (member @ member.T) > 0
        np.fill_diagonal(same, False)
        pairs_np[..., -1] = same
    atoms = torch.tensor(rows, dtype=torch.float64)
    pairs = torch.from_numpy(pairs_np)
    bonded = torch.from_numpy(bonded_np)
    return MolFeatures(atoms=atoms, pairs=pairs, bonded=bonded,
                       smiles=chem.MolToSmiles(mol))


def batch_features(feats: Sequence[MolFeatures], n_atoms: int | None = None,
                   dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, Tensor]:
    """Pad several molecules to one dense batch.

    Parameters
    ----------
    feats : sequence of MolFeatures
        The molecules.
    n_atoms : int, optional
        Atom slots per molecule (default: the largest molecule).
    dtype : torch.dtype
        Float dtype of the features.

    Returns
    -------
    atoms, pairs, mask : Tensor
        ``(B, A, Fa)``, ``(B, A, A, Fp)`` and ``(B, A)`` (1.0 for real atoms, 0.0 for padding).
    """
    if not feats:
        raise InputError("batch_features() needs at least one molecule.")
    a = max(f.n_atoms for f in feats) if n_atoms is None else n_atoms
    if any(f.n_atoms > a for f in feats):
        raise InputError(f"a molecule has more than n_atoms={a} atoms.")
    b = len(feats)
    atoms = torch.zeros((b, a, N_ATOM_FEATURES), dtype=dtype)
    pairs = torch.zeros((b, a, a, N_PAIR_FEATURES), dtype=dtype)
    mask = torch.zeros((b, a), dtype=dtype)
    for k, f in enumerate(feats):
        n = f.n_atoms
        atoms[k, :n] = f.atoms.to(dtype)
        pairs[k, :n, :n] = f.pairs.to(dtype)
        mask[k, :n] = 1.0
    return atoms, pairs, mask


def pack(atoms: Tensor, pairs: Tensor) -> Tensor:
    """Concatenate atom and pair features into one flat row per molecule.

    Parameters
    ----------
    atoms : Tensor
        ``(B, A, Fa)`` or ``(A, Fa)``.
    pairs : Tensor
        ``(B, A, A, Fp)`` or ``(A, A, Fp)``.

    Returns
    -------
    Tensor
        ``(B, A * Fa + A * A * Fp)``.
    """
    if atoms.dim() == 2:
        atoms, pairs = atoms.unsqueeze(0), pairs.unsqueeze(0)
    b, a, fa = atoms.shape
    if fa != N_ATOM_FEATURES or pairs.shape != (b, a, a, N_PAIR_FEATURES):
        raise InputError(f"atoms {tuple(atoms.shape)} and pairs {tuple(pairs.shape)} do not "
                         f"match (B, A, {N_ATOM_FEATURES}) and (B, A, A, {N_PAIR_FEATURES}).")
    return torch.cat([atoms.reshape(b, -1), pairs.reshape(b, -1)], dim=1)


def n_atoms_of(length: int) -> int:
    """Atom slots ``A`` of a packed row of ``length = A * Fa + A * A * Fp`` values."""
    fa, fp = N_ATOM_FEATURES, N_PAIR_FEATURES
    a = round((-fa + math.sqrt(fa * fa + 4 * fp * length)) / (2 * fp))
    if a * fa + a * a * fp != length:
        raise InputError(f"a packed molecule row of length {length} is not A*{fa} + A*A*{fp} "
                         "for any A; build it with attribkit.zoo.chem.pack.")
    return a


def unpack(packed: Tensor) -> tuple[Tensor, Tensor]:
    """Split packed rows back into atom and pair features.

    Parameters
    ----------
    packed : Tensor
        ``(B, L)`` rows from :func:`pack` (or attributions of them).

    Returns
    -------
    atoms, pairs : Tensor
        ``(B, A, Fa)`` and ``(B, A, A, Fp)`` views.
    """
    if packed.dim() != 2:
        raise InputError(f"packed molecules must be (B, L), got {tuple(packed.shape)}.")
    b, length = packed.shape
    a = n_atoms_of(int(length))
    na = a * N_ATOM_FEATURES
    return (packed[:, :na].reshape(b, a, N_ATOM_FEATURES),
            packed[:, na:].reshape(b, a, a, N_PAIR_FEATURES))


def tpsa_contributions(mol: Any) -> np.ndarray[Any, Any]:
    """RDKit's exact per-atom TPSA contributions (they sum to ``CalcTPSA``).

    Parameters
    ----------
    mol : rdkit.Chem.Mol or str
        A molecule or SMILES.

    Returns
    -------
    numpy.ndarray
        ``(A,)`` float64.
    """
    from rdkit.Chem import rdMolDescriptors

    if isinstance(mol, str):
        mol = mol_from_smiles(mol)
    return np.asarray(list(rdMolDescriptors._CalcTPSAContribs(mol)), dtype=np.float64)


def logp_contributions(mol: Any) -> np.ndarray[Any, Any]:
    """RDKit's exact per-atom Crippen logP contributions (hydrogens folded into their atom).

    Parameters
    ----------
    mol : rdkit.Chem.Mol or str
        A molecule or SMILES.

    Returns
    -------
    numpy.ndarray
        ``(A,)`` float64; they sum to ``Crippen.MolLogP``.
    """
    from rdkit.Chem import Crippen as _crippen

    chem = _chem()
    crippen: Any = _crippen
    if isinstance(mol, str):
        mol = mol_from_smiles(mol)
    n = mol.GetNumAtoms()
    with_h = chem.AddHs(mol)
    raw = crippen._GetAtomContribs(with_h)
    out = np.zeros(n, dtype=np.float64)
    for atom, (value, _mr) in zip(with_h.GetAtoms(), raw, strict=True):
        idx = atom.GetIdx()
        if idx >= n:  # an added hydrogen: fold it into its heavy atom
            idx = atom.GetNeighbors()[0].GetIdx()
        out[idx] += value
    return out
