"""The LSTM language model, the next-word function that is explained, and the trained bundle."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.zoo.language.config import LMConfig
from attribkit.zoo.language.corpus import LanguageCorpus

__all__ = ["LSTMLanguageModel", "NextWordModel", "TrainedLanguageModel"]


class LSTMLanguageModel(nn.Module):
    """Embedding -> stacked LSTM -> linear decoder over the vocabulary (Zaremba et al. 2014).

    Parameters
    ----------
    config : LMConfig
        Sizes.
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed)
        self.lstm = nn.LSTM(config.embed, config.hidden, num_layers=config.layers,
                            batch_first=True)
        self.decoder = nn.Linear(config.hidden, config.vocab_size)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward_embeddings(self, emb: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Logits ``(N, L, V)`` for every position of embedded sections ``(N, L, E)``."""
        out, state = self.lstm(emb, state)
        logits: Tensor = self.decoder(out)
        return logits, state

    def forward(self, ids: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Logits ``(N, L, V)`` and the LSTM state for token ids ``(N, L)``."""
        return self.forward_embeddings(self.embedding(ids), state)


class NextWordModel(nn.Module):
    """Embedded sections ``(N, L, E)`` -> softmax ``(N, V)`` of the word after them.

    The LSTM starts from the zero state, as at the start of a section in the paper's setup.

    Parameters
    ----------
    lm : LSTMLanguageModel
        The trained language model.
    """

    def __init__(self, lm: LSTMLanguageModel) -> None:
        super().__init__()
        self.lm = lm

    def embed(self, ids: Tensor) -> Tensor:
        """Word embeddings ``(N, L, E)`` of ids ``(N, L)`` (no gradient)."""
        with torch.no_grad():
            out: Tensor = self.lm.embedding(ids).detach()
        return out

    def forward(self, emb: Tensor) -> Tensor:
        """Next-word probabilities ``(N, V)``."""
        out, _ = self.lm.lstm(emb)
        logits: Tensor = self.lm.decoder(out[:, -1])  # only the last position is decoded
        return torch.softmax(logits, dim=-1)


@dataclasses.dataclass
class TrainedLanguageModel:
    """The trained model, its corpus and how well it does.

    Attributes
    ----------
    model
        The :class:`LSTMLanguageModel` (eval mode).
    next_word
        The :class:`NextWordModel` around it (the function to explain).
    corpus
        The :class:`LanguageCorpus` it was trained on.
    config
        Its :class:`LMConfig`.
    valid_perplexity, test_perplexity
        Word-level perplexity on the held-out streams (``exp`` of the mean cross-entropy).
    train_seconds
        Training wall time when it was trained (from the cache: as recorded then).
    valid_history
        Validation perplexity after each training epoch (the weights are the best epoch's).
    lr_history
        Adam's learning rate in each training epoch.
    """

    model: LSTMLanguageModel
    next_word: NextWordModel
    corpus: LanguageCorpus
    config: LMConfig
    valid_perplexity: float
    test_perplexity: float
    train_seconds: float
    valid_history: tuple[float, ...] = ()
    lr_history: tuple[float, ...] = ()
