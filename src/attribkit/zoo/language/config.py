"""The size and training of the LSTM language model, and the cache version of its files."""

from __future__ import annotations

import dataclasses
import hashlib
import json

__all__ = ["DEFAULT_CONFIG", "MODEL_VERSION", "TINY_CONFIG", "LMConfig", "schedule_step"]

MODEL_VERSION = "3"
"""Bumped whenever the corpus preparation, the model or the training changes (cache key)."""


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Size and training of the language model.

    Attributes
    ----------
    vocab_size
        Words kept (including ``<unk>`` and ``<eos>``).
    embed, hidden, layers
        Embedding width, LSTM width and depth.
    bptt, batch
        Truncated back-propagation length and batch of parallel streams.
    epochs
        Most passes over the training stream (at most ``max_train_tokens`` tokens of it); the
        weights kept are those of the epoch with the lowest validation perplexity.
    lr, clip
        Adam's initial learning rate and the gradient-norm clip.
    lr_decay, plateau, max_decays
        The convergence rule (:func:`schedule_step`): when an epoch lowers the best validation
        perplexity by less than the fraction ``plateau``, the learning rate is multiplied by
        ``lr_decay``; at such an epoch after ``max_decays`` decays, training stops.
    max_train_tokens
        Cap on the training stream (0: all of it).
    seed
        Seed of the split, the initialisation and the batches.
    """

    vocab_size: int = 4000
    embed: int = 128
    hidden: int = 128
    layers: int = 2
    bptt: int = 20
    batch: int = 64
    epochs: int = 30
    lr: float = 3e-3
    clip: float = 1.0
    lr_decay: float = 0.25
    plateau: float = 0.02
    max_decays: int = 2
    max_train_tokens: int = 0
    seed: int = 0

    def key(self) -> str:
        """A short hash of the configuration (part of the cache file name)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


DEFAULT_CONFIG = LMConfig()
"""The model of the demo and of ``docs/zoo-language.md``."""
TINY_CONFIG = LMConfig(vocab_size=500, embed=32, hidden=32, epochs=3, max_train_tokens=16_000,
                       batch=32, lr=1e-2)
"""A model that trains in seconds (for tests)."""


def schedule_step(history: list[float], decays: int, config: LMConfig) -> str:
    """What the convergence rule does after an epoch: ``"continue"``, ``"decay"`` or ``"stop"``.

    The epoch's validation perplexity is compared with the best of the epochs before it. If it
    is lower by at least the fraction ``config.plateau``, training continues at the same
    learning rate; otherwise the learning rate is multiplied by ``config.lr_decay``, or, once
    ``config.max_decays`` decays have been made, training stops. Training also stops after
    ``config.epochs`` epochs.

    Parameters
    ----------
    history : list of float
        Validation perplexity after each epoch so far (the last is the epoch just finished).
    decays : int
        Learning-rate decays made so far.
    config : LMConfig
        The rule's settings.

    Returns
    -------
    str
        ``"continue"``, ``"decay"`` or ``"stop"``.
    """
    if len(history) >= config.epochs:
        return "stop"
    if len(history) < 2:
        return "continue"
    best = min(history[:-1])
    if (best - history[-1]) >= config.plateau * best:
        return "continue"
    return "decay" if decays < config.max_decays else "stop"
