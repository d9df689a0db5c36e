"""Appending one item and its results to a run store as new shards (live mode).

Shards follow the store's version-1 layout: ``items/part-<first>-<last>.parquet`` and
``results/part-<method>-<first>-<last>.parquet`` (8-digit numbers), written to a ``.tmp-`` file
in the same folder and renamed, so a reader never sees half a shard. An existing shard is never
rewritten. The manifest is left as it is: live items are numbered after the run's own inputs
(``manifest["inputs"]["count"]`` and above), so a resumed run never recomputes or overwrites them.
"""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["LiveResult", "write_item", "write_result"]

Array = np.ndarray[Any, Any]


@dataclass
class LiveResult:
    """One (item, method, target) row to append."""

    method: str
    values: Array
    target: int | None
    target_name: str | None = None
    output: float | None = None
    baseline_output: float | None = None
    gap: float | None = None
    relative_gap: float | None = None
    error_estimate: float | None = None
    steps_used: int | None = None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] | None = None


def _atomic_write(table: pa.Table, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"shard {path.name} already exists; shards are never rewritten")
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_item(root: pathlib.Path, item: int, *, item_id: str, source: str, kind: str,
               text: str | None = None, tokens: list[str] | None = None,
               feature_names: list[str] | None = None, thumbnail: bytes | None = None,
               model_input: Array | None = None) -> pathlib.Path:
    """Write the items shard of one live item; returns its path."""
    x = None if model_input is None else np.asarray(model_input, dtype=np.float32)
    table = pa.table({
        "item": pa.array([item], pa.int64()),
        "item_id": pa.array([item_id], pa.string()),
        "source": pa.array([source], pa.string()),
        "kind": pa.array([kind], pa.string()),
        "text": pa.array([text], pa.string()),
        "tokens": pa.array([tokens], pa.list_(pa.string())),
        "feature_names": pa.array([feature_names], pa.list_(pa.string())),
        "thumbnail": pa.array([thumbnail], pa.binary()),
        "input": pa.array([None if x is None else x.reshape(-1).tolist()],
                          pa.list_(pa.float32())),
        "input_shape": pa.array([None if x is None else list(x.shape)], pa.list_(pa.int32())),
        "status": pa.array(["ok"], pa.string()),
        "error": pa.array([None], pa.string()),
    })
    path = root / "items" / f"part-{item:08d}-{item:08d}.parquet"
    _atomic_write(table, path)
    return path


def write_result(root: pathlib.Path, item: int, item_id: str, r: LiveResult) -> pathlib.Path:
    """Write one result row as its own shard (a fixed-shape tensor column); returns its path."""
    v = np.ascontiguousarray(np.asarray(r.values, dtype=np.float32))
    shape = tuple(int(d) for d in v.shape) or (1,)
    tensor_type = pa.fixed_shape_tensor(pa.float32(), shape)
    storage = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()),
                                                int(np.prod(shape)))
    params = dict(r.params)
    table = pa.table({
        "item": pa.array([item], pa.int64()),
        "item_id": pa.array([item_id], pa.string()),
        "method": pa.array([r.method], pa.string()),
        "params": pa.array([json.dumps(params, sort_keys=True, default=str)], pa.string()),
        "target": pa.array([r.target], pa.int64()),
        "target_name": pa.array([r.target_name], pa.string()),
        "output": pa.array([r.output], pa.float64()),
        "baseline_output": pa.array([r.baseline_output], pa.float64()),
        "gap": pa.array([r.gap], pa.float64()),
        "relative_gap": pa.array([r.relative_gap], pa.float64()),
        "error_estimate": pa.array([r.error_estimate], pa.float64()),
        "steps_used": pa.array([r.steps_used], pa.int64()),
        "seconds": pa.array([r.seconds], pa.float64()),
        "status": pa.array(["ok"], pa.string()),
        "error": pa.array([None], pa.string()),
        "values": pa.ExtensionArray.from_storage(tensor_type, storage),
        "extra": pa.array([None if r.extra is None else json.dumps(r.extra)], pa.string()),
    })
    path = root / "results" / f"part-{r.method}-{item:08d}-{item:08d}.parquet"
    _atomic_write(table, path)
    return path
