"""Model specs: a zoo name or ``module:callable`` turned into a model plus how to read its inputs.

A spec is a plain string, so it can travel to a worker process (a Ray actor) and the model can
be *built there* rather than pickled. :func:`build` returns a :class:`Built`: the model, the kind
of input it reads, and ``prepare``, which turns one raw input (an image path, a sentence, a CSV
row, a tensor) into the model's input, its baseline and what is needed to show it.

``module:callable`` names a function taking no arguments. It returns either a model (a callable
on a float batch; images are read as RGB in ``[0, 1]``, CSV rows and tensors as given) or a
:class:`Built`, which sets everything (the kind, ``prepare``, class names, a layer).
"""

from __future__ import annotations

import importlib
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError

__all__ = ["ZOO", "Built", "Prepared", "build", "check", "generation", "image_thumbnail",
           "model_dtype", "plain", "read_rgb", "zoo_name"]

ZOO = {
    "efficientnet-lite0": "image (EfficientNet-Lite0, ImageNet; softmax of the top class)",
    "minilm-sentiment": "text (MiniLM sentiment classifier; 1 positive, 0 negative)",
    "breast-cancer-mlp": "tabular: a CSV row of 30 raw measurements (sklearn breast cancer)",
    "smollm2": "prompts, one per line (SmolLM2-135M-Instruct, extra llm; each generated token "
               "attributed to the prompt's tokens)",
}
_ALIASES = {"efficientnet_lite0": "efficientnet-lite0", "efficientnet": "efficientnet-lite0",
            "minilm": "minilm-sentiment", "sentiment": "minilm-sentiment",
            "breast-cancer": "breast-cancer-mlp", "tabular": "breast-cancer-mlp",
            "smollm2-135m": "smollm2", "smollm2-135m-instruct": "smollm2"}
_CALLABLE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Prepared:
    """One raw input made ready for the model (every tensor has a batch axis of 1)."""

    x: Tensor
    baseline: Tensor | None = None
    forward_args: tuple[Tensor, ...] = ()
    text: str | None = None
    tokens: list[str] | None = None
    feature_names: list[str] | None = None
    thumbnail: bytes | None = None


@dataclass
class Built:
    """A model and how to read its inputs.

    Attributes
    ----------
    model
        A callable from a batch to ``(N,)`` or ``(N, C)`` outputs.
    kind
        ``"image"``, ``"text"``, ``"tabular"``, ``"smiles"`` or ``"tensor"``.
    prepare
        One raw input (path, sentence, SMILES, CSV row as floats, tensor) -> :class:`Prepared`.
    label
        Class index -> readable name, or ``None``.
    layer
        Attribute at this sub-module (the word embeddings for text), or ``None``.
    reduce
        Per-item attribution values -> what is stored (text: the sum over the embedding axis).
    explain_item
        For generation models (kind ``"generation"``): ``(method, settings, prepared)`` -> a
        :class:`attribkit.sequences.GenerationAttribution` of one prompt; the run stores its
        (generated x prompt) matrix instead of calling a registered method on ``model``.
    """

    model: Callable[..., Tensor]
    kind: str
    prepare: Callable[[Any], Prepared]
    label: Callable[[int], str] | None = None
    layer: nn.Module | None = None
    reduce: Callable[[Tensor], Tensor] | None = None
    explain_item: Callable[[str, Mapping[str, Any], Prepared], Any] | None = None


def model_dtype(model: Any) -> torch.dtype:
    """The floating dtype of a model's parameters (float32 when it has none)."""
    if isinstance(model, nn.Module):
        for prm in model.parameters():
            if prm.is_floating_point():
                return prm.dtype
    return torch.float32


def image_thumbnail(rgb: np.ndarray[Any, Any], size: int = 256) -> bytes:
    """A PNG of an ``HxWx3`` uint8 image, at most ``size`` pixels on its longer side."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def read_rgb(path: str) -> np.ndarray[Any, Any]:
    """An image file as ``HxWx3`` uint8; a one-line :class:`InputError` when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read {path!r} as an image ({err})") from err


def _efficientnet() -> Built:
    from attribkit.zoo import vision

    def prepare(raw: Any) -> Prepared:
        x = vision.preprocess(read_rgb(str(raw))) if isinstance(raw, str) else _as_batch(raw)
        return Prepared(x, vision.black_baseline(x),
                        thumbnail=image_thumbnail(vision.deprocess(x)))

    return Built(vision.SoftmaxModel(vision.load_efficientnet_lite0()), "image", prepare,
                 label=vision.class_name)


def _minilm() -> Built:
    from attribkit.zoo import text

    model = text.load_sentiment_classifier()

    def prepare(raw: Any) -> Prepared:
        if not isinstance(raw, str):
            raise InputError(f"minilm-sentiment reads sentences, got {type(raw).__name__}")
        ids, mask = text.encode([raw])
        return Prepared(ids, text.baseline_ids(ids, "pad"), (mask,), text=raw,
                        tokens=text.tokens_of(ids[0]))

    return Built(model, "text", prepare, label=lambda c: ("negative", "positive")[c],
                 layer=model.word_embeddings_module, reduce=lambda v: v.sum(dim=-1))


def _breast_cancer() -> Built:
    from attribkit.zoo import tabular

    model, data = tabular.load_breast_cancer_mlp()
    names = list(data.feature_names)

    def prepare(raw: Any) -> Prepared:
        row = np.asarray(raw, dtype=np.float64).reshape(1, -1)
        if row.shape[1] != len(names):
            raise InputError(f"breast-cancer-mlp takes rows of {len(names)} numbers, got "
                             f"{row.shape[1]}")
        x = data.standardise(row).to(model_dtype(model))
        return Prepared(x, torch.zeros_like(x), feature_names=names,
                        text=",".join(f"{v:g}" for v in row[0]))

    return Built(model, "tabular", prepare, label=lambda c: data.class_names[c])


def generation(model: Any, tokenizer: Any, name: str = "this model") -> Built:
    """A :class:`Built` (kind ``"generation"``) for a Hugging Face language model: each raw
    input is a prompt, explained by :func:`attribkit.sequences.explain_generation` with the
    method's settings, on the answer the model generates (greedy).

    Parameters
    ----------
    model
        A causal LM or encoder-decoder (``transformers``), in eval mode.
    tokenizer
        Its tokenizer.
    name
        The model's name in the one-line errors.

    Returns
    -------
    Built
        ``explain_item`` returns a :class:`attribkit.sequences.GenerationAttribution`.
    """
    import inspect

    from attribkit.sequences import explain_generation

    accepted = set(inspect.signature(explain_generation).parameters) - {
        "model", "tokenizer", "prompt", "target", "progress"}

    def prepare(raw: Any) -> Prepared:
        if not isinstance(raw, str) or not raw.strip():
            raise InputError(f"{name} reads prompts: one non-empty line of text per item")
        ids = tokenizer(raw, return_tensors="pt")["input_ids"]
        return Prepared(ids, text=raw, tokens=tokenizer.convert_ids_to_tokens(ids[0].tolist()))

    def explain_item(method: str, settings: Mapping[str, Any], p: Prepared) -> Any:
        unknown = sorted(set(settings) - accepted)
        if unknown:
            raise InputError(f"explain_generation has no option {unknown[0]!r}; its options: "
                             f"{', '.join(sorted(accepted))}")
        return explain_generation(model, tokenizer, str(p.text), method=method, **dict(settings))

    return Built(model, "generation", prepare, explain_item=explain_item)


def _smollm2() -> Built:
    from attribkit.zoo import llm

    model, tok = llm.load_smollm2(progress=False)
    return generation(model, tok, "smollm2")


def _as_batch(raw: Any, dtype: torch.dtype = torch.float32) -> Tensor:
    t = torch.as_tensor(np.asarray(raw) if not isinstance(raw, Tensor) else raw)
    if t.is_floating_point() or t.dtype in (torch.uint8, torch.int32, torch.int64):
        t = t.to(dtype) if t.is_floating_point() else t
    return t.detach().unsqueeze(0).contiguous()


def plain(model: Callable[..., Tensor]) -> Built:
    """A :class:`Built` for a plain model: images read as RGB in ``[0, 1]``, CSV rows and
    tensors as given (in the model's dtype)."""
    dtype = model_dtype(model)

    def prepare(raw: Any) -> Prepared:
        if isinstance(raw, str) and raw.lower().endswith(_IMAGE_EXT):
            rgb = read_rgb(raw)
            x = torch.from_numpy(rgb).permute(2, 0, 1).to(dtype).div(255.0).unsqueeze(0)
            return Prepared(x.contiguous(), thumbnail=image_thumbnail(rgb))
        if isinstance(raw, str):
            raise InputError("a module:callable model that returns a plain model reads images, "
                             "CSV rows and tensors; for text or SMILES return an "
                             "attribkit.zoo.specs.Built with a prepare function")
        if isinstance(raw, Sequence) and not isinstance(raw, Tensor):
            x = torch.tensor([list(map(float, raw))], dtype=dtype)
            return Prepared(x, text=",".join(f"{float(v):g}" for v in raw))
        return Prepared(_as_batch(raw, dtype))

    return Built(model, "tensor", prepare)


def zoo_name(spec: str) -> str | None:
    """The zoo name ``spec`` stands for (aliases and case resolved), or None for another spec."""
    key = _ALIASES.get(spec.lower(), spec.lower())
    return key if key in ZOO else None


def check(spec: str) -> None:
    """Check, without building anything, that ``spec`` can name a model here.

    Raises
    ------
    ValueError
        When ``spec`` is neither a zoo name nor ``module:callable`` of an importable module.
    """
    if _ALIASES.get(spec.lower(), spec.lower()) in ZOO:
        return
    if not _CALLABLE.fullmatch(spec):
        raise ValueError(f"unknown model {spec!r}: use a zoo name ({', '.join(ZOO)}) or "
                         "module:callable")
    import importlib.util

    mod_name = spec.split(":")[0]
    try:
        found = importlib.util.find_spec(mod_name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(f"cannot import {spec!r}: no module named {mod_name!r} (is it on "
                         "PYTHONPATH?)")


def build(spec: str) -> Built:
    """Build the model named by ``spec`` (a zoo name or ``module:callable``) in this process.

    Raises
    ------
    ValueError
        When ``spec`` is neither a zoo name nor ``module:callable``, or the callable fails.
    """
    key = _ALIASES.get(spec.lower(), spec.lower())
    if key == "efficientnet-lite0":
        return _efficientnet()
    if key == "minilm-sentiment":
        return _minilm()
    if key == "breast-cancer-mlp":
        return _breast_cancer()
    if key == "smollm2":
        return _smollm2()
    if not _CALLABLE.fullmatch(spec):
        raise ValueError(f"unknown model {spec!r}: use a zoo name ({', '.join(ZOO)}) or "
                         "module:callable")
    mod_name, fn_name = spec.split(":")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import {spec!r}: {err}") from err
    made = factory()
    if isinstance(made, Built):
        return made
    if not callable(made):
        raise ValueError(f"{spec!r} returned {type(made).__name__}, not a model")
    if isinstance(made, nn.Module):
        made.eval()
    return plain(made)
