"""Attributing a whole data set: resumable runs into a Parquet store, locally or on Ray.

>>> import attribkit.runs as runs
>>> result = runs.run("efficientnet-lite0", "photos/", methods=["ig", "saliency"],
...                   out="runs/photos")                                  # doctest: +SKIP
>>> store = runs.open("runs/photos")                                      # doctest: +SKIP

The store's format is documented in ``docs/runs.md`` (version 1). ``ray`` is imported only by
the Ray engine (``engine="ray"``, extra ``distributed``).
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from attribkit.runs.reader import RunStore, open_store
from attribkit.runs.sources import Item, Source, collect
from attribkit.runs.store import ConfigMismatch, manifest_for, missing_pairs, prepare_store
from attribkit.runs.work import Task, Worker
from attribkit.zoo.specs import Built

__all__ = ["ConfigMismatch", "Item", "RunResult", "RunStore", "collect", "normalise_methods",
           "open", "run"]

_KINDS = {"image": "image", "tabular": "tabular", "text": "text", "smiles": "smiles",
          "python": "tensor"}
_ZOO_KINDS = {"efficientnet-lite0": "image", "minilm-sentiment": "text",
              "breast-cancer-mlp": "tabular", "smollm2": "generation",
              "smollm2-135m": "generation", "smollm2-135m-instruct": "generation"}

MethodArg = str | tuple[str, Mapping[str, Any]] | Mapping[str, Any]


@dataclass(frozen=True)
class RunResult:
    """What a run did.

    Attributes
    ----------
    path
        The store folder.
    items
        Items in the input list.
    computed
        Items worked on by this call (0 when the store was complete).
    failed
        Failed result rows in the whole store.
    seconds
        Wall time of this call.
    """

    path: str
    items: int
    computed: int
    failed: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        """Items worked on per second of this call."""
        return self.computed / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Whether no result in the store failed."""
        return self.failed == 0


def open(path: str | os.PathLike[str]) -> RunStore:
    """Open a run store for reading (see :class:`RunStore`)."""
    return open_store(path)


def _json_ok(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(params), sort_keys=True)))
    except TypeError as err:
        raise ValueError(f"settings of {name} must be JSON values (numbers, strings, lists) to be "
                         f"recorded in the store: {err}") from err


def normalise_methods(methods: Sequence[MethodArg], steps: int | None = None
                      ) -> list[dict[str, Any]]:
    """``["ig", ("saliency", {...}), {"name": ..., "params": ...}]`` -> manifest entries with
    registered names; ``steps`` goes to every method that takes it and has no own setting."""
    from attribkit.methods import get

    out: list[dict[str, Any]] = []
    for m in methods:
        if isinstance(m, str):
            name, params = m, {}
        elif isinstance(m, tuple):
            name, params = m[0], dict(m[1])
        else:
            name, params = str(m["name"]), dict(m.get("params", {}))
        info = get(name)
        accepted = inspect.signature(info.fn).parameters
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(f"{info.name} has no option {unknown[0]!r}; its options: "
                             f"{', '.join(p for p in accepted if p not in ('model', 'inputs'))}")
        for fixed in ("target", "progress", "layer", "forward_args"):
            if fixed in params:
                raise ValueError(f"{fixed!r} is set by the run, not per method")
        if steps is not None and "steps" in accepted and "steps" not in params:
            params["steps"] = steps
        if any(e["name"] == info.name for e in out):
            raise ValueError(f"{info.name} is given twice")
        out.append({"name": info.name, "params": _json_ok(params, info.name)})
    if not out:
        raise ValueError("give at least one method")
    return out


def _target_arg(target: Any) -> Any:
    if target is None or (isinstance(target, int) and not isinstance(target, bool)):
        return target
    if isinstance(target, str) and target.startswith("top_k:") and target[6:].isdigit():
        return target
    raise ValueError(f"target must be None (the predicted class), an int or 'top_k:K', "
                     f"got {target!r}")


def run(model: str | Built | Any, data: Any, methods: Sequence[MethodArg] = ("ig",), *,
        out: str | os.PathLike[str], engine: str = "local", target: Any = None,
        steps: int | None = None, batch_size: int = 8, progress: bool = True,
        address: str | None = None, concurrency: int | None = None,
        num_cpus: int | None = None) -> RunResult:
    """Attribute every item of ``data`` with every method into the store at ``out``.

    A store that exists with the same configuration is resumed: only the (item, method) pairs
    missing from it are computed. Items that fail are recorded with their error; the run goes on.

    Parameters
    ----------
    model
        A zoo name (``efficientnet-lite0``, ``minilm-sentiment``, ``breast-cancer-mlp``,
        ``smollm2``: a ``.txt`` of prompts, each generation stored as its matrix) or
        ``module:callable`` (both engines: the model is built in each worker); for the local
        engine also a :class:`attribkit.zoo.specs.Built` or a model object.
    data
        A folder of images, a ``.csv``, a ``.txt`` (one sentence per line), a ``.smi`` file, or
        an iterable / map-style ``torch.utils.data.Dataset`` (of tensors or (tensor, label)).
    methods
        Method names or aliases, ``(name, settings)`` pairs or ``{"name", "params"}`` dicts;
        settings as in :func:`attribkit.explain` (JSON values).
    out
        The store folder.
    engine
        ``"local"`` (one process) or ``"ray"``.
    target
        ``None`` (the predicted class), a class index, or ``"top_k:K"``.
    steps
        Path steps for every method that takes ``steps`` and has no own setting.
    batch_size
        Items per batch (per model call group and per shard).
    progress
        Show a progress bar (items/s and ETA).
    address, concurrency, num_cpus
        Ray only: a cluster to join (default: start a local instance with ``num_cpus``), and
        the number of actors (model copies).

    Returns
    -------
    RunResult
        Counts and timing; open the store with :func:`open`.
    """
    t0 = time.perf_counter()
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    entries = normalise_methods(methods, steps)
    target = _target_arg(target)
    src: Source = collect(data)
    if isinstance(model, str):
        from attribkit.zoo.specs import check

        check(model)
        spec = model
        kind = _ZOO_KINDS.get(model.lower(), _KINDS[src.kind])
    else:
        if engine == "ray":
            raise ValueError("the ray engine builds the model in each worker: give a zoo name "
                             "or module:callable, not a model object")
        spec = f"python:{type(model).__module__}.{type(model).__qualname__}"
        kind = _KINDS[src.kind]
    manifest = manifest_for(model=spec, kind=kind, methods=entries, target=target,
                            source=src.description, count=len(src.items), sha256=src.sha256)
    root = str(out)
    prepare_store(root, manifest)
    names = [e["name"] for e in entries]
    todo, have = missing_pairs(root, len(src.items), names)
    tasks = [Task(src.items[i], tuple(ms), i not in have) for i, ms in sorted(todo.items())]
    if tasks and engine == "local":
        from attribkit.runs.local import run_local
        from attribkit.zoo.specs import build, plain

        built = build(model) if isinstance(model, str) else (
            model if isinstance(model, Built) else plain(model))
        _check_layer(built, entries)
        run_local(Worker(built, entries, target, root), tasks, kind=kind,
                  batch_size=batch_size, progress=progress)
    elif tasks:
        from attribkit.runs.ray_engine import run_ray

        run_ray(spec, entries, target, root, tasks, kind=kind, batch_size=batch_size,
                concurrency=concurrency, address=address, num_cpus=num_cpus, progress=progress)
    failed = _count_failed(root)
    return RunResult(root, len(src.items), len(tasks), failed, time.perf_counter() - t0)


def _check_layer(built: Built, entries: Iterable[Mapping[str, Any]]) -> None:
    from attribkit.methods import get

    if built.layer is None:
        return
    for e in entries:
        if "layer" not in inspect.signature(get(e["name"]).fn).parameters:
            raise ValueError(f"{e['name']} cannot attribute at a layer; {built.kind} models need "
                             "a method with a layer option (integrated_gradients, saliency, ...)")


def _count_failed(root: str) -> int:
    import pathlib

    import pyarrow.parquet as pq

    n = 0
    for f in sorted(pathlib.Path(root, "results").glob("part-*.parquet")):
        status = pq.read_table(f, columns=["status"]).column("status").to_pylist()
        n += sum(s == "failed" for s in status)
    return n
