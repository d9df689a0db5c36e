"""Method settings from the command line: named flags, ``--set key=value``, per-model defaults.

:func:`plan` turns the flags into each method's keyword options, checked against the method's
signature, or into a one-line refusal, before any method runs.
"""

from __future__ import annotations

import argparse
import inspect
import json
import pathlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.cli._common import UsageError
from attribkit.cli.inputs import Item
from attribkit.cli.models import Loaded
from attribkit.core.cost import photo_grid, photo_window
from attribkit.runs.checks import last_convolution

__all__ = ["FLAGS", "Plan", "layer_of", "parse_set", "parse_value", "plan"]

#: Named flags and the method parameter each sets.
FLAGS = {"steps": "steps", "rule": "rule", "tolerance": "tolerance", "baseline": "baseline",
         "window": "window", "stride": "stride", "samples": "n_samples", "layer": "layer",
         "seed": "seed", "segments": "feature_mask"}
#: Parameters the CLI itself fills in; ``--set`` may not give them.
_MANAGED = {"model", "inputs", "target", "progress", "forward_args", "background", "groups",
            "references", "reference"}


@dataclass
class Plan:
    """What the CLI will call for one method: its options, or why it will not run."""

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None


def parse_value(text: str) -> Any:
    """``--set`` values: int, float, bool (``true``/``false``), JSON (lists, ``null``), or str."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text.strip()[:1] in ("[", "{") or low == "null":
        try:
            value = json.loads(text)
        except ValueError as err:
            raise UsageError(f"--set value {text!r} is not valid JSON ({err})") from err
        return tuple(value) if isinstance(value, list) else value
    return text


def parse_set(pairs: Sequence[str]) -> dict[str, Any]:
    """``["steps=8", "rule=riemann_middle"]`` -> ``{"steps": 8, "rule": "riemann_middle"}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key.strip()):
            raise UsageError(f"--set takes key=value (e.g. --set noise_level=0.2), got {pair!r}")
        out[key.strip()] = parse_value(value)
    return out


def _size(text: str, flag: str) -> int | tuple[int, ...]:
    parts = re.split(r"[x,]", text.strip())
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError as err:
        raise UsageError(f"--{flag} takes N or HxW (e.g. 16 or 16x16), got {text!r}") from err
    if any(s < 1 for s in sizes):
        raise UsageError(f"--{flag} sizes must be positive, got {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes


def layer_of(model: Any, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``)."""
    if not isinstance(model, nn.Module):
        raise UsageError("--layer needs a model that is an nn.Module (a zoo model or "
                         "module:callable), not a TorchScript or .pt2 file")
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        convs = last_convolution(model)
        hint = f" (its last convolution is {convs!r})" if convs else ""
        raise UsageError(f"the model has no layer {name!r}{hint}; names are those of "
                         "model.named_modules()") from err


def _baseline(text: str, loaded: Loaded) -> Any:
    try:
        return float(text)
    except ValueError:
        pass
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() in (".npy", ".pt"):
        from attribkit.cli.inputs import read_tensor_input

        return read_tensor_input(p)
    if loaded.kind == "image" and text == "black":
        from attribkit.zoo import vision

        return vision.BLACK_BASELINE  # black in this model's normalisation, -127/128
    return text


def takes(info: Any, params: Any) -> set[str]:
    """The options a method really takes: ``baseline`` only where it uses one (methods
    without a baseline refuse any, and those with ``background=`` treat it as an alias)."""
    names = set(params)
    if not info.needs_baseline or "background" in names:
        names.discard("baseline")
    return names


def segments_of(spec: object, item: Item) -> Tensor:
    """A feature mask from ``--segments`` / ``--set feature_mask=``: ``slic[:N]`` (about N
    superpixels, default 50), ``felzenszwalb[:SCALE]`` (default 100), ``grid:N`` (N x N cells
    on images, N elements on other inputs), or a ``.npy`` / ``.pt`` file of integer ids."""
    from attribkit import masks

    text = str(spec).strip()
    x = item.x
    if x is None:
        raise UsageError("--segments needs a tensor input (an image, a table row, ...)")
    kind, _, arg = text.partition(":")
    try:
        if kind in ("slic", "felzenszwalb"):
            if x.dim() != 4:
                raise UsageError(f"--segments {kind} works on images; use grid:N here")
            if kind == "slic":
                return masks.superpixels(x, "slic", n_segments=int(arg or 50))
            return masks.superpixels(x, "felzenszwalb", scale=float(arg or 100))
        if kind == "grid":
            return masks.grid(tuple(x.shape[1:]), int(arg))
        path = pathlib.Path(text).expanduser()
        if path.suffix.lower() in (".npy", ".pt"):
            from attribkit.cli.inputs import read_tensor_input

            return masks.check(read_tensor_input(path), tuple(x.shape))
    except (ValueError, FileNotFoundError) as err:  # InputError is a ValueError
        raise UsageError(f"--segments {text!r}: {err}") from err
    raise UsageError(f"--segments takes slic[:N], felzenszwalb[:SCALE], grid:N or a .npy/.pt "
                     f"file of integer ids, got {text!r}")


def _defaults(loaded: Loaded, item: Item, params: Any, user: dict[str, Any]) -> dict[str, Any]:
    """Cheap, sensible options for the input kind, where the user gave none."""
    x = item.x
    opts: dict[str, Any] = {}
    if loaded.kind == "image" and x is not None:
        from attribkit.zoo import vision

        black = vision.black_baseline(x)
        if "baseline" in params:
            opts["baseline"] = black
        for name in ("background", "reference", "references"):
            if name in params:
                opts[name] = black
        if "window" in params and "feature_mask" not in user:
            opts["window"], opts["stride"] = (16, 16), (8, 8)
    elif loaded.kind == "tabular":
        data = loaded.extra["data"]
        if "background" in params:
            opts["background"] = data.X_train[:64]
    elif loaded.kind == "tensor" and x is not None and "table_rows" in item.extra:
        # a CSV's rows: the data set's mean is the baseline, its rows the background (the
        # all-zero row in raw units is no reference at all)
        table = item.extra["table_rows"].to(x.dtype)
        if "baseline" in params:
            opts["baseline"] = table.mean(0, keepdim=True)
        for name in ("background", "reference", "references"):
            if name in params:
                opts[name] = table[:64]
    elif x is not None and x.dim() == 4 and "window" in params and "feature_mask" not in user:
        opts["window"], opts["stride"] = photo_window(x)  # the API's default on photos too
    if "feature_mask" in user:
        pass  # the user's segments are the players
    elif "groups" in params and x is not None and loaded.kind == "molecule":
        from attribkit.zoo import chem

        opts["groups"] = chem.player_groups(len(item.extra["atoms"]))  # atoms and atom pairs
        if "n_samples" in params:
            opts["n_samples"] = 32
    elif "groups" in params and x is not None and x.dim() == 4:
        opts["groups"] = photo_grid(x)  # 16 square patches, the API's default on photos
        if "mode" in params:
            opts["mode"] = "sampling"
        if "n_samples" in params:
            opts["n_samples"] = 16
    for name in ("background", "reference", "references"):
        if name in params and name not in opts and x is not None:
            opts[name] = torch.zeros_like(x)  # the zero reference, as for the baseline
    if "n_samples" in params and "n_samples" not in opts:
        default = params["n_samples"].default
        if isinstance(default, int) and default > 64 and loaded.kind == "image":
            opts["n_samples"] = 16  # the registry defaults are for small models
    if "window" in user and "stride" not in user and "stride" in opts:
        del opts["stride"]  # the method's default stride (the window) goes with the user's window
    return opts


def plan(method: str, loaded: Loaded, item: Item, args: argparse.Namespace,
         extra: dict[str, Any]) -> Plan:
    """The options for ``method`` on ``item``, or a refusal, before any work.

    Parameters
    ----------
    method : str
        A registered method name.
    loaded : Loaded
        The model.
    item : Item
        The input.
    args : argparse.Namespace
        The parsed flags (``steps``, ``window``, ...).
    extra : dict
        ``--set`` options.

    Returns
    -------
    Plan
        Options ready for :func:`attribkit.explain`, or ``refused`` with a one-line reason.
    """
    from attribkit.methods import get

    info = get(method)
    sig = inspect.signature(info.fn).parameters
    params = {k: v for k, v in sig.items() if k in takes(info, sig)}
    p = Plan(info.name)
    if info.needs_module and not isinstance(loaded.model, nn.Module):
        p.refused = (f"{info.name} needs an nn.Module (it hooks layers); {loaded.name} is a "
                     "model file called as a plain function; give module:callable instead")
        return p
    rank = item.x.dim() - 1 if item.x is not None else 1  # texts, molecules: flat features
    if rank < info.example_rank:
        shape = "(C, H, W) images" if info.example_rank >= 3 else "(C, L) sequences or images"
        p.refused = f"{info.name} works on {shape}; a {loaded.kind} input is not one"
        return p
    user: dict[str, Any] = {}
    for flag, key in FLAGS.items():
        value = getattr(args, flag, None)
        if value is None or key not in params:
            continue
        if flag in ("window", "stride"):
            value = _size(value, flag)
        elif flag == "baseline":
            value = _baseline(value, loaded)
        elif flag == "layer":
            value = layer_of(loaded.model, value)
        elif flag == "segments":
            value = segments_of(value, item)
        user[key] = value
    for key, value in extra.items():
        if key in params:
            user[key] = segments_of(value, item) if key == "feature_mask" else value
    if loaded.kind == "text":
        if "layer" not in params or info.family == "propagation":
            p.refused = (f"{info.name} cannot attribute at the word-embedding layer (it has no "
                         "layer= option, or, for a propagation rule, its layer= still needs "
                         "float inputs); on texts use a gradient or path method")
            return p
        if "noise_level" in params:
            p.refused = (f"{info.name} adds noise to the inputs, which are token ids here; "
                         "use integrated_gradients or saliency on texts")
            return p
        user.pop("layer", None)
    else:
        user = {**_defaults(loaded, item, params, user), **user}
        layer = params.get("layer")
        if layer is not None and layer.default is inspect.Parameter.empty and "layer" not in user:
            net = loaded.model
            name = last_convolution(net) if isinstance(net, nn.Module) else None
            if name is None or not isinstance(net, nn.Module):
                p.refused = (f"{info.name} needs a layer and the model has no convolution; "
                             "name one with --layer NAME")
                return p
            user["layer"] = net.get_submodule(name)
    missing = [n for n, prm in params.items() if prm.kind == prm.KEYWORD_ONLY
               and prm.default is inspect.Parameter.empty and n not in user]
    if "neuron" in missing:
        p.refused = (f"{info.name} needs neuron=attribkit.neuron(layer, index), which the CLI "
                     "cannot build; call it from Python")
        return p
    if missing:
        p.refused = (f"{info.name} needs {', '.join(missing)}, which the CLI cannot choose for "
                     f"this model; give it with --set {missing[0]}=...")
        return p
    p.options = user
    return p


def check_flags(methods: Sequence[str], args: argparse.Namespace, extra: dict[str, Any]) -> None:
    """Refuse a flag or ``--set`` key that none of the chosen methods takes (a usage error)."""
    from attribkit.methods import get

    params = {m: takes(get(m), inspect.signature(get(m).fn).parameters) for m in methods}
    taken = set().union(*params.values())
    for flag, key in FLAGS.items():
        if getattr(args, flag, None) is not None and key not in taken:
            raise UsageError(f"--{flag}: none of the methods ({', '.join(methods)}) takes "
                             f"{key!r}")
    for key in extra:
        if key in _MANAGED:
            raise UsageError(f"--set {key}=...: the CLI sets {key!r} itself"
                             + (" (use --target)" if key == "target" else ""))
        if key not in taken:
            first = methods[0]
            known = sorted(params[first] - _MANAGED)
            raise UsageError(f"--set {key}=...: no chosen method takes {key!r}; {first} takes "
                             f"{', '.join(known)}")


def as_tensor_or_none(x: Tensor | None) -> Tensor:
    """``x``, which the caller knows is set."""
    if x is None:  # pragma: no cover - the callers check the input kind first
        raise RuntimeError("this input has no tensor")
    return x
