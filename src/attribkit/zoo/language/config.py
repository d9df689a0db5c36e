"""The size and training of the LSTM language model, and the cache version of its files."""

from __future__ import annotations

import dataclasses
import hashlib
import json

__all__ = ["DEFAULT_CONFIG", "MODEL_VERSION", "TINY_CONFIG", "LMConfig"]

MODEL_VERSION = "2"
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
        Adam's learning rate and the gradient-norm clip.
    lr_decay
        Factor applied to the learning rate after each epoch.
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
    epochs: int = 3
    lr: float = 3e-3
    clip: float = 1.0
    lr_decay: float = 0.5
    max_train_tokens: int = 0
    seed: int = 0

    def key(self) -> str:
        """A short hash of the configuration (part of the cache file name)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


DEFAULT_CONFIG = LMConfig()
"""The model of the demo and of ``docs/zoo-language.md``."""
TINY_CONFIG = LMConfig(vocab_size=500, embed=32, hidden=32, epochs=2, max_train_tokens=16_000,
                       batch=32, lr=1e-2)
"""A model that trains in seconds (for tests)."""
