"""Turning a model spec (zoo name, model file, module:callable) into a model to explain."""

from __future__ import annotations

import importlib
import pathlib
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.cli._common import UsageError

__all__ = ["ZOO_MODELS", "Loaded", "load_model", "model_dtype"]

ZOO_MODELS = {
    "efficientnet-lite0": "image (EfficientNet-Lite0, ImageNet; softmax of the top class)",
    "minilm-sentiment": "text (MiniLM sentiment classifier; target 1 positive, 0 negative)",
    "breast-cancer-mlp": "tabular CSV row of 30 raw measurements (sklearn breast cancer)",
}


@dataclass
class Loaded:
    """A model ready to explain and how to read its inputs."""

    model: Callable[..., Tensor]
    kind: str  # "image", "text", "tabular", "tensor"
    name: str
    baseline: Any = None
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


def load_model(spec: str) -> Loaded:
    key = spec.lower()
    if key in ("efficientnet-lite0", "efficientnet_lite0", "efficientnet"):
        from attribkit.zoo import vision

        return Loaded(vision.SoftmaxModel(vision.load_efficientnet_lite0()), "image", spec,
                       baseline="zoo-black", label=vision.class_name)
    if key in ("minilm-sentiment", "minilm", "sentiment"):
        from attribkit.zoo import text

        model = text.load_sentiment_classifier()
        return Loaded(model, "text", spec, label=lambda c: ("negative", "positive")[c])
    if key in ("breast-cancer-mlp", "breast-cancer", "tabular"):
        from attribkit.zoo import tabular

        tab_model, data = tabular.load_breast_cancer_mlp()
        return Loaded(tab_model, "tabular", spec, label=lambda c: data.class_names[c],
                       extra={"data": data})
    path = pathlib.Path(spec).expanduser()
    if path.suffix in (".pt", ".pt2", ".pth", ".ptl") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {spec!r}")
        try:
            if path.suffix == ".pt2":
                m: Any = torch.export.load(str(path)).module()
            else:
                with warnings.catch_warnings():  # torch marks TorchScript deprecated
                    warnings.simplefilter("ignore", DeprecationWarning)
                    m = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as err:
            raise RuntimeError(f"cannot load model {spec!r} ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}); give a "
                               "TorchScript .pt, a torch.export .pt2 or module:callable") from err
        if path.suffix == ".pt2":
            return Loaded(_ExportedCall(m), "tensor", spec)
        if isinstance(m, nn.Module):
            m.eval()
        if isinstance(m, torch.jit.ScriptModule):
            m = _ScriptCall(m)  # hooks (used by attribkit's model guard) fail on ScriptModules
        return Loaded(m, "tensor", spec)
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        mod_name, fn_name = spec.split(":")
        try:
            mod = importlib.import_module(mod_name)
            factory = getattr(mod, fn_name)
        except (ImportError, AttributeError) as err:
            raise RuntimeError(f"cannot import {spec!r}: {err}") from err
        m = factory()
        if not callable(m):
            raise RuntimeError(f"{spec!r} returned {type(m).__name__}, not a model")
        if isinstance(m, nn.Module):
            m.eval()
        return Loaded(m, "tensor", spec)
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
