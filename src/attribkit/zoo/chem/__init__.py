"""Molecules: RDKit features, a graph-convolution network, and faithfulness against exact truth.

This is Gradients of Counterfactuals section 3.1 made real (extra ``chem``). A molecule becomes atom
features and atom-pair features (:mod:`~attribkit.zoo.chem.features`); a small Weave-style network
with a sum-over-atoms readout (:mod:`~attribkit.zoo.chem.model`) is trained on the TPSA of the NCI
molecules that ship with RDKit, or on their Crippen logP. Integrated Gradients with the paper's
scaled-to-zero counterfactual (all atom and pair features zero) then gives one attribution per
atom and per atom pair::

    from attribkit.zoo import chem

    model = chem.load_property_model("tpsa")
    expl = chem.explain_molecule(model, "OC(=O)c1ccccc1N")
    expl.per_atom(include_pairs=True)      # (A,) atoms plus half of each of their pairs
    expl.shares()                          # fraction of F(x) - F(0) on atoms / bonded / other pairs

Because RDKit knows the exact per-atom contributions of TPSA and of Crippen logP,
:func:`faithfulness` measures how well any registered method recovers them: the Pearson
correlation per molecule between the per-atom attribution and the exact contributions, averaged
over held-out molecules.

The modules: :mod:`.features` (RDKit featurisation, packing), :mod:`.model` (the network),
:mod:`.training` (the one training loop), :mod:`.properties` (the NCI molecules and the property
regressor), :mod:`.explain` (per-atom attributions, faithfulness), :mod:`.activity` (Gradients of
Counterfactuals's activity classifier on CHEMBL2321810) and :mod:`.findings` (its measurements).
This package re-exports the first five's public names; import ``activity`` and ``findings`` from it.
"""


from __future__ import annotations

from attribkit.zoo.chem.explain import (
    FaithfulnessResult,
    MoleculeAttribution,
    exact_contributions,
    explain_molecule,
    faithfulness,
    pearson,
    player_groups,
    split_attribution,
)
from attribkit.zoo.chem.features import (
    ATOM_FEATURES,
    ELEMENTS,
    N_ATOM_FEATURES,
    N_PAIR_FEATURES,
    PAIR_FEATURES,
    MolFeatures,
    batch_features,
    featurize,
    logp_contributions,
    mol_from_smiles,
    pack,
    tpsa_contributions,
    unpack,
)
from attribkit.zoo.chem.model import GraphConvNet, MoleculeModel
from attribkit.zoo.chem.properties import (
    PROPERTIES,
    MoleculeSet,
    TrainedModel,
    load_molecules,
    load_property_model,
    property_values,
    train_property_model,
)

__all__ = [
    "ATOM_FEATURES",
    "ELEMENTS",
    "N_ATOM_FEATURES",
    "N_PAIR_FEATURES",
    "PAIR_FEATURES",
    "PROPERTIES",
    "FaithfulnessResult",
    "GraphConvNet",
    "MolFeatures",
    "MoleculeAttribution",
    "MoleculeModel",
    "MoleculeSet",
    "TrainedModel",
    "batch_features",
    "exact_contributions",
    "explain_molecule",
    "faithfulness",
    "featurize",
    "load_molecules",
    "load_property_model",
    "logp_contributions",
    "mol_from_smiles",
    "pack",
    "pearson",
    "player_groups",
    "property_values",
    "split_attribution",
    "tpsa_contributions",
    "train_property_model",
    "unpack",
]
