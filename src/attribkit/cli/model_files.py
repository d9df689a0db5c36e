"""What ``attribkit explain`` will load from a model file, checked before anything is loaded.

A ``torch.export`` archive (``.pt2``) is a zip of JSON (the program, the payload configs), raw
tensor bytes and a few pickles: ``torch.export.load`` unpickles a weight or constant marked
``use_pickle``, custom and opaque objects, and falls back to an unrestricted ``torch.load`` for
sample inputs that the restricted loader refuses. Any of these runs code from the file. So
:func:`check_pt2` reads the zip itself and refuses, with a one-line reason, an archive that

* holds an entry outside the layout ``torch.export.save`` writes (AOTInductor or ExecuTorch
  payloads, legacy pickled weight files, anything else);
* marks a weight or constant ``use_pickle`` or stores a custom or opaque object;
* has sample inputs that ``torch.load(weights_only=True)`` (which builds tensors and containers
  only) does not read;
* calls a function outside ``torch.ops.aten`` / ``prims`` / ``higher_order``, ``_operator``,
  ``math`` and torch's symbolic-shape helpers (the deserialiser resolves a node's target by
  attribute lookup from ``torch``, so ``torch.os.system`` would resolve and run).

``--trust-model-file`` skips the check for a file the user trusts. TorchScript ``.pt`` files
need no such check: ``torch.jit.load`` reads its pickles with TorchScript's own unpickler, which
resolves only TorchScript types and refuses any other global (tested with a ``data.pkl`` whose
reduce calls ``os.system``), and the program runs TorchScript ops only.
"""

from __future__ import annotations

import io
import json
import pathlib
import re
import zipfile
from collections.abc import Iterator
from typing import Any

__all__ = ["UnsafeModelFile", "check_pt2"]

_TRUST_HINT = "pass --trust-model-file to load it anyway if you trust where it came from"

# entries relative to the archive's root folder
_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version",
          ".data/serialization_id", "version", ".data/.format_version"}
_ALLOWED = [re.compile(p) for p in (
    r"models/[\w.-]+\.json",
    r"data/weights/[\w.-]+_weights_config\.json",
    r"data/weights/weight_\d+",
    r"data/constants/[\w.-]+_constants_config\.json",
    r"data/constants/tensor_\d+",
    r"data/sample_inputs/[\w.-]+\.pt",
    r"extra/[\w./-]+",
)]
_SAFE_TARGET = re.compile(r"(torch\.ops\.(aten|prims|higher_order)\.[\w.]+|_operator\.\w+|"
                          r"math\.\w+|torch\.(sym_\w+|_sym_\w+))")


class UnsafeModelFile(RuntimeError):
    """A model file that loading could make run code; the message is one line."""


def _refuse(path: pathlib.Path, why: str) -> UnsafeModelFile:
    return UnsafeModelFile(f"refusing to load {path.name!r}: {why}; {_TRUST_HINT}")


def _targets(node: Any) -> Iterator[str]:
    """Every operator name (a node's ``target``) in a serialized program's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "target" and isinstance(value, str):
                yield value
            else:
                yield from _targets(value)
    elif isinstance(node, list):
        for item in node:
            yield from _targets(item)


def _check_payload_config(path: pathlib.Path, name: str, blob: bytes) -> None:
    try:
        config = json.loads(blob).get("config", {})
    except (ValueError, AttributeError) as err:
        raise _refuse(path, f"{name} is not valid JSON") from err
    for fqn, meta in config.items():
        if not isinstance(meta, dict):
            raise _refuse(path, f"{name} has a malformed entry {fqn!r}")
        if meta.get("use_pickle"):
            raise _refuse(path, f"{fqn!r} is stored as a pickle (use_pickle), which loading "
                                "would unpickle")
        kind = str(meta.get("path_name", ""))
        if not kind.startswith(("weight_", "tensor_")):
            raise _refuse(path, f"{fqn!r} is an opaque or custom object ({kind!r}), which "
                                "loading would unpickle")


def _check_sample_inputs(path: pathlib.Path, name: str, blob: bytes) -> None:
    import torch

    if not blob:
        return
    try:
        torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as err:
        raise _refuse(path, f"its sample inputs ({name}) hold objects beyond tensors, which "
                            "torch.export.load would unpickle") from err


def check_pt2(path: pathlib.Path) -> None:
    """Raise :class:`UnsafeModelFile` unless ``path`` loads without running code from it.

    Parameters
    ----------
    path : pathlib.Path
        A ``torch.export`` archive (``.pt2``).

    Raises
    ------
    UnsafeModelFile
        With a one-line reason when the archive holds pickled or opaque entries, unknown
        entries, or calls outside torch's operator namespaces.
    """
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UnsafeModelFile(f"cannot load model {path.name!r}: not a torch.export archive "
                              f"(a .pt2 is a zip file; {err})") from err
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/", 1)
            rel = parts[1] if len(parts) == 2 else parts[0]
            if rel not in _FIXED and not any(p.fullmatch(rel) for p in _ALLOWED):
                raise _refuse(path, f"unexpected entry {info.filename!r} (only programs, raw "
                                    "tensors and their JSON configs are loaded without trust)")
            if rel.endswith(("_weights_config.json", "_constants_config.json")):
                _check_payload_config(path, info.filename, zf.read(info))
            elif rel.startswith("data/sample_inputs/"):
                _check_sample_inputs(path, info.filename, zf.read(info))
            elif rel.startswith("models/"):
                try:
                    program = json.loads(zf.read(info))
                except ValueError as err:
                    raise _refuse(path, f"{info.filename} is not valid JSON") from err
                for target in _targets(program):
                    if not _SAFE_TARGET.fullmatch(target):
                        raise _refuse(path, f"its program calls {target[:80]!r}, outside "
                                            "torch's operator namespaces")
