"""The logistic-regression sentiment head: trained once on MiniLM embeddings, then cached."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import torch

from attribkit.zoo._cache import cache_dir
from attribkit.zoo.text.data import sentiment_data
from attribkit.zoo.text.encoder import EXTRA_HINT, embed, load_encoder
from attribkit.zoo.text.models import SentimentClassifier, SentimentHead

__all__ = [
    "HEAD_VERSION",
    "load_sentiment_classifier",
    "sentiment_head_cached",
    "train_sentiment_head",
]

HEAD_VERSION = "1"
"""Bumped whenever the data split, features or head change; part of the cache key."""


def _head_path(n_train: int, n_test: int, seed: int) -> pathlib.Path:
    return cache_dir("text") / f"sentiment_head_v{HEAD_VERSION}_n{n_train}_t{n_test}_s{seed}.pt"


def sentiment_head_cached(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> bool:
    """Whether :func:`train_sentiment_head` with these settings will read the cache (no training).

    Parameters
    ----------
    n_train, n_test, seed : int
        As for :func:`train_sentiment_head`.

    Returns
    -------
    bool
        True when the trained head is in the cache directory.
    """
    return _head_path(n_train, n_test, seed).is_file()


def train_sentiment_head(n_train: int = 3000, n_test: int = 1000, seed: int = 0, c: float = 1.0,
                         cache: bool = True, progress: bool = False) -> SentimentHead:
    """Train (or load from the cache) the logistic-regression sentiment head.

    Embedding the tweets dominates the cost: about 300 tweets cost some seconds on one CPU core,
    the default 4000 a few minutes.

    Parameters
    ----------
    n_train : int
        Training tweets (balanced).
    n_test : int
        Held-out tweets (balanced) for the reported accuracy.
    seed : int
        Split seed (the solver itself is deterministic).
    c : float
        Inverse L2 regularisation strength of the logistic regression.
    cache : bool
        Read and write the head in the cache directory.
    progress : bool
        Show a progress bar while the tweets are embedded (when the head is trained).

    Returns
    -------
    SentimentHead
        The head and its accuracies.
    """
    path = _head_path(n_train, n_test, seed)
    if cache and path.is_file() and c == 1.0:
        blob = torch.load(path, weights_only=True)
        return SentimentHead(weight=blob["weight"], bias=float(blob["bias"]),
                             train_accuracy=float(blob["train_accuracy"]),
                             test_accuracy=float(blob["test_accuracy"]),
                             n_train=n_train, n_test=n_test, seed=seed)
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"the sentiment head needs scikit-learn; {EXTRA_HINT}.") from err
    data = sentiment_data(n_train, n_test, seed)
    encoder = load_encoder()
    x_tr = embed(data.train_texts, encoder=encoder, progress=progress).astype(np.float64)
    x_te = embed(data.test_texts, encoder=encoder, progress=progress).astype(np.float64)
    # Standardise for the solver, then fold the scaling back into the weights.
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-8
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit((x_tr - mu) / sd, data.train_labels)
    w = clf.coef_[0] / sd
    b = float(clf.intercept_[0] - (clf.coef_[0] * mu / sd).sum())
    acc_tr = float((((x_tr @ w + b) > 0).astype(np.int64) == data.train_labels).mean())
    acc_te = float((((x_te @ w + b) > 0).astype(np.int64) == data.test_labels).mean())
    head = SentimentHead(weight=torch.tensor(w, dtype=torch.float32), bias=b,
                         train_accuracy=acc_tr, test_accuracy=acc_te, n_train=n_train,
                         n_test=n_test, seed=seed)
    if cache and c == 1.0:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"weight": head.weight, "bias": b, "train_accuracy": acc_tr,
                    "test_accuracy": acc_te}, tmp)
        tmp.replace(path)
    return head


def load_sentiment_classifier(n_train: int = 3000, n_test: int = 1000, seed: int = 0,
                              dtype: torch.dtype = torch.float32,
                              progress: bool = False) -> SentimentClassifier:
    """The sentiment classifier with the (cached or freshly trained) head, in eval mode.

    Parameters
    ----------
    n_train : int
        Training tweets of the head (see :func:`train_sentiment_head`).
    n_test : int
        Held-out tweets of the head.
    seed : int
        Split seed of the head.
    dtype : torch.dtype
        Parameter dtype (float64 for precise completeness checks).
    progress : bool
        Show a progress bar if the head has to be trained (the first call only).

    Returns
    -------
    SentimentClassifier
        A fresh model; ``model.head_info`` holds the :class:`SentimentHead`.
    """
    head = train_sentiment_head(n_train, n_test, seed, progress=progress)
    model = SentimentClassifier(load_encoder(), head.weight, head.bias).to(dtype).eval()
    model.head_info = head
    return model

