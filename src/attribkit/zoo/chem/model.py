"""A small Weave-style graph-convolution network for molecular properties.

:class:`GraphConvNet` maps dense padded atom features ``(B, A, Fa)``, pair features
``(B, A, A, Fp)`` and an atom mask ``(B, A)`` to one score per molecule, the SUM over atoms of a
per-atom readout, so that per-atom attributions have a natural meaning. Each of its
:data:`N_LAYERS` layers updates atoms from atoms and from their pairs, and pairs from pairs and
from their two atoms (Kearnes et al. 2016). :class:`MoleculeModel` wraps it for attribkit: one
packed float row per molecule (see :func:`attribkit.zoo.chem.features.pack`).

It is trained on a property in :mod:`attribkit.zoo.chem.properties` and as an activity
classifier in :mod:`attribkit.zoo.chem.activity`, both by :func:`attribkit.zoo.chem.training.fit`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attribkit.zoo.chem.features import N_ATOM_FEATURES, N_PAIR_FEATURES, unpack

__all__ = ["N_LAYERS", "GraphConvNet", "MoleculeModel", "WeaveLayer"]

N_LAYERS = 2
"""Graph-convolution layers."""
_ATOM_HIDDEN = 48
_PAIR_HIDDEN = 16


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

    ``packed`` holds one row per molecule (:func:`~attribkit.zoo.chem.features.pack`), so a
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
