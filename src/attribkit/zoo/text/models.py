"""The models to attribute: MiniLM with a sentiment head, and similarity to a reference sentence."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.zoo.text.encoder import EMBED_DIM, encode, load_encoder, sentence_embedding

__all__ = ["CLASS_NAMES", "SentimentClassifier", "SentimentHead", "SimilarityModel"]

CLASS_NAMES: tuple[str, str] = ("negative", "positive")
"""Class 0 and class 1 of :class:`SentimentClassifier`'s output."""


@dataclasses.dataclass(frozen=True)
class SentimentHead:
    """A trained logistic-regression head and how well it does.

    Attributes
    ----------
    weight : Tensor
        ``(384,)`` float32 weights on the normalised sentence embedding.
    bias : float
        The intercept.
    train_accuracy, test_accuracy : float
        Accuracy on the training and the held-out tweets.
    n_train, n_test, seed : int
        The split it was trained on.
    """

    weight: Tensor
    bias: float
    train_accuracy: float
    test_accuracy: float
    n_train: int
    n_test: int
    seed: int


class SentimentClassifier(nn.Module):
    """MiniLM encoder plus a linear sentiment head: ``(input_ids, attention_mask) -> (N, 2)``.

    The output holds logits ``(negative, positive)``; their softmax is the head's logistic
    probability. Attribute at :attr:`word_embeddings_module` with the mask in ``forward_args``.

    Parameters
    ----------
    encoder : torch.nn.Module
        A MiniLM ``BertModel`` (see :func:`load_encoder`).
    weight : Tensor
        ``(384,)`` logistic-regression weights on the normalised sentence embedding.
    bias : float
        The logistic-regression intercept.
    """

    def __init__(self, encoder: nn.Module, weight: Tensor, bias: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(EMBED_DIM, 2)
        self.head_info: SentimentHead | None = None
        with torch.no_grad():
            w = weight.reshape(-1).to(self.head.weight.dtype)
            self.head.weight.copy_(torch.stack([-0.5 * w, 0.5 * w]))
            self.head.bias.copy_(torch.tensor([-0.5 * bias, 0.5 * bias]))

    @property
    def word_embeddings_module(self) -> nn.Module:
        """The word (token) embedding module: the layer to attribute at."""
        encoder: Any = self.encoder
        module: nn.Module = encoder.embeddings.word_embeddings
        return module

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits ``(N, 2)``; a missing mask means every token is real."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out: Tensor = self.head(sentence_embedding(self.encoder, input_ids, attention_mask))
        return out


class SimilarityModel(nn.Module):
    """Cosine similarity ``(N,)`` of each text's MiniLM embedding to a fixed reference sentence.

    Parameters
    ----------
    reference_text : str
        The sentence every input is compared with.
    encoder : torch.nn.Module, optional
        The encoder (default: a fresh :func:`load_encoder`).
    """

    def __init__(self, reference_text: str, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else load_encoder()
        self.reference_text = reference_text
        ids, mask = encode([reference_text])
        with torch.no_grad():
            ref = sentence_embedding(self.encoder, ids, mask)[0]
        self.register_buffer("reference", ref)

    @property
    def word_embeddings_module(self) -> nn.Module:
        """The word (token) embedding module: the layer to attribute at."""
        encoder: Any = self.encoder
        module: nn.Module = encoder.embeddings.word_embeddings
        return module

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Cosine similarities ``(N,)`` to the reference sentence."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        emb = sentence_embedding(self.encoder, input_ids, attention_mask)
        ref = self.get_buffer("reference")
        return emb @ ref.to(emb.dtype)

