"""Every method's settings checked before a run does any work.

:func:`normalise_methods` reads what the user gave (names, aliases, settings) into manifest
entries; :func:`method_layers` resolves, with the model at hand, the layer each layer method
works at: ``layer=NAME`` when given (a name of ``model.named_modules()``), and for a method that
needs one (Grad-CAM) the model's last convolution otherwise, as ``attribkit explain`` does.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from attribkit.zoo.specs import Built

__all__ = ["MethodArg", "MethodError", "last_convolution", "method_layers", "normalise_methods"]

MethodArg = str | tuple[str, Mapping[str, Any]] | Mapping[str, Any]
#: Keyword options a run sets itself.
_SET_BY_RUN = ("target", "progress", "forward_args")
_SUPPLIED = ("model", "inputs", "baseline", "layer", *_SET_BY_RUN)


class MethodError(ValueError):
    """A method's settings cannot work with this model (said before any work, in one line)."""


def last_convolution(model: Any) -> str | None:
    """The name of the model's last ``Conv1d/2d/3d`` (as in ``named_modules()``), or None."""
    if not isinstance(model, nn.Module):
        return None
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    names = [n for n, m in model.named_modules() if isinstance(m, convs)]
    return names[-1] if names else None


def _json_ok(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(params), sort_keys=True)))
    except TypeError as err:
        raise ValueError(f"settings of {name} must be JSON values (numbers, strings, lists) to be "
                         f"recorded in the store: {err}") from err


def normalise_methods(methods: Sequence[MethodArg], steps: int | None = None
                      ) -> list[dict[str, Any]]:
    """``["ig", ("saliency", {...}), {"name": ..., "params": ...}]`` -> manifest entries with
    registered names; ``steps`` goes to every method that takes it and has no own setting.

    Raises
    ------
    ValueError
        One line: an unknown option, an option the run sets, a layer that is not a name, a
        required option missing, a method given twice.
    """
    from attribkit.methods import get

    out: list[dict[str, Any]] = []
    for m in methods:
        if isinstance(m, str):
            name, params = m, {}
        elif isinstance(m, tuple):
            name, params = m[0], dict(m[1])
        else:
            name, params = str(m["name"]), dict(m.get("params", {}))
        info = get(name)
        accepted = inspect.signature(info.fn).parameters
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(f"{info.name} has no option {unknown[0]!r}; its options: "
                             f"{', '.join(p for p in accepted if p not in ('model', 'inputs'))}")
        for fixed in _SET_BY_RUN:
            if fixed in params:
                raise ValueError(f"{fixed!r} is set by the run, not per method")
        if isinstance(params.get("layer"), int) and not isinstance(params["layer"], bool):
            params["layer"] = str(params["layer"])  # `layer=3`: a Sequential's child "3"
        if "layer" in params and not isinstance(params["layer"], str):
            raise ValueError(f"{info.name}: layer is the name of a sub-module (as in "
                             "model.named_modules()), e.g. layer=features.3")
        missing = [p for p, prm in accepted.items() if prm.default is inspect.Parameter.empty
                   and prm.kind != prm.VAR_KEYWORD and prm.kind != prm.VAR_POSITIONAL
                   and p not in _SUPPLIED and p not in params]
        if missing:
            raise ValueError(f"{info.name} needs {missing[0]}, which a run cannot choose; give "
                             f"it as a setting ({info.name}:{missing[0]}=...) or call "
                             f"attribkit.{info.name} from Python")
        if steps is not None and "steps" in accepted and "steps" not in params:
            params["steps"] = steps
        if any(e["name"] == info.name for e in out):
            raise ValueError(f"{info.name} is given twice")
        out.append({"name": info.name, "params": _json_ok(params, info.name)})
    if not out:
        raise ValueError("give at least one method")
    return out


def method_layers(built: Built, entries: Sequence[Mapping[str, Any]]
                  ) -> dict[str, nn.Module | None]:
    """The layer each method works at (None: the model's own, or none); checked before work.

    Raises
    ------
    ValueError
        One line: a method that cannot work at the model's layer (text models), a layer name
        the model does not have, a method that needs a layer on a model without convolutions.
    """
    from attribkit.methods import get

    out: dict[str, nn.Module | None] = {}
    for e in entries:
        name, params = str(e["name"]), e.get("params", {})
        accepted = inspect.signature(get(name).fn).parameters
        if built.layer is not None:  # the model says where to attribute (text: the embeddings)
            if "layer" not in accepted:
                raise MethodError(f"{name} cannot attribute at a layer; {built.kind} models need "
                                 "a method with a layer option (integrated_gradients, saliency, "
                                 "...)")
            if "layer" in params:
                raise MethodError(f"{name}: this {built.kind} model sets its own layer; leave "
                                 "out layer=")
            out[name] = None
            continue
        if "layer" not in accepted:
            out[name] = None
            continue
        wanted = params.get("layer")
        required = accepted["layer"].default is inspect.Parameter.empty
        if wanted is None and not required:
            out[name] = None
            continue
        last = last_convolution(built.model)
        if wanted is None:
            if last is None:
                raise MethodError(f"{name} needs a layer and the model has no convolution; name "
                                 f"one: -m {name}:layer=NAME")
            wanted = last
        if not isinstance(built.model, nn.Module):
            raise MethodError(f"{name}: layer= needs a model that is an nn.Module")
        try:
            out[name] = built.model.get_submodule(str(wanted))
        except AttributeError as err:
            hint = f" (its last convolution is {last!r})" if last else ""
            raise MethodError(f"{name}: the model has no layer {wanted!r}{hint}; names are those "
                             "of model.named_modules()") from err
    return out
