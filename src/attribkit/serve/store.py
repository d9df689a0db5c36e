"""Reading a run store (format versions 1 and 2, see ``docs/runs.md``) for the explorer.

The explorer only reads what this module lists at start-up (and after a live explanation): the
manifest, ``items/part-*.parquet``, ``results/part-*.parquet`` and ``summary.json`` inside the
store's folder (a link that leads out of the store is not followed; a shard that cannot be read,
or whose columns are not a shard's, is listed by name in ``problems`` and left out). No route
ever turns user text into a path, so nothing else can be read.
Values are read one Parquet row group at a time, so an item page never loads the whole store.
"""

from __future__ import annotations

import json
import pathlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from attribkit.runs.ledger import read_keys
from attribkit.runs.reader import current_rows
from attribkit.runs.store import shard_files

__all__ = ["FORMAT", "VERSION", "RunStore", "StoreError"]

FORMAT = "attribkit-run"
VERSION = 2
#: Item columns too heavy for the listing; read one row at a time.
HEAVY_ITEM = ("thumbnail", "input", "input_shape")
#: Result columns that hold the attribution itself.
HEAVY_RESULT = ("values", "values_shape", "extra")

Array = np.ndarray[Any, Any]


class StoreError(Exception):
    """The folder is not a run store this version of attribkit can read."""


def _mtime(folder: pathlib.Path) -> int:
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return -1


def _shard_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """Finished shards only: temporary files (dot-names, ``.tmp``) are never read, nor links
    that lead out of the store."""
    return shard_files(folder.parent, folder.name)


def read_manifest(root: pathlib.Path) -> dict[str, Any]:
    """The manifest of the store at ``root``, checked; :class:`StoreError` with a fix otherwise."""
    if not root.is_dir():
        raise StoreError(f"no run store at {str(root)!r}: the folder does not exist; write one "
                         f"with `attribkit run MODEL INPUTS --out {root}`.")
    mpath = root / "manifest.json"
    if not mpath.is_file():
        raise StoreError(f"{str(root)!r} is not a run store (no manifest.json); give the folder "
                         "that `attribkit run --out` wrote.")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"cannot read {str(mpath)!r} ({err}); the store is damaged.") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        raise StoreError(f"{str(mpath)!r} is not an attribkit run manifest (format {fmt!r}).")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        raise StoreError(f"{str(mpath)!r} has no valid format version ({version!r}).")
    if version > VERSION:
        raise StoreError(f"the store {str(root)!r} is format version {version}, newer than this "
                         f"attribkit reads (version {VERSION}); upgrade attribkit "
                         "(pip install -U attribkit).")
    return manifest


def _light(path: pathlib.Path, heavy: tuple[str, ...]) -> pd.DataFrame:
    read_keys(path, results="thumbnail" not in heavy)  # ShardError: what is wrong with it
    schema = pq.read_schema(path)
    cols = [n for n in schema.names if n not in heavy]
    df = pq.read_table(path, columns=cols).to_pandas()
    df["_file"] = str(path)
    df["_row"] = np.arange(len(df), dtype=np.int64)
    if "thumbnail" in heavy:
        df["has_thumbnail"] = "thumbnail" in schema.names
    return df


class RunStore:
    """A run store opened for reading (thread-safe; reload after a shard is added).

    Parameters
    ----------
    root : str or pathlib.Path
        The store's folder (``runs/NAME``).
    """

    def __init__(self, root: str | pathlib.Path) -> None:
        self.root = pathlib.Path(root).resolve()
        self.manifest = read_manifest(self.root)
        self.problems: list[str] = []
        self._lock = threading.RLock()
        self._seen: set[str] = set()
        self._items: list[pd.DataFrame] = []
        self._results: list[pd.DataFrame] = []
        self._cache: OrderedDict[tuple[str, int, str], pa.Table] = OrderedDict()
        self._arrays: OrderedDict[tuple[str, int], Array] = OrderedDict()
        self._files: dict[str, tuple[pq.ParquetFile, list[int]]] = {}
        self._by_item: dict[int, list[dict[str, Any]]] = {}
        self._item_recs: dict[int, dict[str, Any]] = {}
        self._ok: dict[tuple[int, str], list[tuple[int | None, str, int]]] = {}
        self._stamp: tuple[int, int] = (-1, -1)
        self.items = pd.DataFrame()
        self.results = pd.DataFrame()
        self.version = 0  # bumps on every reload that found something new
        self.reload()

    # ------------------------------------------------------------------ listing
    def reload(self) -> bool:
        """Read shards that appeared since the last call; True when something was new.

        Cheap when nothing changed: the two folders' modification times are compared first
        (adding or renaming a shard changes them).
        """
        with self._lock:
            stamp = (_mtime(self.root / "items"), _mtime(self.root / "results"))
            if stamp == self._stamp and self.version:
                return False
            self._stamp = stamp
            new = False
            for sub, heavy, bucket in (("items", HEAVY_ITEM, self._items),
                                       ("results", HEAVY_RESULT, self._results)):
                for path in _shard_files(self.root / sub):
                    key = str(path)
                    if key in self._seen:
                        continue
                    self._seen.add(key)
                    try:
                        bucket.append(_light(path, heavy))
                        new = True
                    except (OSError, pa.ArrowException, ValueError) as err:
                        why = str(err).splitlines()[0][:160] if str(err) else ""
                        self.problems.append(f"{sub}/{path.name} could not be read "
                                             f"({type(err).__name__}: {why}); it is left out.")
            if new or self.version == 0:
                items = _concat(self._items, _ITEM_DEFAULTS)  # an ok row beats a failed one
                self.items = items.assign(_ok=items["status"] == "ok").sort_values(
                    ["item", "_ok"], kind="stable").drop_duplicates("item", keep="last").drop(
                    columns="_ok")
                self.items = self.items.set_index("item", drop=False)
                self.results = current_rows(_concat(self._results, _RESULT_DEFAULTS))
                # plain dicts per item: a page reads one item without pandas indexing
                self._by_item = {}
                for rec in _records(self.results):
                    self._by_item.setdefault(int(rec["item"]), []).append(rec)
                self._item_recs = {int(r["item"]): r for r in _records(self.items)}
                self._ok = _ok_index(self.results)
                self.version += 1
            return new

    @property
    def kind(self) -> str:
        """The store's input kind (image, text, tabular, smiles, tensor)."""
        return str(self.manifest.get("kind") or "tensor")

    def summary(self) -> dict[str, Any] | None:
        """``summary.json`` when the run wrote one (and it parses), else None."""
        path = self.root / "summary.json"
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            self.problems.append("summary.json could not be read; it is left out.")
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ heavy columns
    def _cell(self, file: str, row: int, column: str) -> Any:
        """One cell of a heavy column, reading (and caching) only its row group."""
        with self._lock:
            if file not in self._files:
                opened = pq.ParquetFile(file)
                meta = opened.metadata
                starts = np.cumsum([0] + [meta.row_group(g).num_rows
                                          for g in range(meta.num_row_groups)]).tolist()
                self._files[file] = (opened, starts)
            pf, starts = self._files[file]
            rg = int(np.searchsorted(starts, row, side="right")) - 1
            if not 0 <= rg < len(starts) - 1:
                raise KeyError(f"row {row} is not in {file}")
            start = starts[rg]
            key = (file, rg, column)
            table = self._cache.get(key)
            if table is None:
                if column not in pf.schema_arrow.names:
                    return None
                table = pf.read_row_group(rg, columns=[column])
                self._cache[key] = table
                while len(self._cache) > 24:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return table.column(0).slice(row - start, 1)

    def thumbnail(self, item: int) -> bytes | None:
        """The item's PNG thumbnail bytes, or None."""
        rec = self._item_row(item)
        if not bool(rec.get("has_thumbnail", False)):
            return None
        cell = self._cell(rec["_file"], int(rec["_row"]), "thumbnail")
        value = None if cell is None else cell.to_pylist()[0]
        return bytes(value) if value else None

    def model_input(self, item: int) -> Array | None:
        """The model's input for the item, shaped by ``input_shape`` (float32), or None."""
        rec = self._item_row(item)
        flat = self._cell(rec["_file"], int(rec["_row"]), "input")
        shape = self._cell(rec["_file"], int(rec["_row"]), "input_shape")
        if flat is None or flat.to_pylist()[0] is None:
            return None
        a = np.asarray(flat.to_pylist()[0], dtype=np.float32)
        dims = None if shape is None else shape.to_pylist()[0]
        return a.reshape([int(d) for d in dims]) if dims else a

    def result_rows(self, item: int) -> list[dict[str, Any]]:
        """The result rows (metadata, as dicts, in store order) of one item."""
        return list(self._by_item.get(item, ()))

    def _locate(self, item: int, method: str, target: int | None) -> tuple[str, int] | None:
        """(shard, row) of the last ok row of (item, method[, target]): a dict lookup."""
        found = None
        for tgt, file, row in self._ok.get((item, method), ()):
            if target is None or tgt == target:
                found = (file, row)
        return found

    def values(self, item: int, method: str, target: int | None = None) -> Array:
        """One item's attribution values for ``method`` (and ``target``), as float32."""
        where = self._locate(item, method, target)
        if where is None:
            raise KeyError(f"no {method} values for item {item}")
        return self.values_at(*where)

    def values_at(self, file: str, row: int) -> Array:
        """The values in row ``row`` of the results shard ``file`` (decoded arrays are cached)."""
        key = (file, row)
        with self._lock:
            if key in self._arrays:
                self._arrays.move_to_end(key)
                return self._arrays[key]
        a = self._decode(file, row)
        a.setflags(write=False)
        with self._lock:
            self._arrays[key] = a
            while len(self._arrays) > 16:
                self._arrays.popitem(last=False)
        return a

    def _decode(self, file: str, row: int) -> Array:
        cell = self._cell(file, row, "values")
        if cell is None:
            raise KeyError(f"{file} has no values column")
        if cell.null_count:
            raise KeyError("these values were not stored (a failed row)")
        if isinstance(cell.type, pa.FixedShapeTensorType):
            chunk = cell.combine_chunks() if isinstance(cell, pa.ChunkedArray) else cell
            return np.asarray(chunk.to_numpy_ndarray()[0], dtype=np.float32)
        flat = cell.to_pylist()[0]
        if flat is None:
            raise KeyError("these values were not stored (a failed row)")
        a = np.asarray(flat, dtype=np.float32)
        shape = self._cell(file, row, "values_shape")
        dims = None if shape is None else shape.to_pylist()[0]
        return a.reshape([int(d) for d in dims]) if dims else a

    def extra(self, item: int, method: str, target: int | None = None) -> dict[str, Any] | None:
        """The ``extra`` JSON of a result row (interior gradients keep alphas and scores there)."""
        where = self._locate(item, method, target)
        if where is None:
            return None
        cell = self._cell(where[0], where[1], "extra")
        text = None if cell is None else cell.to_pylist()[0]
        if not text:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def item_record(self, item: int) -> dict[str, Any]:
        """The item's row (light columns) as a dict; KeyError when there is no such item."""
        try:
            return self._item_recs[item]
        except KeyError:
            raise KeyError(f"no item {item}") from None

    _item_row = item_record

    def next_item(self) -> int:
        """The first unused item number (for appended live items)."""
        top = -1
        if len(self.items):
            top = max(top, int(self.items["item"].max()))
        if len(self.results):
            top = max(top, int(self.results["item"].max()))
        count = self.manifest.get("inputs", {}).get("count")
        if isinstance(count, int):
            top = max(top, count - 1)
        return top + 1


_ITEM_DEFAULTS: dict[str, Any] = {
    "item": np.int64, "item_id": object, "source": object, "kind": object, "text": object,
    "tokens": object, "feature_names": object, "status": object, "error": object,
    "has_thumbnail": bool, "_file": object, "_row": np.int64,
}
_RESULT_DEFAULTS: dict[str, Any] = {
    "item": np.int64, "item_id": object, "method": object, "params": object, "target": np.int64,
    "target_name": object, "output": np.float64, "baseline_output": np.float64,
    "gap": np.float64, "relative_gap": np.float64, "error_estimate": np.float64,
    "steps_used": np.float64, "seconds": np.float64, "status": object, "error": object,
    "_file": object, "_row": np.int64,
}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts, column by column (``to_dict("records")`` is slow on Arrow columns)."""
    cols = [str(c) for c in df.columns]
    data = [df[c].tolist() for c in df.columns]
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*data, strict=True)]


def _ok_index(res: pd.DataFrame) -> dict[tuple[int, str], list[tuple[int | None, str, int]]]:
    """(item, method) -> [(target, shard, row)] of the ok result rows, in store order."""
    out: dict[tuple[int, str], list[tuple[int | None, str, int]]] = {}
    ok = res[res["status"] == "ok"]
    targets = ok["target"].to_numpy(dtype=np.float64, na_value=np.nan)
    for i, m, t, f, r in zip(ok["item"].tolist(), ok["method"].tolist(), targets.tolist(),
                             ok["_file"].tolist(), ok["_row"].tolist(), strict=True):
        out.setdefault((int(i), str(m)), []).append(
            (None if t != t else int(t), str(f), int(r)))
    return out


def _concat(frames: list[pd.DataFrame], defaults: dict[str, Any]) -> pd.DataFrame:
    """Concatenate shards, adding any column a shard lacks (older or partial writers)."""
    if frames:
        df = pd.concat(frames, ignore_index=True)
    else:
        df = pd.DataFrame({k: pd.Series(dtype=v) for k, v in defaults.items()})
    for col, dtype in defaults.items():
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=object if dtype is not bool else bool)
    if "status" in df.columns:
        df["status"] = df["status"].fillna("ok")
    return df


