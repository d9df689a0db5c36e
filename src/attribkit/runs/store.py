"""The run store (format version 2, see ``docs/runs.md``): a manifest and Parquet shards.

Writing is atomic (a temporary name in the same folder, then :func:`os.replace`). A shard's name
holds the run's token, so a later run never collides with an earlier shard; the manifest keeps
each shard's content hash (see :mod:`attribkit.runs.ledger`). Shards are found only inside the
store: a symbolic link that leads out of it is never followed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import pathlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["FORMAT", "READS", "VERSION", "ConfigMismatch", "ShardName", "manifest_for",
           "new_token", "parse_shard", "prepare_store", "shard_files", "write_atomic",
           "write_items", "write_results"]

FORMAT = "attribkit-run"
VERSION = 2
#: Versions this attribkit opens (a version-1 store is upgraded when a run resumes it).
READS = (1, 2)
CONFIG_KEYS = ("model", "kind", "methods", "target", "inputs", "interactions", "max_new_tokens")
_SHARD = re.compile(r"part-(?:(?P<method>.+)-)?(?P<first>\d{8})-(?P<last>\d{8})"
                    r"(?:-(?P<token>r[0-9a-f]{10}))?\.parquet")


class ConfigMismatch(ValueError):
    """A run with another configuration was pointed at an existing store."""


class ShardName:
    """What a shard's name says: the method (results only), the item span and the run token."""

    def __init__(self, method: str | None, first: int, last: int, token: str | None) -> None:
        self.method, self.first, self.last, self.token = method, first, last, token


def parse_shard(name: str, results: bool) -> ShardName | None:
    """``part-[<method>-]<first>-<last>[-<token>].parquet``, or None for another name."""
    m = _SHARD.fullmatch(name)
    if m is None or (m["method"] is None) == results:
        return None
    return ShardName(m["method"], int(m["first"]), int(m["last"]), m["token"])


def new_token() -> str:
    """A run's token: ``r`` and 10 hex digits, part of every shard name it writes."""
    return "r" + uuid.uuid4().hex[:10]


def inside(root: pathlib.Path, path: pathlib.Path) -> bool:
    """Whether ``path``, links resolved, lies in ``root`` (links that leave it are not read)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def shard_files(root: str | os.PathLike[str], sub: str) -> list[pathlib.Path]:
    """The finished shards of ``items/`` or ``results/``: no temporary files, nothing outside."""
    base = pathlib.Path(root)
    folder = base / sub
    if not folder.is_dir() or not inside(base, folder):
        return []
    return sorted(p for p in folder.glob("part-*.parquet") if inside(base, p) and p.is_file())


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


def file_record(path: pathlib.Path, rows: int) -> dict[str, Any]:
    """What the manifest keeps of a shard: its SHA-256, rows, size and modification time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    st = path.stat()
    return {"sha256": digest.hexdigest(), "rows": rows, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns}


def write_shard(table: pa.Table, path: pathlib.Path) -> dict[str, Any] | None:
    """Write a shard atomically and return its record (``file`` relative to the store);
    None (and nothing written) when it exists already (a retried batch of this run)."""
    if path.exists():
        return None
    tmp = _tmp(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return {"file": f"{path.parent.name}/{path.name}", **file_record(path, table.num_rows)}


def _span(rows: Sequence[Mapping[str, Any]], token: str) -> str:
    items = [int(r["item"]) for r in rows]
    return f"{min(items):08d}-{max(items):08d}-{token}"


# --------------------------------------------------------------------------- manifest


def manifest_for(*, model: str, kind: str, methods: Sequence[Mapping[str, Any]], target: Any,
                 source: str, count: int, sha256: str,
                 interactions: Mapping[str, Any] | None = None,
                 max_new_tokens: int | None = None) -> dict[str, Any]:
    """A manifest for a run's configuration (``shards`` is filled as the run writes); the key
    ``interactions`` only when the run stores interactions, ``max_new_tokens`` only for a
    generation run (the tokens of each answer)."""
    import torch

    from attribkit import __version__

    out = {"format": FORMAT, "version": VERSION, "model": model, "kind": kind,
           "methods": [{"name": m["name"], "params": dict(m["params"])} for m in methods],
           "target": target,
           "inputs": {"source": source, "count": count, "sha256": sha256},
           "attribkit": __version__, "torch": torch.__version__,
           "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "shards": {}}
    if interactions is not None:
        out["interactions"] = dict(interactions)
    if max_new_tokens is not None:
        out["max_new_tokens"] = int(max_new_tokens)
    return out


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for key in CONFIG_KEYS:
        a, b = old.get(key), new.get(key)
        if json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            if key == "inputs":
                return (f"the inputs differ ({a.get('count') if isinstance(a, dict) else a} "
                        f"items from {a.get('source') if isinstance(a, dict) else a!r} there, "
                        f"{b.get('count')} from {b.get('source')!r} now)"
                        if isinstance(b, dict) else "the inputs differ")
            if key == "max_new_tokens" and a is None and old.get("kind") == "generation":
                return (f"it was written before runs recorded max_new_tokens (its answers have "
                        f"the model's default length), this run's is {json.dumps(b)}")
            return f"its {key} is {json.dumps(a)}, this run's is {json.dumps(b)}"
    return None


def _ours(name: str) -> bool:
    return name in (".gitkeep", "writer.lock") or name.startswith(".tmp-")


def check_folder(path: str | os.PathLike[str]) -> None:
    """Refuse, before anything is written, an ``--out`` that is a file or a folder of other
    things (:class:`ConfigMismatch`, one line)."""
    root = pathlib.Path(path)
    if root.exists() and not root.is_dir():
        raise ConfigMismatch(f"{str(root)!r} is a file, not a run store; choose another --out")
    if root.is_dir() and not (root / "manifest.json").exists() and \
            any(not _ours(p.name) for p in root.iterdir()):
        raise ConfigMismatch(f"{str(root)!r} exists and is not a run store (no manifest.json); "
                             "choose an empty or new folder")


def read_manifest(root: pathlib.Path) -> dict[str, Any] | None:
    """The manifest of the store at ``root`` (None when there is none), checked."""
    mpath = root / "manifest.json"
    if not mpath.exists():
        return None
    try:
        old = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigMismatch(f"{str(mpath)!r} is not valid JSON ({err}); choose another "
                             "--out") from err
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise ConfigMismatch(f"{str(root)!r} is not an attribkit run store")
    if old.get("version") not in READS:
        raise ConfigMismatch(f"{str(root)!r} is a version {old.get('version')} store; this "
                             f"attribkit writes version {VERSION}")
    return old


def save_manifest(root: str | os.PathLike[str], manifest: Mapping[str, Any]) -> None:
    """Write the manifest atomically (only the lock holder does)."""
    write_atomic(pathlib.Path(root) / "manifest.json", json.dumps(manifest, indent=2).encode())


def prepare_store(path: str | os.PathLike[str], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Create the store's manifest, or check an existing one against ``manifest``; call it
    holding the store's lock (:class:`attribkit.runs.lock.WriterLock`).

    Returns the manifest in force. Leftover temporary files of a killed run are removed. A
    version-1 store is upgraded to version 2 (its shards are recorded by the next check).

    Raises
    ------
    ConfigMismatch
        When the folder holds a store of another configuration (one line: what differs), or
        something that is not a store.
    """
    root = pathlib.Path(path)
    check_folder(root)
    old = read_manifest(root)
    if old is not None:
        why = _difference(old, manifest)
        if why is not None:
            raise ConfigMismatch(f"{str(root)!r} holds a run with another configuration: {why}; "
                                 "use another --out or delete the folder")
        manifest = old
    for sub in ("items", "results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for tmp in (root / sub).glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    for tmp in root.glob(".tmp-*"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    out = dict(manifest)
    if old is None or old.get("version") != VERSION:
        out["version"] = VERSION
        save_manifest(root, out)
    return out


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


def write_items(root: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], token: str
                ) -> dict[str, Any] | None:
    """Write one ``items/`` shard (rows as in docs/runs.md; ``input`` a numpy array or None);
    its record for the manifest, or None when nothing was written."""
    if not rows:
        return None
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
    if any("interactions" in r for r in rows):  # optional: JSON text of the top coalitions
        table = table.append_column(pa.field("interactions", pa.string()), pa.array(
            [r.get("interactions") for r in rows], type=pa.string()))
    return write_shard(table, pathlib.Path(root) / "items" / f"part-{_span(rows, token)}.parquet")


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
                  rows: Sequence[Mapping[str, Any]], token: str) -> dict[str, Any] | None:
    """Write one ``results/`` shard for ``method`` (rows with ``values`` as numpy or None);
    its record for the manifest, or None when nothing was written."""
    if not rows:
        return None
    arrays: dict[str, pa.Array] = {
        name: pa.array([r.get(name) for r in rows], type=typ) for name, typ in _RESULT_FIELDS}
    arrays.update(_values_columns([r.get("values") for r in rows]))
    arrays["extra"] = pa.array([r.get("extra") for r in rows], type=pa.string())
    table = pa.table(arrays)
    name = f"part-{method}-{_span(rows, token)}.parquet"
    return write_shard(table, pathlib.Path(root) / "results" / name)
