"""One call shape for every method: what :func:`attribkit.explain` checks before a method runs.

Every method is called as ``explain(model, inputs, method=..., target=..., baseline=...,
batch_size=..., progress=..., seed=...)``. A keyword the method does not take is refused with
one line saying why (LRP takes no baseline, saliency draws no random numbers) instead of
Python's raw ``TypeError``; a layer the method needs and the call does not name is the model's
last convolution, as on the command line, with a one-line note.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from attribkit.core.errors import OptionError
from attribkit.core.notes import note

__all__ = ["COMMON", "last_convolution", "shape_call"]

#: The keywords every call may give; a method that does not use one refuses it with one line.
COMMON = ("target", "baseline", "batch_size", "progress", "seed")


def last_convolution(model: object) -> tuple[str, nn.Module] | None:
    """The name and module of the last ``Conv1d/2d/3d`` of ``model``, or ``None``."""
    if not isinstance(model, nn.Module):
        return None
    convs = [(n, m) for n, m in model.named_modules()
             if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    return convs[-1] if convs else None


def _why_not(name: str, key: str, family: str) -> str:
    if key == "baseline":
        if family == "propagation":
            return (f"{name} takes no baseline (it propagates relevance back from the output; "
                    "a reference point is DeepLIFT's or DeepSHAP's): drop baseline=.")
        return f"{name} takes no baseline: drop baseline=."
    if key == "seed":
        return f"{name} draws no random numbers, so it takes no seed: drop seed=."
    return f"{name} takes no {key}=: drop it."


def shape_call(info: Any, model: object, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the method ``info`` (a :class:`MethodInfo`), completed.

    Parameters
    ----------
    info
        The registered method.
    model
        The model of the call.
    options
        The keyword options of the call.

    Returns
    -------
    dict
        The options to pass, with ``layer`` filled in where the method needs one.

    Raises
    ------
    OptionError
        A keyword the method does not take, or a required one that cannot be chosen, in one
        line.
    """
    params = inspect.signature(info.fn).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    named = [k for k, p in params.items() if p.kind == p.KEYWORD_ONLY]
    for key in options:
        if key in params or takes_any:
            continue
        if key in COMMON:
            raise OptionError(_why_not(info.name, key, info.family))
        raise OptionError(f"{info.name} takes no option {key!r}; its options are "
                          f"{', '.join(named)} (see help(attribkit.{info.name})).")
    out = dict(options)
    for key in named:
        p = params[key]
        if p.default is not inspect.Parameter.empty or key in out:
            continue
        if key == "layer":
            found = last_convolution(model)
            if found is None:
                raise OptionError(f"{info.name} needs layer= (a module of the model) and the "
                                  "model has no convolution to choose; name one.")
            out["layer"] = found[1]
            note(f"{info.name}: no layer= given, so it uses the model's last convolution "
                 f"{found[0]!r}; pass layer= to choose another.")
            continue
        raise OptionError(f"{info.name} needs {key}= (see help(attribkit.{info.name})).")
    return out
