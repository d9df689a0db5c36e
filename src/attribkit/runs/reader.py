"""Reading a run store: metadata as pandas, values per item without loading the whole store."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from attribkit.runs.ledger import ShardError, read_keys
from attribkit.runs.store import FORMAT, READS, parse_shard, shard_files

__all__ = ["RunStore", "current_rows", "open_store"]

_HEAVY_ITEMS = ("thumbnail", "input", "input_shape")
_HEAVY_RESULTS = ("values", "values_shape")


def _row_values(table: pa.Table, row: int) -> np.ndarray[Any, Any] | None:
    col = table.column("values").combine_chunks()
    if isinstance(col.type, pa.FixedShapeTensorType):
        cell = col.storage[row]
        if not cell.is_valid:
            return None
        return np.array(cell.values.to_numpy(zero_copy_only=False),
                        dtype=np.float32).reshape(col.type.shape)
    cell = col[row]
    if not cell.is_valid:
        return None
    shape = table.column("values_shape")[row].as_py()
    return np.asarray(cell.as_py(), dtype=np.float32).reshape(shape)


def current_rows(res: Any) -> Any:
    """The result rows in force: one per (item, method, target), and no failed row for an
    (item, method) that also has an ok row (a failure retried with success)."""
    if not len(res):
        return res
    target = res["target"].astype("float64").fillna(-1.0)
    ok_pairs = set(zip(res.loc[res["status"] == "ok", "item"],
                       res.loc[res["status"] == "ok", "method"], strict=True))
    superseded = [(i, m) in ok_pairs and s == "failed"
                  for i, m, s in zip(res["item"], res["method"], res["status"], strict=True)]
    keep = ~np.asarray(superseded, dtype=bool) & \
        ~res.assign(_t=target).duplicated(["item", "method", "_t"], keep="last").to_numpy()
    return res[keep].reset_index(drop=True)


class RunStore:
    """A run store opened for reading (see ``docs/runs.md``).

    Shards that cannot be read, or whose columns are not a shard's, are skipped and listed in
    :attr:`problems`; links that lead out of the store are not followed.

    Attributes
    ----------
    path
        The store folder.
    manifest
        ``manifest.json`` as a dict.
    problems
        One line per shard that was skipped.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.is_file():
            raise FileNotFoundError(f"no run store at {str(self.path)!r} (no manifest.json); "
                                    "give the --out folder of `attribkit run`")
        try:
            self.manifest: dict[str, Any] = json.loads(mpath.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{str(mpath)!r} is not valid JSON ({err})") from err
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            raise ValueError(f"{str(self.path)!r} is not an attribkit run store")
        if self.manifest.get("version") not in READS:
            raise ValueError(f"{str(self.path)!r} is a version {self.manifest.get('version')} "
                             f"store; this attribkit reads versions {READS[0]} to {READS[-1]}")
        self.problems: list[str] = []
        self._good: dict[str, list[pathlib.Path]] = {}

    def __repr__(self) -> str:
        return (f"RunStore({str(self.path)!r}, model={self.manifest.get('model')!r}, "
                f"items={self.manifest.get('inputs', {}).get('count')})")

    def _shards(self, sub: str, method: str | None = None) -> list[pathlib.Path]:
        if sub not in self._good:
            good = []
            for f in shard_files(self.path, sub):
                try:
                    if parse_shard(f.name, sub == "results") is None:
                        raise ShardError("its name is not part-...-<first>-<last>.parquet")
                    read_keys(f, sub == "results")
                except ShardError as err:
                    self.problems.append(f"{sub}/{f.name} is skipped: {err}")
                    continue
                good.append(f)
            self._good[sub] = good
        files = self._good[sub]
        if method:
            files = [f for f in files if (n := parse_shard(f.name, True)) and n.method == method]
        return files

    def _frame(self, sub: str, heavy: tuple[str, ...]) -> Any:
        import pandas as pd

        frames = []
        for f in self._shards(sub):
            names = [n for n in pq.read_schema(f).names if n not in heavy]
            frames.append(pq.read_table(f, columns=names).to_pandas())
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True).sort_values(
            [c for c in ("item", "method", "target") if c in frames[0].columns],
            kind="stable", ignore_index=True)
        if sub == "items":  # an item read again after it failed: the ok row is in force
            df = df.assign(_ok=df["status"] == "ok").sort_values(["item", "_ok"], kind="stable")
            return df.drop_duplicates("item", keep="last", ignore_index=True).drop(
                columns="_ok")
        return current_rows(df)

    @property
    def items(self) -> Any:
        """A pandas DataFrame of the items (without thumbnails and inputs)."""
        return self._frame("items", _HEAVY_ITEMS)

    @property
    def results(self) -> Any:
        """A pandas DataFrame of the results, one row per (item, method, target), no values."""
        return self._frame("results", _HEAVY_RESULTS)

    @property
    def failed(self) -> Any:
        """The failed result rows."""
        res = self.results
        return res[res["status"] == "failed"] if len(res) else res

    def _find(self, sub: str, item: int, method: str | None = None) -> pa.Table:
        found = None
        for f in self._shards(sub, method):
            name = parse_shard(f.name, sub == "results")
            if name is not None and name.first <= item <= name.last:
                t = pq.read_table(f, filters=[("item", "=", item)])
                if t.num_rows:
                    if "ok" in t.column("status").to_pylist():
                        return t
                    found = found or t  # a failed row; a retry may have an ok one
        if found is not None:
            return found
        what = f"{method} for item {item}" if method else f"item {item}"
        raise KeyError(f"{what} is not in {str(self.path)!r}")

    def values(self, item: int, method: str, target: int | None = None) -> np.ndarray[Any, Any]:
        """The attribution values of ``item`` by ``method`` (for ``target``; default the first).

        Raises
        ------
        KeyError
            When the store has no such row, or the row failed (its error in the message).
        """
        from attribkit.methods import get

        name = get(method).name
        t = self._find("results", item, name)
        targets = t.column("target").to_pylist()
        row = 0 if target is None else targets.index(target) if target in targets else -1
        if row < 0:
            raise KeyError(f"item {item} has no {name} row for target {target} "
                           f"(targets: {targets})")
        vals = _row_values(t, row)
        if vals is None:
            raise KeyError(f"{name} failed on item {item}: {t.column('error')[row].as_py()}")
        return vals

    def interactions(self, item: int) -> dict[str, Any] | None:
        """The item's top interactions (``-m interactions``, docs/runs.md) as a dict, or None
        when the store has none for it."""
        text = self.item(item).get("interactions")
        if not text:
            return None
        data = json.loads(text)
        return data if isinstance(data, dict) else None

    def item(self, item: int) -> dict[str, Any]:
        """One item's row, with ``input`` reshaped to its shape (a numpy array) when present."""
        t = self._find("items", item)
        row = {k: v[0] for k, v in t.to_pydict().items()}
        if row.get("input") is not None:
            row["input"] = np.asarray(row["input"], dtype=np.float32).reshape(row["input_shape"])
        return row


def open_store(path: str | os.PathLike[str]) -> RunStore:
    """Open the run store at ``path`` for reading."""
    return RunStore(path)
