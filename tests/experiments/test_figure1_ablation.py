"""Figure 1's ablation test: which pixels are blacked out, and the scores, on a hand-made case."""

from __future__ import annotations

import torch

from attribkit.experiments import figure1_ablation as f1


def test_ablate_outside_counts_and_scores_by_hand() -> None:
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[:2, :2] = True  # the object: the top-left quarter
    a = torch.arange(16, dtype=torch.float64).reshape(4, 4)  # largest at the bottom right
    b = torch.zeros(4, 4, dtype=torch.float64)
    b[0, 0], b[0, 1], b[3, 3], b[2, 3] = 9, 8, 7, 1  # two of its top four inside
    score = lambda batch: batch.flatten(1).sum(dim=1)  # noqa: E731 - each pixel counts 1
    share, after, removed = f1.ablate_outside(score, x, {"a": a, "b": b}, inside, 0.0,
                                              share=0.25)
    assert share == {"a": 1.0, "b": 0.5} and removed == {"a": 4, "b": 2, "random": 4}
    assert after == {"a": 12.0, "b": 14.0, "random": 12.0}
    # the random control takes only pixels off the object
    _, after2, _ = f1.ablate_outside(lambda v: v[:, 0, :2, :2].flatten(1).sum(1), x, {"a": a},
                                     inside, 0.0, share=0.75, seed=3)
    assert after2["random"] == 4.0 and after2["a"] == 4.0


def test_markdown_medians() -> None:
    rows = [f1.Ablation("p", 1, 0.5, {"gradient": 0.6, "ig": 0.2},
                        {"gradient": 0.45, "ig": 0.5, "random": 0.4}, {"gradient": 3}),
            f1.Ablation("q", 2, 0.8, {"gradient": 0.5, "ig": 0.1},
                        {"gradient": 0.8, "ig": 0.6, "random": 0.8}, {"gradient": 3})]
    text = f1.markdown(rows, 0.05, 1.0)
    assert "| p | 1 | 0.500 | 60% | 0.450 | 20% | 0.500 | 0.400 |" in text
    assert "gradient's off-object pixels 0.90" in text  # median of 0.9 and 1.0 (lower middle)
