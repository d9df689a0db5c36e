"""Saving and loading :class:`Attribution` results without pickle (safetensors + JSON).

The file is an ordinary `safetensors <https://github.com/huggingface/safetensors>`_ file: the
tensors are stored by name, and one metadata entry ``"attribkit"`` holds a JSON document with
every other field. Loading parses a length-prefixed JSON header and copies raw bytes; nothing in
the file is ever executed. The format is described in ``docs/saving.md``.

:meth:`Attribution.save <attribkit.core.attribution.Attribution.save>` reaches :func:`save`
through :mod:`attribkit.core.writers`, where this module registers it on import.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core import writers
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError

__all__ = ["FORMAT", "VERSION", "finite", "load", "save"]

#: The value of ``"format"`` in the JSON metadata.
FORMAT = "attribkit.Attribution"
#: The format version this attribkit writes (and the newest it reads).
VERSION = 1
_META_KEY = "attribkit"
_TENSOR_FIELDS = ("values", "inputs", "baselines", "target", "output", "baseline_output",
                  "error_estimate")
_MAX_HEADER = 100 * 2**20  # safetensors' own limit


class _Encoder:
    """Turns Python values into JSON, moving tensors and arrays into a separate table."""

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}

    def _store(self, t: Tensor, prefix: str) -> str:
        key = f"{prefix}/{len(self.tensors)}"
        self.tensors[key] = t.detach().cpu().contiguous().clone()
        return key

    def encode(self, v: Any, prefix: str, where: str) -> Any:
        if v is None or isinstance(v, bool | int | str):
            return v
        if isinstance(v, float | np.floating):
            f = float(v)
            return f if math.isfinite(f) else {"$float": repr(f)}
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, Tensor):
            return {"$tensor": self._store(v, prefix)}
        if isinstance(v, np.ndarray):
            return {"$ndarray": self._store(torch.from_numpy(np.ascontiguousarray(v)), prefix)}
        if isinstance(v, torch.dtype):
            return {"$dtype": str(v).removeprefix("torch.")}
        if isinstance(v, tuple):
            return {"$tuple": [self.encode(x, prefix, where) for x in v]}
        if isinstance(v, list):
            return [self.encode(x, prefix, where) for x in v]
        if isinstance(v, dict):
            return {"$dict": [[self.encode(k, prefix, where), self.encode(x, prefix, where)]
                              for k, x in v.items()]}
        warnings.warn(f"{where}: a {type(v).__name__} cannot be saved; it is stored as its repr "
                      "text and loads back as a string.", UserWarning, stacklevel=4)
        return {"$repr": repr(v)}


def finite(x: Any) -> float | None:
    """A finite float for JSON, or None (for None, NaN, infinities and what is not a number)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _decode(v: Any, tensors: dict[str, Tensor]) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list):
        return [_decode(x, tensors) for x in v]
    if not isinstance(v, dict) or len(v) != 1:
        raise InputError(f"attribkit file: unexpected value {str(v)[:60]!r} in the metadata; "
                         "the file is damaged or was not written by attribkit.")
    (tag, body), = v.items()
    if tag in ("$tensor", "$ndarray"):
        if not isinstance(body, str) or body not in tensors:
            raise InputError(f"attribkit file: the metadata names a tensor {body!r} that the "
                             "file does not hold; the file is damaged.")
        return tensors[body] if tag == "$tensor" else tensors[body].numpy()
    if tag == "$float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$dtype" and isinstance(body, str) and isinstance(getattr(torch, body, None),
                                                                 torch.dtype):
        return getattr(torch, body)
    if tag == "$tuple" and isinstance(body, list):
        return tuple(_decode(x, tensors) for x in body)
    if tag == "$dict" and isinstance(body, list):
        return {_decode(k, tensors): _decode(x, tensors) for k, x in body}
    if tag == "$repr" and isinstance(body, str):
        return body
    raise InputError(f"attribkit file: unknown entry {tag!r} in the metadata; the file is "
                     "damaged or was written by a newer attribkit.")


def save(attribution: Attribution, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``attribution`` to ``path`` as safetensors + JSON metadata (no pickle).

    Parameters
    ----------
    attribution
        The result to save (every field: tensors bit for bit, ``params`` and ``extras``).
    path
        The file to write (by convention ``*.safetensors``); folders are created.

    Returns
    -------
    pathlib.Path
        The path written.

    Warns
    -----
    UserWarning
        When a ``params`` or ``extras`` entry is neither a tensor, an array, a number, a string,
        ``None`` nor a list / tuple / dict of those (a module, a function): it is saved as its
        repr text.
    """
    from safetensors.torch import save_file

    if not isinstance(attribution, Attribution):
        raise InputError(f"save() takes an Attribution, got {type(attribution).__name__}.")
    enc = _Encoder()
    present = []
    for name in _TENSOR_FIELDS:
        t = getattr(attribution, name)
        if t is not None:
            enc.tensors[name] = t.detach().cpu().contiguous().clone()
            present.append(name)
    doc = {"format": FORMAT, "version": VERSION, "method": attribution.method,
           "target_label": attribution.target_label, "tensors": present,
           "params": enc.encode(dict(attribution.params), "params", "params"),
           "extras": enc.encode(dict(attribution.extras), "extras", "extras")}
    p = pathlib.Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".partial")
    save_file(enc.tensors, str(tmp), metadata={_META_KEY: json.dumps(doc, allow_nan=False)})
    os.replace(tmp, p)
    return p


writers.register(Attribution, save)  # Attribution.save writes through this module


def _header(p: pathlib.Path) -> None:
    """Check the safetensors framing before handing the file over, for a clear error."""
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(9)
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if n < 2 or n > min(_MAX_HEADER, size - 8) or head[8:9] != b"{":
        raise InputError(f"{p} is not an attribkit result file (not a safetensors file); "
                         "attribkit.load reads files written by Attribution.save.")


def load(path: str | os.PathLike[str]) -> Attribution:
    """Read an :class:`Attribution` written by :meth:`Attribution.save`; nothing is executed.

    Parameters
    ----------
    path
        The ``.safetensors`` file.

    Returns
    -------
    Attribution
        The saved result, every tensor on the CPU, bit for bit as saved.

    Raises
    ------
    InputError
        When the file is not a safetensors file, holds no attribkit metadata, was written by
        a newer format version, or is damaged or crafted (metadata that does not decode,
        tensors of a dtype attribkit never writes or of shapes that do not fit together).
    """
    from safetensors import safe_open

    p = pathlib.Path(path)
    if not p.is_file():
        raise InputError(f"no such file: {p}.")
    _header(p)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except Exception as err:
        raise InputError(f"{p} is not a readable safetensors file ({err}).") from err
    raw = meta.get(_META_KEY)
    if raw is None:
        raise InputError(f"{p} is a safetensors file but not an attribkit result (no "
                         f"'{_META_KEY}' metadata); attribkit.load reads files written by "
                         "Attribution.save.")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputError(f"{p}: the attribkit metadata is not valid JSON ({err}).") from err
    except RecursionError as err:
        raise InputError(f"{p}: the attribkit metadata is nested too deeply; the file is "
                         "damaged or crafted.") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{p} is not an attribkit Attribution file (format "
                         f"{doc.get('format') if isinstance(doc, dict) else None!r}).")
    version = doc.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise InputError(f"{p} has attribkit format version {version!r}; this attribkit reads "
                         f"versions 1 to {VERSION}: upgrade attribkit.")
    present = doc.get("tensors", [])
    if not isinstance(present, list) or not {"values", "inputs"} <= set(present) \
            or not set(present) <= set(_TENSOR_FIELDS) or not set(present) <= set(tensors):
        raise InputError(f"{p}: the attribkit metadata lists tensors {present!r} that do not "
                         "match the file; it is damaged.")
    fields = {name: tensors[name] for name in present}
    _check_fields(p, fields)
    try:
        params, extras = _decode(doc.get("params"), tensors), _decode(doc.get("extras"), tensors)
    except (RecursionError, TypeError, ValueError) as err:  # InputError passes through
        if isinstance(err, InputError):
            raise
        raise InputError(f"{p}: the attribkit metadata does not decode ({type(err).__name__}: "
                         f"{str(err)[:80]}); the file is damaged or crafted.") from err
    if not isinstance(params, dict) or not isinstance(extras, dict):
        raise InputError(f"{p}: params and extras must be mappings; the file is damaged.")
    method, label = doc.get("method"), doc.get("target_label")
    if not isinstance(method, str) or not isinstance(label, str):
        raise InputError(f"{p}: method and target_label must be strings; the file is damaged.")
    return Attribution(method=method, target_label=label, params=params, extras=extras,
                       **fields)


#: The dtypes attribkit writes for the attribution space and for the values.
_SPACE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32,
                 torch.int64)
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_fields(p: pathlib.Path, fields: dict[str, Tensor]) -> None:
    """Refuse, in one line, tensors whose dtypes or shapes attribkit never writes together."""
    for name, t in fields.items():
        allowed = (_SPACE_DTYPES if name in ("inputs", "baselines")
                   else (torch.int64, torch.int32) if name == "target" else _FLOAT_DTYPES)
        if t.dtype not in allowed:
            raise InputError(f"{p}: {name} has dtype {t.dtype}, which attribkit never writes "
                             "there; the file is damaged or crafted.")
        if t.dim() == 0:
            raise InputError(f"{p}: {name} has no example axis; the file is damaged.")
    values, inputs = fields["values"], fields["inputs"]
    n = int(inputs.shape[0])
    rows = {name: int(t.shape[0]) for name, t in fields.items() if int(t.shape[0]) != n}
    base = fields.get("baselines")
    tail_v, tail_x = values.shape[values.dim() - inputs.dim() + 1:], inputs.shape[1:]
    if rows or (base is not None and base.shape != inputs.shape) or values.dim() not in (
            inputs.dim(), inputs.dim() + 1) or any(a not in (b, 1) for a, b in zip(
                tail_v, tail_x, strict=True)):
        raise InputError(f"{p}: the shapes do not fit together (values {tuple(values.shape)}, "
                         f"inputs {tuple(inputs.shape)}"
                         + (f", baselines {tuple(base.shape)}" if base is not None else "")
                         + (f", {rows}" if rows else "") + "); the file is damaged or crafted.")
