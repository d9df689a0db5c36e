"""The Figure 6 search: ranks, the paper's top-five rule and the label comparison on a toy."""

from __future__ import annotations

import pytest
import torch

from attribkit.experiments import figure6_search as f6


def test_true_rank_and_the_top_five_rule() -> None:
    p = torch.tensor([[0.30, 0.25, 0.15, 0.10, 0.08, 0.07, 0.05],
                      [0.05, 0.30, 0.25, 0.15, 0.10, 0.08, 0.07]])
    assert f6.true_rank(p[0], [6]) == 7 and f6.true_rank(p[0], [6, 2]) == 3
    cases, ranks = f6.search(p, [[6], [0, 6]], ["a", "b"])
    assert ranks == [7, 6]  # b: class 0 (0.05) ranks 7th, class 6 (0.07) 6th: its best is 6
    assert [(c.name, c.predicted, c.truth, c.rank) for c in cases] == [("a", 0, 6, 7),
                                                                         ("b", 1, 6, 6)]
    assert cases[1].p_truth == pytest.approx(0.07) and cases[1].p_predicted == pytest.approx(0.3)
    kept, ranks = f6.search(p, [[2], [0, 5]], ["a", "b"])
    assert kept == [] and ranks == [3, 5]  # rank 5 is inside the top five


def test_compare_labels_on_a_linear_softmax() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 7),
                                torch.nn.Softmax(dim=-1)).double().eval()
    x = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    case = f6.Case("x", 0, predicted=2, truth=5, rank=6, p_predicted=0.3, p_truth=0.01)
    s = f6.compare_labels(model, x, case, baseline=0.0, steps=64)
    assert s["gap_predicted"] < 1e-3 and s["gap_truth"] < 1e-3  # IG is complete here
    assert -1.0 <= s["pearson"] <= 1.0 and 0.0 <= s["jaccard"] <= 1.0
    text = f6.markdown({"toy": ([case], [6, 1])}, {"x": s}, lambda k, c: f"'{c}'", 1.0)
    assert "| x | '2' 0.300 | '5' 0.0100 (6) |" in text
    assert "toy: 2 inputs, 1 with the true label outside the top 5" in text
