"""attribkit.zoo.chem: featurisation, packing, the graph network, training and faithfulness."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Crippen, rdMolDescriptors

import attribkit
from attribkit.core.errors import InputError
from attribkit.zoo import chem

FA, FP = chem.N_ATOM_FEATURES, chem.N_PAIR_FEATURES


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small ops on a shared machine: one thread is much faster (and restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def col(names: tuple[str, ...], name: str) -> int:
    return names.index(name)


def test_ethanol_features_by_hand() -> None:
    f = chem.featurize("CCO")
    assert f.atoms.shape == (3, FA) and f.pairs.shape == (3, 3, FP)
    a = chem.ATOM_FEATURES
    for i, (el, hs, deg) in enumerate([("C", ">=3", 1), ("C", "=2", 2), ("O", "=1", 1)]):
        row = f.atoms[i]
        assert row[col(a, f"element={el}")] == 1 and row[:10].sum() == 1
        assert row[col(a, f"hydrogens{hs}")] == 1
        assert row[col(a, f"degree={deg}")] == 1
        assert row[col(a, "charge=0")] == 1 and row[col(a, "aromatic")] == 0
        assert row[col(a, "in_ring")] == 0
    p = chem.PAIR_FEATURES
    assert torch.equal(f.pairs, f.pairs.transpose(0, 1))
    assert f.pairs[torch.arange(3), torch.arange(3)].abs().sum() == 0
    assert f.pairs[0, 1, col(p, "bond=single")] == 1 and f.pairs[0, 1, col(p, "distance=1")] == 1
    assert f.pairs[0, 2, :4].sum() == 0 and f.pairs[0, 2, col(p, "distance=2")] == 1
    assert f.bonded.tolist() == [[False, True, False], [True, False, True], [False, True, False]]


def test_ring_charge_and_fragments() -> None:
    f = chem.featurize("c1ccccc1[N+](=O)[O-].[Na+]")
    a, p = chem.ATOM_FEATURES, chem.PAIR_FEATURES
    assert f.atoms[:6, col(a, "aromatic")].sum() == 6
    assert f.atoms[6, col(a, "charge>=+1")] == 1 and f.atoms[8, col(a, "charge<=-1")] == 1
    assert f.atoms[9, col(a, "element=other")] == 1
    assert f.pairs[0, 3, col(p, "same_ring")] == 1 and f.pairs[0, 3, col(p, "distance=3")] == 1
    assert f.pairs[0, 1, col(p, "bond=aromatic")] == 1
    assert f.pairs[6, 7, col(p, "bond=double")] == 1
    assert f.pairs[0, 9, col(p, "distance>=7")] == 1  # disconnected fragment
    # Every distinct pair has exactly one distance bucket.
    dist = f.pairs[..., 4:11].sum(-1)
    assert torch.equal(dist, 1 - torch.eye(10, dtype=dist.dtype))


def test_pack_unpack_round_trip_and_errors() -> None:
    fs = [chem.featurize(s) for s in ("CCO", "c1ccccc1N")]
    atoms, pairs, mask = chem.batch_features(fs)
    assert mask.tolist() == [[1, 1, 1, 0, 0, 0, 0], [1] * 7]
    packed = chem.pack(atoms, pairs)
    assert packed.shape == (2, 7 * FA + 49 * FP)
    a2, p2 = chem.unpack(packed)
    assert torch.equal(a2, atoms) and torch.equal(p2, pairs)
    with pytest.raises(InputError, match="packed molecule row"):
        chem.unpack(packed[:, :-1])
    with pytest.raises(InputError, match="parse"):
        chem.featurize("C1CC")


@pytest.mark.parametrize("smiles", ["CCO", "OC(=O)c1ccccc1N", "[O-][N+](=O)C1=CNC(=N)S1",
                                    "CC(C)Cl.[NH4+]"])
def test_exact_contributions_sum_to_rdkit_totals(smiles: str) -> None:
    mol = Chem.MolFromSmiles(smiles)
    assert chem.tpsa_contributions(mol).sum() == pytest.approx(rdMolDescriptors.CalcTPSA(mol))
    assert chem.logp_contributions(mol).sum() == pytest.approx(Crippen.MolLogP(mol), abs=1e-9)
    assert len(chem.logp_contributions(mol)) == mol.GetNumAtoms()


def test_padding_and_mask_do_not_change_scores() -> None:
    torch.manual_seed(0)
    model = chem.MoleculeModel(chem.GraphConvNet()).double().eval()
    fs = [chem.featurize(s) for s in ("CCO", "c1ccccc1N", "CC(=O)N")]
    atoms, pairs, mask = chem.batch_features(fs)
    batched = model(chem.pack(atoms, pairs), mask)
    single = torch.cat([model(chem.pack(f.atoms, f.pairs)) for f in fs])
    torch.testing.assert_close(batched, single, rtol=1e-12, atol=1e-12)


def test_split_attribution_sums_and_shares() -> None:
    n = 3
    atoms = torch.tensor([[1.0] * FA, [2.0] * FA, [0.0] * FA]) / FA
    pairs = torch.zeros(n, n, FP)
    pairs[0, 1] = 1.0 / FP   # bonded, 1
    pairs[0, 2] = -2.0 / FP  # not bonded, -2
    values = chem.pack(atoms, pairs)[0]
    bonded = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    e = chem.split_attribution(values, bonded)
    torch.testing.assert_close(e.atoms, torch.tensor([1.0, 2.0, 0.0]))
    torch.testing.assert_close(e.per_atom(True), torch.tensor([1.0 - 0.5, 2.0 + 0.5, -1.0]))
    assert e.per_atom(True).sum().item() == pytest.approx(e.total) == pytest.approx(2.0)
    assert e.shares() == pytest.approx({"atoms": 1.5, "bonded_pairs": 0.5, "other_pairs": -1.0})


def test_pearson_matches_numpy() -> None:
    x, y = np.array([1.0, 2.0, 4.0, 3.0]), np.array([0.5, 1.0, 1.0, 3.0])
    assert chem.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert math.isnan(chem.pearson(x, np.zeros(4)))


def test_training_is_deterministic() -> None:
    r1 = chem.train_property_model("logp", n_train=24, epochs=2, n_test=4, cache=False)
    r2 = chem.train_property_model("logp", n_train=24, epochs=2, n_test=4, cache=False)
    for (k, v1), v2 in zip(r1.model.state_dict().items(), r2.model.state_dict().values(),
                           strict=True):
        assert torch.equal(v1, v2), k


@pytest.fixture(scope="module")
def tpsa_model() -> chem.TrainedModel:
    return chem.train_property_model("tpsa", n_train=200, epochs=20, batch_size=8, n_test=40,
                                     cache=False)


def test_small_tpsa_model_learns(tpsa_model: chem.TrainedModel) -> None:
    assert tpsa_model.test_r2 > 0.6


def test_ig_completeness_on_atoms_and_pairs(tpsa_model: chem.TrainedModel) -> None:
    model = tpsa_model.model
    f = chem.featurize("OC(=O)c1ccccc1N")
    x = chem.pack(f.atoms, f.pairs)
    attr = attribkit.integrated_gradients(model, x, baseline=None, steps=256)
    with torch.no_grad():  # F(x) - F(0), evaluated directly
        delta = (model(x) - model(torch.zeros_like(x))).item()
    e = chem.split_attribution(attr.values[0], f.bonded)
    assert e.total == pytest.approx(delta, rel=2e-2)
    assert e.per_atom(True).sum().item() == pytest.approx(e.total, rel=1e-9)


def test_ig_recovers_exact_tpsa_contributions(tpsa_model: chem.TrainedModel) -> None:
    test = chem.load_molecules("tpsa", "test", n=8)
    res = chem.faithfulness(tpsa_model.model, test, "tpsa",
                            methods=["integrated_gradients", "saliency"], steps=16)
    by = {r.method: r for r in res}
    ig = by["integrated_gradients"]
    assert not ig.error and ig.n_molecules >= 5
    assert ig.corr_with_pairs > 0.6
    # Unsigned-by-input saliency ignores which atoms are present: clearly worse.
    assert by["saliency"].corr_with_pairs < ig.corr_with_pairs
    assert res[0].method == "integrated_gradients"


def test_player_groups_one_player_per_atom_and_unordered_pair() -> None:
    n = 4
    ids = chem.player_groups(n)
    assert ids.shape == (n * FA + n * n * FP,)
    atoms, pairs = chem.unpack(ids.unsqueeze(0).double())
    assert torch.equal(atoms[0], torch.arange(n).double().unsqueeze(1).expand(n, FA))
    p = pairs[0, :, :, 0]
    assert (p == pairs[0].amin(-1)).all() and (p == pairs[0].amax(-1)).all()
    assert torch.equal(p, p.T) and (p.diagonal() == -1).all()
    off = p[~torch.eye(n, dtype=torch.bool)]
    assert sorted(set(off.long().tolist())) == list(range(n, n + n * (n - 1) // 2))
