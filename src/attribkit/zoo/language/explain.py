"""Gradients of Counterfactuals, section 3.2 on the LSTM language model: saturation curves and word
tables.

* :func:`next_word_saturation` (Figure 8): the softmax score of the next word as the embeddings
  of the preceding words are scaled by ``alpha`` in ``[0, 1]``.
* :func:`word_table` (Figures 9 and 10): Integrated Gradients (zero-embedding baseline) and the
  gradient per preceding word, with the prediction and the IG total, which completeness makes
  equal to the prediction minus the score at ``alpha = 0``.

The "gradient" row is the gradient at the input contracted with the word's embedding
(``sum_d x_d dF/dx_d``: gradient x input), so that it is in the units of the score, like IG, of
which it is the ``alpha = 1`` term.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from attribkit.zoo.language.heldout import Section
from attribkit.zoo.language.model import TrainedLanguageModel

__all__ = ["WordTable", "next_word_saturation", "word_table"]


def _embed(lm: TrainedLanguageModel, secs: Sequence[Section]) -> Tensor:
    ids = torch.stack([s.ids for s in secs])
    return lm.next_word.embed(ids)


def next_word_saturation(lm: TrainedLanguageModel, secs: Sequence[Section],
                         alphas: int = 51) -> tuple[Tensor, Tensor]:
    """Scores ``F(alpha x)`` of each section's next word (Figure 8).

    Parameters
    ----------
    lm : TrainedLanguageModel
        The model.
    secs : sequence of Section
        The sections (see :func:`attribkit.zoo.language.sections`).
    alphas : int
        Equally spaced scaling values from 0 to 1.

    Returns
    -------
    alphas, scores : Tensor
        ``(A,)`` and ``(N, A)``.
    """
    from attribkit.evaluate.saturation import saturation_curves

    emb = _embed(lm, secs)
    a = torch.linspace(0.0, 1.0, alphas, dtype=emb.dtype)
    target = torch.tensor([s.next_id for s in secs])
    curves = saturation_curves(lm.next_word, emb, target=target, alphas=a)
    return curves.alphas, curves.scores


@dataclasses.dataclass(frozen=True)
class WordTable:
    """IG and gradients per word for one next-word prediction (Figures 9 and 10).

    Attributes
    ----------
    words
        The preceding words.
    next_word
        The predicted (actual next) word.
    integrated_gradients, gradients
        ``(L,)`` per-word scores.
    prediction
        The softmax score of the next word ``F(x)``.
    baseline_score
        ``F(0)``: the score with all embeddings scaled to zero.
    ig_total
        The sum of the IG row.
    steps
        IG steps.
    """

    words: tuple[str, ...]
    next_word: str
    integrated_gradients: Tensor
    gradients: Tensor
    prediction: float
    baseline_score: float
    ig_total: float
    steps: int

    @property
    def relative_gap(self) -> float:
        """``|IG total - (F(x) - F(0))| / |F(x) - F(0)|``."""
        d = self.prediction - self.baseline_score
        return abs(self.ig_total - d) / abs(d) if d else float("inf")

    def rows(self, scale: float = 1.0) -> list[list[str]]:
        """The table as rows of strings: sentence, integrated gradients, gradients."""
        def fmt(t: Tensor) -> list[str]:
            return [f"{float(v) * scale:.4f}" for v in t]

        return [["Sentence", *self.words],
                ["Integrated gradients", *fmt(self.integrated_gradients)],
                ["Gradients", *fmt(self.gradients)]]

    def caption(self) -> str:
        """``Prediction for W: p, total integrated gradient: s`` (as in the seed)."""
        return (f"Prediction for {self.next_word}: {self.prediction:.4f}, total integrated "
                f"gradient: {self.ig_total:.4f} (score at alpha = 0: {self.baseline_score:.4f})")

    def to_markdown(self, scale: float = 1.0) -> str:
        """A markdown table with the caption below."""
        rows = self.rows(scale)
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines) + f"\n\n{self.caption()}"


def word_table(lm: TrainedLanguageModel, section: Section, steps: int = 50) -> WordTable:
    """IG (zero baseline) and gradient x input per word for the next-word score of a section.

    Parameters
    ----------
    lm : TrainedLanguageModel
        The model.
    section : Section
        The words and the next word.
    steps : int
        IG steps (Gauss-Legendre).

    Returns
    -------
    WordTable
        The two rows and the totals.
    """
    from attribkit.methods.gradients import gradient_x_input
    from attribkit.methods.integrated import integrated_gradients

    emb = _embed(lm, [section])
    ig = integrated_gradients(lm.next_word, emb, target=section.next_id, steps=steps)
    gx = gradient_x_input(lm.next_word, emb, target=section.next_id)
    assert ig.output is not None and ig.baseline_output is not None
    per_word = ig.sum_embedding()[0]
    return WordTable(words=section.words, next_word=section.next_word,
                     integrated_gradients=per_word, gradients=gx.sum_embedding()[0],
                     prediction=float(ig.output[0]), baseline_score=float(ig.baseline_output[0]),
                     ig_total=float(per_word.sum()), steps=steps)
