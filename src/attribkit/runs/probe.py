"""What a run learns from its model before any work: the kind of its items and the method checks.

The local engine builds the model in the driver and calls :func:`describe` there; the Ray engine
calls it in one short-lived Ray task (:func:`attribkit.runs.ray_engine.probe`), so that the
driver, which may be a client of a cluster, never holds the model. Either way the manifest gets
the same ``kind`` (``"generation"`` for a ``module:callable`` language model, whatever its input
file looks like) before the store is created or compared, and :func:`new_tokens` then settles
how many tokens each answer has.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from attribkit.runs.checks import MethodError, last_convolution, method_layers
from attribkit.runs.interactions import check_model
from attribkit.zoo.specs import Built

__all__ = ["check_new_tokens", "default_new_tokens", "describe", "new_tokens"]


def describe(built: Built, entries: Sequence[Mapping[str, Any]],
             interactions: Mapping[str, Any] | None) -> tuple[str, list[str]]:
    """Check every method's settings against ``built`` (a bad layer, interactions on a text or
    generation model: :class:`MethodError`, one line) and return its kind and the notes to show
    (which default layer a method takes)."""
    layers = method_layers(built, entries)
    notes = []
    last = last_convolution(built.model)
    for e in entries:
        if layers.get(e["name"]) is not None and "layer" not in e["params"]:
            notes.append(f"{e['name']} works at layer {last!r} (the last convolution; "
                         f"-m {e['name']}:layer=NAME for another)")
    if interactions is not None:
        check_model(built)
    return built.kind, notes


def default_new_tokens() -> int:
    """The tokens :func:`attribkit.sequences.explain_generation` generates unless told (20)."""
    from attribkit.sequences import explain_generation

    default = inspect.signature(explain_generation).parameters["max_new_tokens"].default
    return int(default)


def check_new_tokens(max_new_tokens: int | None) -> None:
    """Refuse a ``max_new_tokens`` that is neither None nor a positive integer (ValueError)."""
    if max_new_tokens is not None and (isinstance(max_new_tokens, bool) or
                                       not isinstance(max_new_tokens, int) or
                                       max_new_tokens < 1):
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")


def new_tokens(kind: str, max_new_tokens: int | None, model: str) -> int | None:
    """The number of tokens each answer of a run has: ``max_new_tokens``, or the default for a
    generation run; None for any other kind.

    Raises
    ------
    ValueError
        When ``max_new_tokens`` is not a positive integer.
    MethodError
        When it is given for a model that does not generate (one line).
    """
    check_new_tokens(max_new_tokens)
    if kind != "generation":
        if max_new_tokens is not None:
            raise MethodError(f"max_new_tokens (--max-new-tokens) is for language models; "
                              f"{model!r} reads {kind} items and generates nothing")
        return None
    return default_new_tokens() if max_new_tokens is None else max_new_tokens
