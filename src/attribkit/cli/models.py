"""Turning a model spec (zoo name, model file, module:callable) into a model to explain."""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.cli._common import UsageError, one_line
from attribkit.cli.model_files import check_pt2
from attribkit.core.blackbox import BlackBox, black_box, is_black_box

__all__ = ["ZOO_MODELS", "Loaded", "load_model", "model_dtype"]

ZOO_MODELS = {
    "efficientnet-lite0": "image files or a folder of them (EfficientNet-Lite0, ImageNet; "
                          "softmax of the predicted class)",
    "minilm-sentiment": "texts (MiniLM sentiment classifier; 0 negative, 1 positive)",
    "breast-cancer-mlp": "CSV rows of 30 raw measurements, or a .csv file (every row)",
    "tpsa-graphnet": "SMILES strings (graph network trained on RDKit's TPSA; per-atom scores)",
}
_ALIASES = {"efficientnet_lite0": "efficientnet-lite0", "efficientnet": "efficientnet-lite0",
            "minilm": "minilm-sentiment", "sentiment": "minilm-sentiment",
            "breast-cancer": "breast-cancer-mlp", "tabular": "breast-cancer-mlp",
            "tpsa": "tpsa-graphnet", "chem": "tpsa-graphnet", "molecule": "tpsa-graphnet"}


@dataclass
class Loaded:
    """A model ready to explain and how to read its inputs."""

    model: Callable[..., Tensor]
    kind: str  # "image", "text", "tabular", "molecule", "tensor"
    name: str
    baseline: Any = None  # kept for callers that pass it; the CLI's defaults are in settings.py
    label: Callable[[int], str] = str
    extra: dict[str, Any] = field(default_factory=dict)


class _ScriptCall:
    """A TorchScript module as a plain callable (TorchScript modules take no Python hooks)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, *args: Any) -> Tensor:
        out: Tensor = self.module(*args)
        return out


class _ExportedCall:
    """A ``torch.export`` program as a callable; row by row if its batch size is fixed."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, x: Tensor, *args: Tensor) -> Tensor:
        try:
            out: Tensor = self.module(x, *args)
            return out
        except Exception:
            if x.shape[0] <= 1:
                raise
        rows = [self.module(x[i:i + 1], *(a[i:i + 1] for a in args)) for i in range(x.shape[0])]
        return torch.cat(rows)


#: Zoo models already loaded in this process (the CLI loads one; tests call main() many times).
_ZOO: dict[str, Loaded] = {}


def _zoo(key: str, progress: bool, say: Callable[[str], None]) -> Loaded:
    if key in _ZOO:
        return _ZOO[key]
    if key == "efficientnet-lite0":
        from attribkit.zoo import vision

        loaded = Loaded(vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval(), "image",
                        key, label=vision.class_name)
    elif key == "minilm-sentiment":
        from attribkit.zoo import text
        from attribkit.zoo._cache import cache_dir

        if not text.sentiment_head_cached():
            say("training the sentiment head once: embedding 4,000 labelled tweets with MiniLM "
                "(a few minutes on a CPU); it is cached in "
                f"{cache_dir('text')} so later runs start in seconds")
        model = text.load_sentiment_classifier(progress=progress)
        loaded = Loaded(model, "text", key, label=lambda c: ("negative", "positive")[c])
    elif key == "breast-cancer-mlp":
        from attribkit.zoo import tabular

        tab_model, data = tabular.load_breast_cancer_mlp()
        loaded = Loaded(tab_model, "tabular", key, label=lambda c: data.class_names[c],
                        extra={"data": data})
    else:  # tpsa-graphnet
        from attribkit.zoo import chem
        from attribkit.zoo._cache import cache_dir

        say(f"loading the TPSA graph network (trained once, about a minute, then cached in "
            f"{cache_dir()})")
        loaded = Loaded(chem.load_property_model("tpsa"), "molecule", key, label=lambda c: "TPSA")
    _ZOO[key] = loaded
    return loaded


def _load_file(path: pathlib.Path, spec: str, trust: bool) -> Loaded:
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {spec!r}")
    if path.suffix == ".pt2" and not trust:
        check_pt2(path)  # before torch.export.load can unpickle anything
    try:
        if path.suffix == ".pt2":
            m: Any = torch.export.load(str(path)).module()
        else:
            with warnings.catch_warnings():  # torch marks TorchScript deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                m = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as err:
        raise RuntimeError(f"cannot load model {spec!r} ({type(err).__name__}: "
                           f"{one_line(err)}); give a TorchScript .pt, a torch.export .pt2 or "
                           "module:callable") from err
    if path.suffix == ".pt2":
        return Loaded(_ExportedCall(m), "tensor", spec)
    if isinstance(m, nn.Module):
        m.eval()
    if isinstance(m, torch.jit.ScriptModule):
        m = _ScriptCall(m)  # hooks (used by attribkit's model guard) fail on ScriptModules
    return Loaded(m, "tensor", spec)


def _load_callable(spec: str) -> Loaded:
    mod_name, fn_name = spec.split(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # `attribkit explain my_models:build` finds ./my_models.py
    try:
        mod = importlib.import_module(mod_name)
        factory = getattr(mod, fn_name)
    except (ImportError, AttributeError) as err:
        raise RuntimeError(f"cannot import {spec!r}: {one_line(err)} (the module is looked "
                           "up in the current folder and on PYTHONPATH)") from err
    try:
        m = factory()
    except Exception as err:
        raise RuntimeError(f"the model factory {spec!r} raised {type(err).__name__}: "
                           f"{one_line(err)}") from err
    if not callable(m):
        raise RuntimeError(f"{spec!r} returned {type(m).__name__}, not a model")
    if isinstance(m, nn.Module):
        m.eval()
    if is_black_box(m) and not isinstance(m, BlackBox):  # clf.predict_proba: arrays in and out
        return Loaded(black_box(m), "tensor", spec, extra={"black_box": True})
    return Loaded(m, "tensor", spec)


def load_model(spec: str, *, trust_file: bool = False, progress: bool = False,
               say: Callable[[str], None] = lambda _m: None) -> Loaded:
    """Load the model ``spec`` names.

    Parameters
    ----------
    spec : str
        A zoo name (or alias), a TorchScript ``.pt`` / ``torch.export`` ``.pt2`` file, or
        ``module:callable`` (imported and called: it runs the user's code by design).
    trust_file : bool
        Load a ``.pt2`` archive without checking it for pickled or opaque entries.
    progress : bool
        Show progress bars while a zoo model is trained once.
    say : callable
        Where to write one-line notes for the user (why the start waits).

    Returns
    -------
    Loaded
        The model, the kind of inputs it reads and how to name its classes.
    """
    key = _ALIASES.get(spec.lower(), spec.lower())
    if key in ZOO_MODELS:
        return _zoo(key, progress, say)
    path = pathlib.Path(spec).expanduser()
    if path.suffix in (".pt", ".pt2", ".pth", ".ptl") or path.exists():
        return _load_file(path, spec, trust_file)
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        return _load_callable(spec)
    raise UsageError(f"unknown model {spec!r}: use a zoo name ({', '.join(ZOO_MODELS)}), a "
                     "TorchScript .pt / torch.export .pt2 file, or module:callable")


def model_dtype(model: Any) -> torch.dtype:
    """The floating dtype of a model's parameters (float32 when it has none)."""
    inner = model.module if isinstance(model, _ScriptCall | _ExportedCall) else model
    if isinstance(inner, nn.Module):
        for prm in inner.parameters():
            if prm.is_floating_point():
                return prm.dtype
    return torch.float32
