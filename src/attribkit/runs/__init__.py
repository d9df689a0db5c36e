"""Attributing a whole data set: resumable runs into a Parquet store, locally or on Ray.

>>> import attribkit.runs as runs
>>> result = runs.run("efficientnet-lite0", "photos/", methods=["ig", "saliency"],
...                   out="runs/photos")                                  # doctest: +SKIP
>>> store = runs.open("runs/photos")                                      # doctest: +SKIP

The store's format is documented in ``docs/runs.md`` (version 2). ``ray`` is imported only by
the Ray engine (``engine="ray"``, extra ``distributed``).
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from attribkit.runs import ledger
from attribkit.runs.checks import MethodArg, MethodError, normalise_methods
from attribkit.runs.interactions import split_interactions
from attribkit.runs.lock import StoreBusy, WriterLock
from attribkit.runs.probe import check_new_tokens, describe, new_tokens
from attribkit.runs.reader import RunStore, open_store
from attribkit.runs.sources import DEFAULT_MAX_PIXELS, Item, Source, collect
from attribkit.runs.store import (
    ConfigMismatch,
    check_folder,
    manifest_for,
    new_token,
    prepare_store,
)
from attribkit.runs.work import Task, Worker, balanced_batches
from attribkit.zoo.specs import Built

__all__ = ["DEFAULT_MAX_PIXELS", "ConfigMismatch", "Item", "MethodError", "RunResult", "RunStore",
           "StoreBusy", "collect", "normalise_methods", "open", "run", "split_interactions"]

_KINDS = {"image": "image", "tabular": "tabular", "text": "text", "smiles": "smiles",
          "python": "tensor"}
_ZOO_KINDS = {"efficientnet-lite0": "image", "minilm-sentiment": "text",
              "breast-cancer-mlp": "tabular", "smollm2": "generation"}

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
        num_cpus: int | None = None, retry_failed: bool = False, wait: bool = False,
        max_image_pixels: int = DEFAULT_MAX_PIXELS, max_new_tokens: int | None = None,
        note: Callable[[str], None] | None = None) -> RunResult:
    """Attribute every item of ``data`` with every method into the store at ``out``.

    A store that exists with the same configuration is resumed: only the (item, method) pairs
    missing from it are computed, after its shards are checked against the manifest (what is
    inconsistent is said, one line each). Items that fail are recorded with their error; the run
    goes on. A store has one writer at a time (the lock file ``writer.lock``).

    Parameters
    ----------
    model
        A zoo name (``efficientnet-lite0``, ``minilm-sentiment``, ``breast-cancer-mlp``,
        ``smollm2``: a ``.txt`` of prompts, each generation stored as its matrix) or
        ``module:callable`` (both engines: the model is built in each worker, and the Ray
        engine builds it once more in a short Ray task first, to learn its kind and check the
        methods as the local engine does in the driver); for the local engine also a
        :class:`attribkit.zoo.specs.Built` or a model object.
    data
        A folder of images, a ``.csv``, a ``.txt`` (one sentence per line), a ``.smi`` file, or
        an iterable / map-style ``torch.utils.data.Dataset`` (of tensors or (tensor, label)).
    methods
        Method names or aliases, ``(name, settings)`` pairs or ``{"name", "params"}`` dicts;
        settings as in :func:`attribkit.explain` (JSON values; a layer by its name, e.g.
        ``("grad_cam", {"layer": "features.3"})``; Grad-CAM's default is the last convolution).
        ``"interactions"`` or ``("interactions", {"index": "FSII", "order": 2})`` beside them
        stores each item's strongest interactions in its row (docs/runs.md).
    out
        The store folder.
    engine
        ``"local"`` (this machine: the calling process, or ``concurrency`` worker processes) or
        ``"ray"``.
    target
        ``None`` (the predicted class), a class index, or ``"top_k:K"``.
    steps
        Path steps for every method that takes ``steps`` and has no own setting.
    batch_size
        Items per batch (per model call group and per shard).
    progress
        Show a progress bar (items/s and ETA).
    concurrency
        Model copies working at once. Ray: actors (default one per CPU, or per GPU). Local
        engine: worker processes (default 1: the calling process), each with ``CPUs / N`` torch
        threads; more than 1 needs the model as a zoo name or ``module:callable`` (built in each
        process). On a CPU, one copy per core is usually fastest (docs/runs.md).
    address, num_cpus
        Ray only: a cluster to join (default: start a local instance with ``num_cpus``).
    retry_failed
        Compute the failed rows again (they are taken out of the store first).
    wait
        When another run is writing the store, wait for it instead of refusing.
    max_image_pixels
        The largest image (width x height) decoded; a larger one fails alone, as one item.
    max_new_tokens
        Generation models: the tokens each answer has (greedy, for every method); None:
        :func:`attribkit.sequences.explain_generation`'s default (20). The value in force is
        recorded in the manifest (a resume with another one is refused). Given for a model that
        does not generate, it is refused (:class:`MethodError`) before any work.
    note
        Where one-line notes go (default: stderr, prefixed ``attribkit:``).

    Returns
    -------
    RunResult
        Counts and timing; open the store with :func:`open`.

    Raises
    ------
    StoreBusy
        When another run is writing the store (and ``wait`` is False).
    ConfigMismatch
        When ``out`` holds a store of another configuration (one line: what differs).
    MethodError
        When a method's settings (or ``max_new_tokens``) cannot work with the model.
    """
    t0 = time.perf_counter()
    say = note or (lambda text: print(f"attribkit: {text}", file=sys.stderr))
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency}")
    copies = concurrency or 1  # the local engine's copies of the model
    if max_image_pixels < 1:
        raise ValueError(f"max_image_pixels must be a positive integer, got {max_image_pixels}")
    check_new_tokens(max_new_tokens)
    methods, inter = split_interactions(methods)
    entries = normalise_methods(methods, steps)
    target = _target_arg(target)
    src: Source = collect(data)
    if inter is not None and _KINDS[src.kind] in ("text", "smiles"):
        raise MethodError(f"-m interactions needs inputs that are feature tensors (images, "
                          f"tabular, tensors), not {src.kind}")
    zoo = None
    if isinstance(model, str):
        from attribkit.zoo.specs import check, zoo_name

        check(model)
        spec, zoo = model, zoo_name(model)
        kind = _ZOO_KINDS[zoo] if zoo is not None else _KINDS[src.kind]
    else:
        if engine == "ray" or copies > 1:
            where = "the ray engine" if engine == "ray" else "concurrency > 1"
            raise ValueError(f"{where} builds the model in each worker process: give a zoo "
                             "name or module:callable, not a model object")
        spec = f"python:{type(model).__module__}.{type(model).__qualname__}"
        kind = _KINDS[src.kind]
    if zoo is not None:
        new_tokens(kind, max_new_tokens, spec)  # a zoo model's kind is known: refused unbuilt
    root = pathlib.Path(out)
    check_folder(root)
    built = None
    notes: list[str] = []
    if engine == "local":  # every method's settings are checked before any work
        from attribkit.zoo.specs import build, plain

        built = build(model) if isinstance(model, str) else (
            model if isinstance(model, Built) else plain(model))
        found, notes = describe(built, entries, inter)
    elif zoo is None:  # module:callable on Ray: built once in a Ray task, not in the driver
        from attribkit.runs.ray_engine import probe

        found, notes = probe(spec, entries, inter, address=address, num_cpus=num_cpus)
    else:  # a zoo model on Ray: its kind is known
        found = kind
    for line in notes:
        say(line)
    if found == "generation":  # a module:callable language model (zoo names know it)
        kind = "generation"
    manifest = manifest_for(model=spec, kind=kind, methods=entries, target=target,
                            source=src.description, count=len(src.items), sha256=src.sha256,
                            interactions=inter,
                            max_new_tokens=new_tokens(kind, max_new_tokens, spec))
    root.mkdir(parents=True, exist_ok=True)
    with WriterLock(root, wait=wait, note=say):
        manifest = prepare_store(root, manifest)
        done = ledger.check(root, manifest, len(src.items), say)
        if retry_failed:
            taken = ledger.retire_failed(root, manifest, done)
            if taken:
                say(f"retrying {taken} failed result row(s)")
                done = ledger.check(root, manifest, len(src.items), say)
        names = [e["name"] for e in entries]
        tasks = [Task(it, tuple(m for m in names if (it.item, m) not in done.pairs),
                      it.item not in done.items or it.item in done.failed_items)
                 for it in src.items]
        tasks = [t for t in tasks if t.methods]
        token = new_token()

        def keep(records: Sequence[Mapping[str, Any]]) -> None:
            ledger.record(root, manifest, records)

        if tasks and built is not None:
            here = Worker(built, entries, target, str(root), token, max_image_pixels,
                          interactions=inter, feature_names=src.feature_names,
                          max_new_tokens=manifest.get("max_new_tokens"))
            if copies > 1:
                from attribkit.runs.pool import run_pool

                run_pool(here, spec, balanced_batches(tasks, batch_size, copies),
                         kind=kind, workers=copies, progress=progress, record=keep, note=say)
            else:
                from attribkit.runs.local import run_local

                run_local(here, tasks, kind=kind, batch_size=batch_size, progress=progress,
                          record=keep)
        elif tasks:
            from attribkit.runs.ray_engine import run_ray

            run_ray(spec, entries, target, str(root), tasks, kind=kind, batch_size=batch_size,
                    concurrency=concurrency, address=address, num_cpus=num_cpus,
                    progress=progress, token=token, max_pixels=max_image_pixels,
                    interactions=inter, feature_names=src.feature_names,
                    max_new_tokens=manifest.get("max_new_tokens"), record=keep)
        failed = len(open_store(root).failed)
    return RunResult(str(root), len(src.items), len(tasks), failed, time.perf_counter() - t0)

