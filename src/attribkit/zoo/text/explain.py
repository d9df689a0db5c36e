"""Token and word attributions of one text, at the word-embedding layer."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.zoo.text.encoder import baseline_ids, encode, tokens_of
from attribkit.zoo.text.head import load_sentiment_classifier

__all__ = ["TextExplanation", "explain_text", "word_scores"]


@dataclasses.dataclass(frozen=True)
class TextExplanation:
    """Per-token scores of one text.

    Attributes
    ----------
    tokens : list of str
        WordPiece tokens including ``[CLS]`` and ``[SEP]``.
    scores : Tensor
        ``(L,)`` attribution per token (summed over the embedding axis).
    attribution : Attribution
        The full result (values ``(1, L, 384)``).
    """

    tokens: list[str]
    scores: Tensor
    attribution: Attribution

    def words(self) -> list[tuple[str, float]]:
        """Word-level scores (see :func:`word_scores`)."""
        return word_scores(self.tokens, self.scores)


def explain_text(text: str, method: str = "integrated_gradients", baseline: str = "pad",
                 target: Any = 1, steps: int = 50, model: nn.Module | None = None,
                 **options: Any) -> TextExplanation:
    """Attribute a model's output on one text to its tokens, at the word-embedding layer.

    Parameters
    ----------
    text : str
        The text.
    method : str
        A registered method name (``attribkit.methods.registry.methods()``).
    baseline : str
        ``"pad"``, ``"unk"`` or ``"zero"`` (see :func:`baseline_ids`).
    target : Any
        The output to explain: 1 positive, 0 negative (ignored by single-output models such as
        :class:`SimilarityModel`, pass ``None`` there).
    steps : int
        Path steps (for path methods; ignored otherwise).
    model : torch.nn.Module, optional
        A :class:`SentimentClassifier` or :class:`SimilarityModel` (default: the cached
        classifier).
    **options : Any
        Passed to the method.

    Returns
    -------
    TextExplanation
        Tokens and per-token scores.
    """
    from attribkit.methods.registry import explain, get

    m = model if model is not None else load_sentiment_classifier()
    layer = getattr(m, "word_embeddings_module", None)
    if not isinstance(layer, nn.Module):
        raise InputError("the model needs a word_embeddings_module (use SentimentClassifier or "
                         "SimilarityModel).")
    ids, mask = encode([text])
    info = get(method)
    params = inspect.signature(info.fn).parameters
    opts: dict[str, Any] = {}
    if info.needs_baseline and "baseline" in params:
        opts["baseline"] = baseline_ids(ids, baseline)
    if "steps" in params:
        opts["steps"] = steps
    if "layer" not in params:
        raise InputError(f"{method} cannot attribute at a layer; token attributions need a "
                         "method with a layer= option (integrated_gradients, saliency, ...).")
    opts.update(options)
    attr = explain(m, ids, method=method, target=target, layer=layer, forward_args=(mask,),
                   **opts)
    return TextExplanation(tokens=tokens_of(ids[0]), scores=attr.sum_embedding()[0],
                           attribution=attr)


def word_scores(tokens: Sequence[str], scores: Tensor | Sequence[float],
                skip_special: bool = True) -> list[tuple[str, float]]:
    """Merge WordPiece sub-tokens (``##...``) into words, summing their scores.

    Parameters
    ----------
    tokens : sequence of str
        WordPiece tokens.
    scores : Tensor or sequence of float
        One score per token.
    skip_special : bool
        Drop ``[CLS]``, ``[SEP]`` and ``[PAD]``.

    Returns
    -------
    list of (str, float)
        ``(word, summed score)`` in order.
    """
    vals = [float(s) for s in (scores.tolist() if isinstance(scores, Tensor) else scores)]
    if len(vals) != len(tokens):
        raise InputError(f"{len(tokens)} tokens but {len(vals)} scores.")
    out: list[tuple[str, float]] = []
    for tok, val in zip(tokens, vals, strict=True):
        if skip_special and tok in ("[CLS]", "[SEP]", "[PAD]"):
            continue
        if tok.startswith("##") and out:
            word, total = out[-1]
            out[-1] = (word + tok[2:], total + val)
        else:
            out.append((tok, val))
    return out
