"""The run store (format version 1, see ``docs/runs.md``): a manifest and Parquet shards.

Writing is atomic (a temporary name in the same folder, then :func:`os.replace`) and never
rewrites a shard; :func:`missing_pairs` tells a restarted run what is left to do.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import pathlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["FORMAT", "VERSION", "ConfigMismatch", "manifest_for", "missing_pairs",
           "prepare_store", "read_done", "write_items", "write_results"]

FORMAT = "attribkit-run"
VERSION = 1
CONFIG_KEYS = ("model", "kind", "methods", "target", "inputs")


class ConfigMismatch(ValueError):
    """A run with another configuration was pointed at an existing store."""


def _tmp(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}.tmp")


def write_atomic(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = _tmp(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_table(table: pa.Table, path: pathlib.Path) -> bool:
    """Write a shard atomically; ``False`` (and nothing written) when it exists already."""
    if path.exists():
        return False
    tmp = _tmp(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return True


def _span(rows: Sequence[Mapping[str, Any]]) -> str:
    items = [int(r["item"]) for r in rows]
    return f"{min(items):08d}-{max(items):08d}"


# --------------------------------------------------------------------------- manifest


def manifest_for(*, model: str, kind: str, methods: Sequence[Mapping[str, Any]], target: Any,
                 source: str, count: int, sha256: str) -> dict[str, Any]:
    """A version-1 manifest for a run's configuration."""
    import torch

    from attribkit import __version__

    return {"format": FORMAT, "version": VERSION, "model": model, "kind": kind,
            "methods": [{"name": m["name"], "params": dict(m["params"])} for m in methods],
            "target": target,
            "inputs": {"source": source, "count": count, "sha256": sha256},
            "attribkit": __version__, "torch": torch.__version__,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for key in CONFIG_KEYS:
        a, b = old.get(key), new.get(key)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            if key == "inputs":
                return (f"the inputs differ ({a.get('count') if isinstance(a, dict) else a} "
                        f"items from {a.get('source') if isinstance(a, dict) else a!r} there, "
                        f"{b.get('count')} from {b.get('source')!r} now)"
                        if isinstance(b, dict) else "the inputs differ")
            return f"its {key} is {json.dumps(a)}, this run's is {json.dumps(b)}"
    return None


def prepare_store(path: str | os.PathLike[str], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Create the store folder and its manifest, or check an existing one against ``manifest``.

    Returns the manifest in force. Leftover temporary files of a killed run are removed.

    Raises
    ------
    ConfigMismatch
        When the folder holds a store of another configuration (one line: what differs), or
        something that is not a store.
    """
    root = pathlib.Path(path)
    mpath = root / "manifest.json"
    if root.exists() and not root.is_dir():
        raise ConfigMismatch(f"{str(root)!r} is a file, not a run store; choose another --out")
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text())
        except json.JSONDecodeError as err:
            raise ConfigMismatch(f"{str(mpath)!r} is not valid JSON ({err}); choose another "
                                 "--out") from err
        if old.get("format") != FORMAT:
            raise ConfigMismatch(f"{str(root)!r} is not an attribkit run store")
        if old.get("version") != VERSION:
            raise ConfigMismatch(f"{str(root)!r} is a version {old.get('version')} store; this "
                                 f"attribkit writes version {VERSION}")
        why = _difference(old, manifest)
        if why is not None:
            raise ConfigMismatch(f"{str(root)!r} holds a run with another configuration: {why}; "
                                 "use another --out or delete the folder")
        manifest = old
    elif root.exists() and any(p.name != ".gitkeep" for p in root.iterdir()):
        raise ConfigMismatch(f"{str(root)!r} exists and is not a run store (no manifest.json); "
                             "choose an empty or new folder")
    for sub in ("items", "results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for tmp in (root / sub).glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    if not mpath.exists():
        write_atomic(mpath, json.dumps(manifest, indent=2).encode())
    return dict(manifest)


# --------------------------------------------------------------------------- what is done


def read_done(path: str | os.PathLike[str]) -> tuple[set[int], set[tuple[int, str]]]:
    """The items in ``items/`` and the ``(item, method)`` pairs in ``results/``."""
    root = pathlib.Path(path)
    items: set[int] = set()
    for f in sorted((root / "items").glob("part-*.parquet")):
        items.update(int(i) for i in pq.read_table(f, columns=["item"]).column("item").to_pylist())
    pairs: set[tuple[int, str]] = set()
    for f in sorted((root / "results").glob("part-*.parquet")):
        t = pq.read_table(f, columns=["item", "method"])
        pairs.update(zip(t.column("item").to_pylist(), t.column("method").to_pylist(),
                         strict=True))
    return items, pairs


def missing_pairs(path: str | os.PathLike[str], n_items: int,
                  methods: Sequence[str]) -> tuple[dict[int, list[str]], set[int]]:
    """What a (re)started run must do: ``{item: [methods]}`` and the items already in items/."""
    have_items, pairs = read_done(path)
    todo: dict[int, list[str]] = {}
    for i in range(n_items):
        need = [m for m in methods if (i, m) not in pairs]
        if need:
            todo[i] = need
    return todo, have_items


# --------------------------------------------------------------------------- shards

_ITEM_SCHEMA = pa.schema([
    ("item", pa.int64()), ("item_id", pa.string()), ("source", pa.string()),
    ("kind", pa.string()), ("text", pa.string()), ("tokens", pa.list_(pa.string())),
    ("feature_names", pa.list_(pa.string())), ("thumbnail", pa.binary()),
    ("input", pa.list_(pa.float32())), ("input_shape", pa.list_(pa.int32())),
    ("status", pa.string()), ("error", pa.string()),
])

_RESULT_FIELDS = [
    ("item", pa.int64()), ("item_id", pa.string()), ("method", pa.string()),
    ("params", pa.string()), ("target", pa.int64()), ("target_name", pa.string()),
    ("output", pa.float64()), ("baseline_output", pa.float64()), ("gap", pa.float64()),
    ("relative_gap", pa.float64()), ("error_estimate", pa.float64()),
    ("steps_used", pa.int64()), ("seconds", pa.float64()), ("status", pa.string()),
    ("error", pa.string()),
]


def write_items(root: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> bool:
    """Write one ``items/`` shard (rows as in docs/runs.md; ``input`` a numpy array or None)."""
    if not rows:
        return False
    cols: dict[str, list[Any]] = {f.name: [] for f in _ITEM_SCHEMA}
    for r in rows:
        for name in cols:
            if name == "input_shape":
                continue
            v = r.get(name)
            if name == "input":
                arr = None if v is None else np.asarray(v, dtype=np.float32)
                cols["input"].append(None if arr is None else arr.reshape(-1))
                cols["input_shape"].append(None if arr is None else list(arr.shape))
            else:
                cols[name].append(v)
    table = pa.table(cols, schema=_ITEM_SCHEMA)
    return _write_table(table, pathlib.Path(root) / "items" / f"part-{_span(rows)}.parquet")


def _values_columns(values: list[np.ndarray[Any, Any] | None]) -> dict[str, pa.Array]:
    shapes = {v.shape for v in values if v is not None}
    n = len(values)
    if len(shapes) == 1:
        (shape,) = shapes
        size = int(np.prod(shape))
        flat = np.zeros((n, size), dtype=np.float32)
        mask = np.zeros(n, dtype=bool)
        for i, v in enumerate(values):
            if v is None:
                mask[i] = True
            else:
                flat[i] = np.asarray(v, dtype=np.float32).reshape(-1)
        storage = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), size,
                                                    mask=pa.array(mask))
        tensor_type = pa.fixed_shape_tensor(pa.float32(), list(shape))
        return {"values": pa.ExtensionArray.from_storage(tensor_type, storage)}
    return {"values": pa.array([None if v is None else np.asarray(v, np.float32).reshape(-1)
                                for v in values], type=pa.list_(pa.float32())),
            "values_shape": pa.array([None if v is None else list(v.shape) for v in values],
                                     type=pa.list_(pa.int32()))}


def write_results(root: str | os.PathLike[str], method: str,
                  rows: Sequence[Mapping[str, Any]]) -> bool:
    """Write one ``results/`` shard for ``method`` (rows with ``values`` as numpy or None)."""
    if not rows:
        return False
    arrays: dict[str, pa.Array] = {
        name: pa.array([r.get(name) for r in rows], type=typ) for name, typ in _RESULT_FIELDS}
    arrays.update(_values_columns([r.get("values") for r in rows]))
    arrays["extra"] = pa.array([r.get("extra") for r in rows], type=pa.string())
    table = pa.table(arrays)
    name = f"part-{method}-{_span(rows)}.parquet"
    return _write_table(table, pathlib.Path(root) / "results" / name)
