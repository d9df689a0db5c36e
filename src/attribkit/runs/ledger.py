"""The manifest's list of shards, and what a resume checks ``items/`` and ``results/`` against.

Every shard a run writes is recorded in ``manifest.json`` under ``shards`` with its SHA-256,
rows, size and modification time. When a run starts (holding the store's lock), :func:`check`
compares the two folders with that list and says, one line each, what is inconsistent:

* a recorded shard that is missing: its rows are computed again;
* a shard whose content changed after it was written: its rows are read as they are now;
* a shard that is not recorded (a run stopped between writing and recording it, or a file
  copied in): it is kept and recorded;
* a shard that cannot be read, or whose columns are not those of a shard: listed and skipped
  (its rows are computed again);
* rows that appear in more than one shard (same item, method and target): one is used.

The rows' identity is (item, method, target), whatever the batching that wrote them.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from attribkit.runs.store import (
    file_record,
    new_token,
    parse_shard,
    save_manifest,
    shard_files,
    write_shard,
)

__all__ = ["Done", "ShardError", "check", "read_keys", "record", "retire_failed"]


class ShardError(ValueError):
    """A file in items/ or results/ that is not a readable shard."""


@dataclass
class Done:
    """What the store holds, as a resume sees it."""

    items: set[int] = field(default_factory=set)
    #: (item, method) -> True when it has an ok row, False when only failed rows
    pairs: dict[tuple[int, str], bool] = field(default_factory=dict)
    failed_items: set[int] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)


def _integer(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t))


def _string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


_KEYS: dict[bool, dict[str, Callable[[pa.DataType], bool]]] = {
    False: {"item": _integer, "status": _string},
    True: {"item": _integer, "method": _string, "target": _integer, "status": _string},
}


def read_keys(path: pathlib.Path, results: bool) -> pa.Table:
    """The identity and status columns of a shard; :class:`ShardError` naming what is wrong."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as err:
        raise ShardError(f"not a Parquet file: {str(err).splitlines()[0][:120]}") from err
    wanted = _KEYS[results]
    for name, ok in wanted.items():
        if name not in schema.names:
            raise ShardError(f"no {name!r} column")
        typ = schema.field(name).type
        if not ok(typ) and not (name == "target" and pa.types.is_null(typ)):
            raise ShardError(f"its {name!r} column is {typ}, not "
                             f"{'an integer' if name in ('item', 'target') else 'a string'}")
    try:
        table = pq.read_table(path, columns=list(wanted))
    except (OSError, pa.ArrowException) as err:
        raise ShardError(f"cannot be read: {str(err).splitlines()[0][:120]}") from err
    if table.column("item").null_count:
        raise ShardError("its 'item' column has empty cells")
    return table


def check(root: str | pathlib.Path, manifest: dict[str, Any], count: int,
          note: Callable[[str], None]) -> Done:
    """Check the shards against ``manifest["shards"]`` (updated and saved when it changes) and
    return what is done. A version-1 store's shards are recorded without a note."""
    base = pathlib.Path(root)
    upgrading = "shards" not in manifest
    recorded: dict[str, Any] = manifest.setdefault("shards", {})
    changed = upgrading
    done = Done()
    seen: set[str] = set()
    keys: dict[tuple[int, str, int | None], int] = {}
    for sub in ("items", "results"):
        results = sub == "results"
        for f in shard_files(base, sub):
            rel = f"{sub}/{f.name}"
            seen.add(rel)
            try:
                if parse_shard(f.name, results) is None:
                    raise ShardError("its name is not part-...-<first>-<last>.parquet")
                table = read_keys(f, results)
            except ShardError as err:
                note(f"{rel} is skipped: {err}; its rows are computed again")
                done.skipped.append(rel)
                continue
            rec, st = recorded.get(rel), f.stat()
            if rec is None or rec.get("size") != st.st_size or \
                    rec.get("mtime_ns") != st.st_mtime_ns:
                new = file_record(f, table.num_rows)
                if rec is None and not upgrading:
                    note(f"{rel} was not recorded in the manifest (a run stopped before "
                         "recording it, or the file was copied in); it is kept")
                elif rec is not None and rec.get("sha256") != new["sha256"]:
                    note(f"{rel} changed after it was written (its content hash differs from "
                         "the manifest's); its rows are read as they are now")
                recorded[rel] = {k: v for k, v in new.items() if k != "file"}
                changed = True
            _collect(table, results, done, keys, count)
    for rel in [r for r in recorded if r not in seen]:
        note(f"{rel}, recorded in the manifest, is missing; its rows are computed again")
        del recorded[rel]
        changed = True
    dups = sum(n - 1 for n in keys.values() if n > 1)
    if dups:
        note(f"{dups} result row(s) appear in more than one shard (same item, method and "
             "target); one of each is used")
    if changed:
        save_manifest(base, manifest)
    return done


def _collect(table: pa.Table, results: bool, done: Done,
             keys: dict[tuple[int, str, int | None], int], count: int) -> None:
    items = table.column("item").to_pylist()
    status = table.column("status").to_pylist()
    if not results:
        for i, s in zip(items, status, strict=True):
            if 0 <= i < count:
                done.items.add(int(i))
                if s == "failed":
                    done.failed_items.add(int(i))
        return
    methods = table.column("method").to_pylist()
    targets = table.column("target").to_pylist()
    for i, m, t, s in zip(items, methods, targets, status, strict=True):
        if not 0 <= i < count:
            continue
        key = (int(i), str(m), t)
        keys[key] = keys.get(key, 0) + 1
        done.pairs[(int(i), str(m))] = done.pairs.get((int(i), str(m)), False) or s != "failed"


def record(root: str | pathlib.Path, manifest: dict[str, Any],
           records: Iterable[Mapping[str, Any]]) -> None:
    """Add the records of shards just written to the manifest and save it."""
    shards = manifest.setdefault("shards", {})
    added = False
    for r in records:
        shards[str(r["file"])] = {k: v for k, v in r.items() if k != "file"}
        added = True
    if added:
        save_manifest(root, manifest)


def retire_failed(root: str | pathlib.Path, manifest: dict[str, Any], done: Done) -> int:
    """Take the failed rows out of the store (each shard holding some is rewritten without
    them under a new name), so that a run computes them again; the number of result rows
    taken out (failed items leave ``items/`` too, to be read again)."""
    base = pathlib.Path(root)
    shards = manifest.setdefault("shards", {})
    taken = 0
    for sub in ("items", "results"):
        for f in shard_files(base, sub):
            rel = f"{sub}/{f.name}"
            if rel in done.skipped:
                continue
            table = pq.read_table(f)
            failed = pc.equal(table.column("status"), "failed")
            n = pc.sum(failed).as_py() or 0
            if not n:
                continue
            keep = table.filter(pc.invert(failed))
            name = parse_shard(f.name, sub == "results")
            if keep.num_rows and name is not None:
                items = keep.column("item").to_pylist()
                prefix = f"part-{name.method}-" if name.method else "part-"
                new = base / sub / (f"{prefix}{min(items):08d}-{max(items):08d}-"
                                    f"{new_token()}.parquet")
                rec = write_shard(keep, new)
                if rec is not None:
                    shards[str(rec["file"])] = {k: v for k, v in rec.items() if k != "file"}
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
            shards.pop(rel, None)
            save_manifest(base, manifest)
            taken += int(n) if sub == "results" else 0
    return taken
