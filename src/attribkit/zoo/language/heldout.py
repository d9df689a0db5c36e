"""Random sections of held-out text and the word that follows each (the paper's Figure 8)."""

from __future__ import annotations

import dataclasses

import numpy as np
from torch import Tensor

from attribkit.zoo.language.model import TrainedLanguageModel

__all__ = ["Section", "sections"]


@dataclasses.dataclass(frozen=True)
class Section:
    """A section of test text: ``length`` words and the word that follows them.

    Attributes
    ----------
    ids
        ``(L,)`` int64 ids of the words.
    next_id
        Id of the next word (the target).
    words
        The words.
    next_word
        The next word.
    """

    ids: Tensor
    next_id: int
    words: tuple[str, ...]
    next_word: str


def sections(lm: TrainedLanguageModel, n: int = 20, length: int = 10, seed: int = 0,
             stream: str = "test") -> list[Section]:
    """``n`` random sections of a held-out stream (seeded), as in the paper's Figure 8.

    Parameters
    ----------
    lm : TrainedLanguageModel
        The model (for its corpus).
    n, length : int
        How many sections, and words per section (the seed uses 20 and 10).
    seed : int
        Seed of the positions.
    stream : str
        ``"test"`` or ``"valid"``.

    Returns
    -------
    list of Section
        The sections, in the order drawn.
    """
    data: Tensor = getattr(lm.corpus, stream)
    rng = np.random.default_rng(seed)
    starts = rng.choice(data.numel() - length - 1, size=n, replace=False)
    out = []
    for s in starts.tolist():
        ids = data[s:s + length].clone()
        nxt = int(data[s + length])
        out.append(Section(ids=ids, next_id=nxt, words=tuple(lm.corpus.words(ids)),
                           next_word=lm.corpus.vocab[nxt]))
    return out
