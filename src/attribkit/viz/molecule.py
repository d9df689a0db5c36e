"""Molecules: atoms and bonds coloured by attribution (RDKit drawing, the ``chem`` extra)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from attribkit.core.errors import InputError

__all__ = ["molecule_image"]


def _rgb(v: float, m: float) -> tuple[float, float, float]:
    w = 0.0 if m <= 0 else min(abs(v) / m, 1.0)
    return (1.0, 1 - 0.75 * w, 1 - 0.75 * w) if v >= 0 else (1 - 0.75 * w, 1 - 0.75 * w, 1.0)


def molecule_image(molecule: Any, atom_scores: Any, bond_scores: Sequence[float] | Any = None,
                   *, size: tuple[int, int] = (420, 320), legend: str = "") -> Image.Image:
    """Draw a molecule with atoms (and bonds) coloured red (positive) / blue (negative).

    Parameters
    ----------
    molecule : str or rdkit.Chem.Mol
        A SMILES string or an RDKit molecule.
    atom_scores : array-like
        One attribution per atom (RDKit atom order).
    bond_scores : array-like, optional
        One attribution per bond (RDKit bond order).
    size : (int, int), default (420, 320)
        Width and height in pixels.
    legend : str, default ""
        A caption drawn under the molecule.

    Returns
    -------
    PIL.Image.Image
        The drawing.
    """
    try:
        from rdkit import Chem
        from rdkit.Chem.Draw import rdMolDraw2D
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("molecule drawing needs RDKit; pip install 'attribkit[chem]'") from err
    mol = Chem.MolFromSmiles(molecule) if isinstance(molecule, str) else molecule
    if mol is None:
        raise InputError(f"cannot parse SMILES {molecule!r}; check the string.")

    def arr(a: Any) -> np.ndarray[Any, Any]:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().double().numpy()
        return np.asarray(a, dtype=np.float64).reshape(-1)

    a = arr(atom_scores)
    if a.shape[0] != mol.GetNumAtoms():
        raise InputError(f"{mol.GetNumAtoms()} atoms but {a.shape[0]} atom scores.")
    m = float(np.abs(a).max()) if a.size else 0.0
    atoms = list(range(mol.GetNumAtoms()))
    atom_cols = {i: _rgb(float(a[i]), m) for i in atoms}
    bonds: list[int] = []
    bond_cols: dict[int, tuple[float, float, float]] = {}
    if bond_scores is not None:
        b = arr(bond_scores)
        if b.shape[0] != mol.GetNumBonds():
            raise InputError(f"{mol.GetNumBonds()} bonds but {b.shape[0]} bond scores.")
        mb = float(np.abs(b).max()) if b.size else 0.0
        bonds = list(range(mol.GetNumBonds()))
        bond_cols = {i: _rgb(float(b[i]), mb) for i in bonds}
    drawer = rdMolDraw2D.MolDraw2DCairo(size[0], size[1])
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, legend=legend, highlightAtoms=atoms,
                                       highlightAtomColors=atom_cols, highlightBonds=bonds,
                                       highlightBondColors=bond_cols)
    drawer.FinishDrawing()
    return Image.open(io.BytesIO(drawer.GetDrawingText())).convert("RGB")
