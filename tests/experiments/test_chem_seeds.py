"""The chemistry findings over training seeds: the flattening of one run and the aggregation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from attribkit.experiments import chem_activity, chem_seeds
from attribkit.zoo import chem
from attribkit.zoo.chem import activity


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _small(seed: int) -> chem_activity.ActivityFindings:
    return chem_activity.run(seed=seed, n_train=40, epochs=2, n_test=5, n_actives=3, steps=16)


def test_seed_numbers_of_a_small_run_against_direct_evaluation() -> None:
    f = _small(1)
    nums = chem_seeds.seed_numbers(f)
    assert set(nums) == set(chem_seeds.QUANTITIES)
    # F(0), evaluated directly on the all-zero counterfactual of each held-out molecule.
    model = activity.train_activity_model(epochs=2, seed=1, n_train=40, cache=False).model
    test = activity.load_activity("test", 1, 5)
    with torch.no_grad():
        f0 = [float(model(torch.zeros_like(chem.pack(m.atoms, m.pairs).double()))[0])
              for m in test.features]
    assert nums["f0_min"] == pytest.approx(min(f0), abs=1e-9)
    assert nums["f0_max"] == pytest.approx(max(f0), abs=1e-9)
    # The shares of one denominator add up to what IG distributes over it.
    total = sum(nums[f"delta_{k}"] for k in ("atoms", "bonded_pairs", "other_pairs"))
    assert total == pytest.approx(f.split.total / f.split.delta, rel=1e-9)
    # Sign changes and misses counted from the stored paths by hand.
    g = f.path_grads
    changes = sum(1 for row in g if row.min() < 0 < row.max())
    assert nums["sign_change"] == changes and nums["n_actives"] == len(g) == 3
    assert nums["misses"] == sum(1 for row in f.path_scores if row[-1] < 0.5)
    assert nums["grad_sum_min"] == g.min() and nums["grad_sum_max"] == g.max()


def test_aggregate_mean_sd_range_and_paper_column() -> None:
    keys = list(chem_seeds.QUANTITIES)
    per_seed = {s: {k: float(s + 1) for k in keys} for s in range(3)}  # 1, 2, 3
    per_seed[0]["score_bonded_pairs"], per_seed[1]["score_bonded_pairs"] = 0.40, 0.50
    per_seed[2]["score_bonded_pairs"] = 0.60
    rows = {r[0]: r for r in chem_seeds.aggregate(per_seed)}
    auc = rows["held-out ROC AUC"]
    assert auc[1:5] == ["2.000", "1.000", "1.000", "3.000"]  # mean, sd (ddof=1), min, max
    assert auc[5] == "1.000 / 2.000 / 3.000" and auc[6] == "-"
    bonded = rows["bonded pairs, share of Σ F(x)"]
    assert bonded[1:5] == ["+50.0%", "10.0%", "+40.0%", "+60.0%"] and bonded[6] == "+46 %"
    one = chem_seeds.aggregate({7: per_seed[0]})
    assert one[0][2] == "0.000"  # a single seed has no spread
    text = chem_seeds.markdown(per_seed)
    assert "Regenerate with: `python -m attribkit.experiments.chem_seeds`" in text
    assert text.count("\n|") == len(keys) + 2 and np.isfinite(float(auc[1]))
