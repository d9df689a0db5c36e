"""The work both engines share: prepare a batch of items, explain them, write their shards.

A :class:`Worker` builds its model once (from a spec string, in its own process) and then takes
batches of :class:`Task` s in three stages: :meth:`Worker.load` decodes and prepares the items,
:meth:`Worker.compute` explains them, :meth:`Worker.write` writes their shards. Only the middle
stage calls the model, so an engine may decode the next batch and write the previous one in
threads while it computes (:mod:`attribkit.runs.local` does). Items of one shape are stacked and
explained in one call per method, so the path points or perturbations of all items of a batch
fill the model calls together (a chunk of rows spans items); if that call fails, the items are
explained one by one so that only the culprit is recorded as failed. The worker writes its own
shards, so an engine only hands out tasks. Gradient methods that take ``channels_last`` get it on
CPU images with convolutions (:func:`~attribkit.core.probes.channels_last_helps`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.probes import channels_last_helps
from attribkit.runs import store
from attribkit.runs.checks import method_layers
from attribkit.runs.interactions import top_interactions
from attribkit.runs.sources import DEFAULT_MAX_PIXELS, Item, check_pixels, pixel_limit
from attribkit.zoo.specs import Built, Prepared, build

__all__ = ["Done", "Loaded", "Task", "Worker", "balanced_batches", "generation_extra",
           "method_target", "one_line", "threads_per_worker"]


@dataclass(frozen=True)
class Task:
    """One item and what is left to do for it."""

    item: Item
    methods: tuple[str, ...]
    write_item: bool


@dataclass
class Loaded:
    """A batch of tasks with its items decoded and prepared (or the error of each bad one)."""

    tasks: list[Task]
    prepared: dict[int, Prepared]
    errors: dict[int, str]
    item_rows: list[dict[str, Any]]


@dataclass
class Done:
    """A computed batch: the item rows and result rows to write, and the status summary."""

    item_rows: list[dict[str, Any]]
    results: dict[str, list[dict[str, Any]]]
    summary: list[dict[str, Any]]


def balanced_batches(tasks: Sequence[Task], batch_size: int, workers: int = 1
                     ) -> list[list[Task]]:
    """``tasks`` in batches of at most ``batch_size``, as many batches per worker, their sizes
    differing by at most one (24 tasks, batches of 8 and 2 workers: 4 batches of 6, not 8 + 8 +
    8, which would leave one worker idle for a third of the run)."""
    if not tasks:
        return []
    rounds = -(-len(tasks) // (batch_size * workers))
    count = min(len(tasks), rounds * workers)
    size, extra = divmod(len(tasks), count)
    out, start = [], 0
    for b in range(count):
        stop = start + size + (1 if b < extra else 0)
        out.append(list(tasks[start:stop]))
        start = stop
    return out


def threads_per_worker(cpus: int, workers: int) -> int:
    """Torch threads of each of ``workers`` copies of the model sharing ``cpus``: the variable
    ``ATTRIBKIT_THREADS`` when set (both engines pass it on), else ``cpus // workers`` (at least
    one)."""
    forced = int(os.environ.get("ATTRIBKIT_THREADS", "0") or 0)
    return forced if forced > 0 else max(1, cpus // workers)


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def method_target(target: Any) -> Any:
    """The manifest's target (None, an int, ``"top_k:K"``) as ``explain`` takes it."""
    if isinstance(target, str) and target.startswith("top_k:"):
        from attribkit.core.targets import top_k

        return top_k(int(target.split(":", 1)[1]))
    return target


def _num(t: Tensor | None, idx: tuple[int, ...]) -> float | None:
    if t is None:
        return None
    sel = t[idx[:t.dim()]]
    v = float(sel.max().item()) if sel.numel() > 1 else float(sel.item())
    return v if np.isfinite(v) else None


class Worker:
    """Explain batches of tasks with one model and write their shards.

    Parameters
    ----------
    model
        A spec string (built here) or a :class:`Built`.
    methods
        ``[{"name": ..., "params": {...}}, ...]`` as in the manifest.
    target
        As in the manifest.
    out
        The store folder.
    token
        The run's token (part of every shard name it writes).
    max_pixels
        The largest image (width x height) an item may have; a larger one fails alone.
    interactions
        The manifest's interaction settings: each item row written gets its top interactions
        (:func:`attribkit.runs.interactions.top_interactions`); None: none.
    feature_names
        The source's column names (a CSV's header): they name the features of every item with
        as many features, in the item rows, the interactions and the reports, before any names
        the model's ``prepare`` gives. None: the model's names, if any.
    max_new_tokens
        Generation models: the tokens of each answer (the manifest's ``max_new_tokens``),
        passed to ``explain_item`` with each method's settings. None: the model's default.
    """

    def __init__(self, model: str | Built, methods: Sequence[Mapping[str, Any]], target: Any,
                 out: str, token: str, max_pixels: int = DEFAULT_MAX_PIXELS,
                 interactions: Mapping[str, Any] | None = None,
                 feature_names: Sequence[str] | None = None,
                 max_new_tokens: int | None = None) -> None:
        from attribkit.methods import get

        self.built = build(model) if isinstance(model, str) else model
        self.entries = [dict(m) for m in methods]
        self.methods = {m["name"]: dict(m["params"]) for m in methods}
        self.order = [m["name"] for m in methods]
        self.info = {name: get(name) for name in self.order}
        self.layers = method_layers(self.built, methods)
        self.target = method_target(target)
        self.manifest_target = target
        self.out = out
        self.token = token
        self.max_pixels = max_pixels
        self.interactions = interactions
        self.feature_names = None if feature_names is None else [str(n) for n in feature_names]
        self.max_new_tokens = max_new_tokens
        self.kind = ""

    # -- one batch ---------------------------------------------------------------------------
    def process(self, tasks: Sequence[Task], kind: str
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Do ``tasks`` and write their shards; ``[{"item", "method", "status"}]`` per result row
        and the records of the shards written (for the manifest)."""
        loaded = self.load(tasks, kind)
        done = self.compute(loaded)
        return done.summary, self.write(done)

    def load(self, tasks: Sequence[Task], kind: str) -> Loaded:
        """Decode and prepare the items of ``tasks`` (no model call: may run in a thread)."""
        # a module:callable language model is a generation whatever its input file looked like
        self.kind = "generation" if self.built.kind == "generation" else kind
        prepared: dict[int, Prepared] = {}
        errors: dict[int, str] = {}
        item_rows = []
        for t in tasks:
            i = t.item.item
            try:
                check_pixels(t.item.raw, self.max_pixels)
                with pixel_limit(self.max_pixels):
                    prepared[i] = self._named(self.built.prepare(t.item.raw))
            except Exception as err:  # one bad input fails one item
                errors[i] = one_line(err)
            if t.write_item:
                item_rows.append(self._item_row(t.item, prepared.get(i), errors.get(i)))
        return Loaded(list(tasks), prepared, errors, item_rows)

    def compute(self, loaded: Loaded) -> Done:
        """Explain the loaded items, one call per method and input shape for all of them: the
        path points or perturbations of every item of the batch fill the model's chunks."""
        tasks, prepared, errors = loaded.tasks, loaded.prepared, loaded.errors
        summary: list[dict[str, Any]] = []
        results: dict[str, list[dict[str, Any]]] = {}
        for name in self.order:
            need = [t for t in tasks if name in t.methods]
            rows = [self._failed_row(t.item, name, errors[t.item.item], 0.0)
                    for t in need if t.item.item in errors]
            ready = [t for t in need if t.item.item in prepared]
            for group in _groups(ready, prepared):
                rows.extend(self._explain(name, group, prepared))
            rows.sort(key=lambda r: (r["item"], r["target"] if r["target"] is not None else -1))
            rows = _unique(rows)
            results[name] = rows
            summary.extend({"item": r["item"], "method": name, "status": r["status"]}
                           for r in rows)
        return Done(loaded.item_rows, results, summary)

    def write(self, done: Done) -> list[dict[str, Any]]:
        """Write the shards of a computed batch (no model call: may run in a thread); the
        records of the shards written (for the manifest)."""
        written = [store.write_items(self.out, done.item_rows, self.token)]
        for name, rows in done.results.items():
            written.append(store.write_results(self.out, name, rows, self.token))
        return [r for r in written if r is not None]

    def _named(self, p: Prepared) -> Prepared:
        """``p`` with the source's column names when it has as many features as names."""
        names = self.feature_names
        if names is None or p.x.dim() != 2 or p.x.shape[1] != len(names):
            return p
        return dataclasses.replace(p, feature_names=list(names))

    # -- rows --------------------------------------------------------------------------------
    def _item_row(self, item: Item, p: Prepared | None, error: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {"item": item.item, "item_id": item.item_id, "source": item.source,
                               "kind": self.kind, "status": "failed" if error else "ok",
                               "error": error}
        if p is not None:
            row.update(text=p.text, tokens=p.tokens, feature_names=p.feature_names,
                       thumbnail=p.thumbnail,
                       input=p.x[0].detach().to(torch.float32).cpu().numpy())
            if self.interactions is not None:
                row["interactions"] = top_interactions(self.built.model, p, self.target,
                                                       self.interactions)
        elif isinstance(item.raw, str) and self.kind in ("text", "smiles"):
            row["text"] = item.raw
        return row

    def _failed_row(self, item: Item, method: str, error: str, seconds: float
                    ) -> dict[str, Any]:
        return {"item": item.item, "item_id": item.item_id, "method": method,
                "params": json.dumps(self.methods[method], sort_keys=True), "target": None,
                "seconds": seconds, "status": "failed", "error": error, "values": None}

    def _options(self, name: str, batch: list[Prepared]) -> dict[str, Any]:
        info = self.info[name]
        accepted = inspect.signature(info.fn).parameters
        opts: dict[str, Any] = {k: v for k, v in self.methods[name].items() if k != "layer"}
        opts["target"] = self.target
        if "progress" in accepted:
            opts["progress"] = False
        if (info.needs_baseline and "baseline" in accepted and "baseline" not in opts
                and all(p.baseline is not None for p in batch)):
            opts["baseline"] = torch.cat([p.baseline for p in batch if p.baseline is not None])
        if self.built.layer is not None:
            opts["layer"] = self.built.layer
        elif self.layers.get(name) is not None:
            opts["layer"] = self.layers[name]
        if ("channels_last" in accepted and "channels_last" not in opts
                and channels_last_helps(self.built.model, batch[0].x, self.built.layer)):
            opts["channels_last"] = True  # same values up to rounding; 1.2-1.4x on CPU images
        if batch[0].forward_args:
            opts["forward_args"] = tuple(torch.cat(parts) for parts in
                                         zip(*(p.forward_args for p in batch), strict=True))
        return opts

    def _explain(self, name: str, group: list[Task], prepared: Mapping[int, Prepared]
                 ) -> list[dict[str, Any]]:
        if self.built.explain_item is not None:
            return [self._generation_row(name, t.item, prepared[t.item.item]) for t in group]
        batch = [prepared[t.item.item] for t in group]
        start = time.perf_counter()
        try:
            attr = self.info[name].fn(self.built.model, torch.cat([p.x for p in batch]),
                                      **self._options(name, batch))
        except Exception as err:
            if len(group) > 1:  # find the culprit: one by one
                return [r for t in group for r in self._explain(name, [t], prepared)]
            return [self._failed_row(group[0].item, name, one_line(err),
                                     time.perf_counter() - start)]
        seconds = (time.perf_counter() - start) / len(group)
        rows = []
        for i, t in enumerate(group):
            rows.extend(self._rows_of(attr, i, t.item, name, seconds))
        return rows

    def _generation_row(self, name: str, item: Item, p: Prepared) -> dict[str, Any]:
        """One prompt of a generation model: its (generated x prompt) matrix."""
        assert self.built.explain_item is not None
        settings = self.methods[name]
        if self.max_new_tokens is not None:
            settings = {**settings, "max_new_tokens": self.max_new_tokens}
        start = time.perf_counter()
        try:
            res = self.built.explain_item(name, settings, p)
        except Exception as err:
            return self._failed_row(item, name, one_line(err), time.perf_counter() - start)
        arr = res.matrix.detach().to(torch.float32).cpu().numpy()
        gap, rel = res.gap, res.relative_gap
        base = res.baseline_logprobs
        row: dict[str, Any] = {
            "item": item.item, "item_id": item.item_id, "method": name,
            "params": json.dumps(self.methods[name], sort_keys=True), "target": None,
            "target_name": "".join(res.generated_tokens),
            "output": res.sequence_logprob,
            "baseline_output": None if base is None else float(base.sum()),
            "gap": None if gap is None else float(gap.sum()),
            "relative_gap": None if rel is None else float(rel.max()),
            "error_estimate": None, "steps_used": res.params.get("steps"),
            "seconds": time.perf_counter() - start, "status": "ok", "error": None,
            "values": arr, "extra": generation_extra(res),
        }
        if not np.isfinite(arr).all():
            row.update(status="failed", values=None, extra=None,
                       error="non-finite values (NaN or inf) in the attribution")
        return row

    def _rows_of(self, attr: Attribution, i: int, item: Item, name: str, seconds: float
                 ) -> list[dict[str, Any]]:
        k_count = attr.values.shape[1] if attr.multi_target else 0
        gap, rel = attr.gap, attr.relative_gap
        used = attr.params.get("steps_used", attr.params.get("steps"))
        rows = []
        for k in range(max(k_count, 1)):
            idx = (i, k) if attr.multi_target else (i,)
            values = attr.values[idx].detach()
            if self.built.reduce is not None:
                values = self.built.reduce(values)
            arr = values.to(torch.float32).cpu().numpy()
            tgt = None if attr.target is None else int(attr.target[idx].item())
            row: dict[str, Any] = {
                "item": item.item, "item_id": item.item_id, "method": name,
                "params": json.dumps(self.methods[name], sort_keys=True), "target": tgt,
                "target_name": _label(self.built.label, tgt),
                "output": _num(attr.output, idx),
                "baseline_output": _num(attr.baseline_output, idx),
                "gap": _num(gap, idx), "relative_gap": _num(rel, idx),
                "error_estimate": _num(attr.error_estimate, idx),
                "steps_used": int(used[i]) if isinstance(used, list) else
                (int(used) if isinstance(used, int) else None),
                "seconds": seconds, "status": "ok", "error": None, "values": arr,
            }
            bad = not np.isfinite(arr).all() or (attr.output is not None and
                                                 row["output"] is None)
            if bad:
                row.update(status="failed", values=None,
                           error="non-finite values (NaN or inf) in the attribution or F(x)")
            rows.append(row)
        return rows


def generation_extra(res: Any) -> str:
    """The ``extra`` JSON of a generation row: the labels and per-token numbers of its matrix.

    ``prompt_tokens`` (the columns: the prompt's tokens, or one label per group), and
    ``generated_tokens``, ``logprobs`` (``log p(y_t | prompt, y_<t)``) and, where the method has
    them, ``baseline_logprobs`` and ``relative_gap``, one per row of the stored
    ``(generated x prompt)`` values.

    Parameters
    ----------
    res : GenerationAttribution
        The attribution of one prompt.

    Returns
    -------
    str
        The JSON text (non-finite numbers as null).
    """
    def floats(t: Any) -> list[float | None] | None:
        if t is None:
            return None
        vals = [float(v) for v in t.detach().double().reshape(-1).tolist()]
        return [v if np.isfinite(v) else None for v in vals]

    return json.dumps({"prompt_tokens": [str(s) for s in res.prompt_tokens],
                       "generated_tokens": [str(s) for s in res.generated_tokens],
                       "logprobs": floats(res.logprobs),
                       "baseline_logprobs": floats(res.baseline_logprobs),
                       "relative_gap": floats(res.relative_gap)})


def _label(label: Callable[[int], str] | None, target: int | None) -> str | None:
    if label is None or target is None:
        return None
    try:
        return str(label(target))
    except Exception:
        return None


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (item, method, target): the identity of a row, whatever the batching."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in rows:
        key = (r["item"], r["method"], r["target"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _signature(p: Prepared) -> tuple[Any, ...]:
    return (tuple(p.x.shape), p.x.dtype, None if p.baseline is None else tuple(p.baseline.shape),
            tuple(tuple(a.shape) for a in p.forward_args))


def _groups(tasks: list[Task], prepared: Mapping[int, Prepared]) -> list[list[Task]]:
    """Tasks whose inputs can be stacked, in order of first appearance."""
    groups: dict[tuple[Any, ...], list[Task]] = {}
    for t in tasks:
        groups.setdefault(_signature(prepared[t.item.item]), []).append(t)
    return list(groups.values())
