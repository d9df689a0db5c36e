"""The activity classifier (seed 003, 3.1): data, pair split, dead features, saturation, IG."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from rdkit import RDConfig
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

import attribkit
from attribkit.core.errors import InputError
from attribkit.zoo import chem
from attribkit.zoo.chem import activity as chem_activity
from attribkit.zoo.chem import findings as chem_findings

FA, FP = chem.N_ATOM_FEATURES, chem.N_PAIR_FEATURES
NAMES = chem.ATOM_FEATURES + chem.PAIR_FEATURES


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_data_merge_threshold_and_split() -> None:
    root = os.path.join(RDConfig.RDContribDir, "FreeWilson", "data")
    with open(os.path.join(root, "CHEMBL2321810_act.csv"), newline="") as fh:
        act = {row["Name"]: float(row["Act"]) for row in csv.DictReader(fh)}
    with open(os.path.join(root, "CHEMBL2321810.smi")) as fh:
        smi = {line.split()[1]: line.split()[0] for line in fh if line.strip()}
    smiles, names, values = chem_activity._chembl()
    assert len(names) == len(act) == len(smi) == 1017
    for s, n, v in zip(smiles, names, values, strict=True):
        assert smi[n] == s and act[n] == v
    assert sum(v >= 6.5 for v in act.values()) == 492  # the documented class balance
    train, test = chem_activity.split_indices(0)
    assert len(train) == 817 and len(test) == 200
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1017))
    few = chem_activity.load_activity("test", n=3)
    assert [few.names[i] for i in range(3)] == [names[i] for i in test[:3]]
    assert few.labels.tolist() == [float(act[n] >= 6.5) for n in few.names]
    with pytest.raises(InputError, match="split"):
        chem_activity.load_activity("valid")


def test_roc_auc_against_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50).astype(float)
    s = np.round(rng.normal(size=50) + y, 1)  # rounding makes ties
    assert chem_activity.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert math.isnan(chem_activity.roc_auc(s, np.ones(50)))


def _hand_attribution(smiles: str, atom_values: list[float],
                      pair_values: dict[tuple[int, int], float]) -> chem.MoleculeAttribution:
    f = chem.featurize(smiles)
    n = f.n_atoms
    atoms = torch.tensor(atom_values, dtype=torch.float64)[:, None].expand(n, FA) / FA
    pairs = torch.zeros(n, n, FP, dtype=torch.float64)
    for (i, j), v in pair_values.items():
        pairs[i, j, 3] = v  # any one column: split_attribution sums over the features
    return chem.split_attribution(chem.pack(atoms, pairs)[0], f.bonded, delta=0.0)


def test_pair_split_on_hand_made_molecules() -> None:
    # Ethanol C0-C1-O2: bonds C0-C1 and C1-O2; C0...O2 is the only non-bonded pair.
    e1 = _hand_attribution("CCO", [1.0, 2.0, 3.0],
                           {(0, 1): 0.5, (1, 0): 0.25, (1, 2): -1.0, (0, 2): 2.0, (2, 0): -0.5})
    # Acetic acid C0-C1(=O2)-O3: bonded 0-1, 1-2, 1-3; non-bonded 0-2, 0-3, 2-3.
    e2 = _hand_attribution("CC(=O)O", [0.0, 1.0, 0.0, 0.0],
                           {(1, 2): 0.75, (3, 1): 0.25, (2, 3): 4.0, (0, 3): -1.0})
    e1 = chem.MoleculeAttribution(e1.atoms, e1.pairs, e1.bonded, 7.0, "hand")
    e2 = chem.MoleculeAttribution(e2.atoms, e2.pairs, e2.bonded, 5.0, "hand")
    split = chem_findings.pair_split([e1, e2], scores=[8.0, 12.0])
    # Hand count: atoms 6 + 1; bonded 0.5 + 0.25 - 1 + 0.75 + 0.25; other 2 - 0.5 + 4 - 1.
    assert split.atoms == pytest.approx(7.0)
    assert split.bonded == pytest.approx(0.75)
    assert split.nonbonded == pytest.approx(4.5)
    assert (split.delta, split.score, split.n_molecules) == (12.0, 20.0, 2)
    assert split.shares("delta") == pytest.approx(
        {"atoms": 7 / 12, "bonded_pairs": 0.75 / 12, "other_pairs": 4.5 / 12})
    assert split.shares("score")["bonded_pairs"] == pytest.approx(0.75 / 20)
    assert split.shares("total")["other_pairs"] == pytest.approx(4.5 / 12.25)
    with pytest.raises(InputError, match="shares"):
        split.shares("logit")
    with pytest.raises(InputError, match="2 molecules"):
        chem_findings.pair_split([e1, e2], scores=[1.0])


class _Linear(nn.Module):
    """``F(x) = sum_atoms w_a . atom + sum_pairs w_p . pair``: IG is exactly ``w * x``."""

    def __init__(self, w_atom: Tensor, w_pair: Tensor) -> None:
        super().__init__()
        self.w_atom = nn.Parameter(w_atom)
        self.w_pair = nn.Parameter(w_pair)

    def forward(self, packed: Tensor) -> Tensor:
        atoms, pairs = chem.unpack(packed)
        return (atoms @ self.w_atom).sum(dim=1) + (pairs @ self.w_pair).sum(dim=(1, 2))


def test_dead_features_on_a_toy() -> None:
    w_atom = torch.linspace(0.5, 1.5, FA, dtype=torch.float64)
    w_pair = torch.linspace(-1.0, -0.2, FP, dtype=torch.float64)
    dead_cols = {"element=O": 0.0, "bond=double": 0.0}
    w_atom[NAMES.index("element=O")] = 0.0
    w_pair[NAMES.index("bond=double") - FA] = 0.0
    w_atom[NAMES.index("element=N")] = 1e-6  # tiny but alive: below the 1e-3 share
    model = _Linear(w_atom, w_pair).double()
    cols, present = [], []
    for smi in ("CC(=O)O", "OCC=O", "c1ccncc1", "CCN"):
        f = chem.featurize(smi)
        x = chem.pack(f.atoms, f.pairs)
        attr = attribkit.integrated_gradients(model, x, baseline=None, steps=8)
        a, p = chem_findings.feature_columns(attr.values[0], f)
        cols.append(a)
        present.append(p)
    res = {d.name: d for d in chem_findings.dead_features(np.array(cols), np.array(present))}
    assert res["element=O"].n_present == 2 and res["element=O"].dead_rate == 1.0
    assert res["bond=double"].n_present == 2 and res["bond=double"].dead_rate == 1.0
    assert res["element=N"].n_present == 2 and res["element=N"].dead_rate == 1.0
    assert res["element=C"].n_present == 4 and res["element=C"].n_dead == 0
    assert res["element=Cl"].n_present == 0 and math.isnan(res["element=Cl"].dead_rate)
    assert res["bond=aromatic"].n_present == 1 and res["bond=aromatic"].n_dead == 0
    flagged = {n for n, d in res.items() if d.n_present and d.dead_rate >= 0.9}
    assert flagged == set(dead_cols) | {"element=N"}
    with pytest.raises(InputError, match="dead_features"):
        chem_findings.dead_features(np.zeros((2, 3)), np.zeros((2, 3), dtype=bool))


def test_twin_atoms_hand_count() -> None:
    # Propanol C0-C1-C2-O3: C1 and C2 look alike (CH2, two single bonds) but C2 holds the O;
    # isobutane: the three methyls look alike and are symmetric. So 4 look-alike pairs, 3
    # symmetric, and the other one (C1, C2) tells the networks apart.
    smiles = ["CCCO", "CC(C)C"]
    linear = _Linear(torch.linspace(0.5, 1.5, FA, dtype=torch.float64),
                     torch.linspace(-1.0, -0.2, FP, dtype=torch.float64)).double()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        deep = chem_activity.ActivityModel(chem.GraphConvNet(n_layers=2)).double().eval()
    # The linear toy gives an atom w . a_i whatever its neighbours: C1 and C2 are identical.
    flat = chem_findings.twin_atoms([chem.explain_molecule(linear, s, steps=4) for s in smiles],
                                    smiles)
    assert (flat.lookalike, flat.symmetric, flat.identical) == (4, 3, 1)
    # Two graph convolutions see that C2 is bonded to O: different attributions.
    conv = chem_findings.twin_atoms([chem.explain_molecule(deep, s, steps=16) for s in smiles],
                                    smiles)
    assert (conv.lookalike, conv.symmetric, conv.identical) == (4, 3, 0)
    with pytest.raises(InputError, match="twin_atoms"):
        chem_findings.twin_atoms([], smiles)


def test_saturation_summary_closed_forms() -> None:
    a = np.linspace(0, 1, 51)
    lin = chem_findings.saturation_summary(a, a[None] * 2.0, np.full((1, 51), 2.0))
    assert lin.alpha_90 == pytest.approx(0.9) and lin.last_tenth == pytest.approx(0.1)
    assert lin.grad_ratio == pytest.approx(1.0)
    s = 1 - np.exp(-10 * a)   # saturates: within 10 % of the rise from a* = 0.2302...
    gx = 10 * a * np.exp(-10 * a)  # x . grad F(alpha x) at alpha = a
    sat = chem_findings.saturation_summary(a, s[None], gx[None])
    a_star = -math.log(0.1 * (1 - math.exp(-10)) + math.exp(-10)) / 10
    assert sat.alpha_90 == pytest.approx(math.ceil(a_star * 50) / 50)
    assert sat.last_tenth == pytest.approx((math.exp(-9) - math.exp(-10)) / (1 - math.exp(-10)))
    assert sat.grad_ratio == pytest.approx(10 * math.exp(-10) / (1 - math.exp(-10)))
    with pytest.raises(InputError, match=r"containing 0\.9"):
        chem_findings.saturation_summary(np.linspace(0, 1, 4), s[None, :4], gx[None, :4])


@pytest.fixture(scope="module")
def small_classifier() -> chem_activity.TrainedClassifier:
    return chem_activity.train_activity_model(epochs=2, n_train=48, cache=False)


def test_ig_completeness_on_a_small_classifier(
        small_classifier: chem_activity.TrainedClassifier) -> None:
    model = small_classifier.model
    assert model.probability and next(model.parameters()).dtype == torch.float64
    f = chem_activity.load_activity("test", n=1).features[0]
    x = chem.pack(f.atoms, f.pairs)
    attr = attribkit.integrated_gradients(model, x, baseline=None, steps=128)
    with torch.no_grad():  # F(x) - F(0), evaluated directly
        fx, f0 = model(x).item(), model(torch.zeros_like(x)).item()
    e = chem.split_attribution(attr.values[0], f.bonded)
    assert 0.0 < fx < 1.0 and 0.0 < f0 < 1.0
    assert e.total == pytest.approx(fx - f0, abs=1e-4)
    split = chem_findings.pair_split([e])
    assert split.total == pytest.approx(e.total, rel=1e-12)
    # The path: scores equal F(alpha x); the mean of x . grad over alpha is F(x) - F(0).
    alphas = np.linspace(0, 1, 201)
    scores, _, gx = chem_findings.saturation_path(model, f, alphas)
    with torch.no_grad():
        direct = model(torch.as_tensor(alphas)[:, None] * x).numpy()
    np.testing.assert_allclose(scores, direct, rtol=0, atol=1e-12)
    assert np.trapezoid(gx, alphas) == pytest.approx(fx - f0, abs=1e-3)


@pytest.mark.slow
def test_real_classifier_and_quick_experiment() -> None:
    """Trains (cold cache, about a minute) or loads the classifier, then the demo's protocol."""
    from attribkit.experiments import chem_activity as experiment

    clf = chem_activity.train_activity_model()
    assert clf.n_train == 817 and clf.n_test == 200
    majority = max(clf.test_active_rate, 1 - clf.test_active_rate)
    assert clf.test_auc > 0.75 and clf.test_accuracy > majority + 0.1
    f = experiment.run(quick=True)
    # Completeness on every molecule, in probability units (64 steps; ReLU kinks limit the rule).
    assert f.n_molecules == 24 and f.max_gap < 2e-2, f.max_gap
    sd = f.split.shares("delta")
    assert sum(sd.values()) == pytest.approx(f.split.total / f.split.delta, rel=1e-9)
    assert abs(f.split.total - f.split.delta) < 2e-2 * f.split.n_molecules
    assert 0.0 < f.saturation.alpha_90 <= 1.0 and f.saturation.n_molecules == 8
    assert len(f.drawings) == 3 and f.figure.axes
    assert f.twins["trained classifier, 2 layers"].lookalike > 0
    assert "| bonded pairs |" in experiment.markdown(f)


def test_experiment_is_registered_for_the_chem_demo() -> None:
    from attribkit.experiments import experiments

    info = experiments("chem")["chem_activity"]
    assert info.task == "chem" and "Gradients of Counterfactuals" in info.title
    assert "chem_activity" not in experiments("vision")
