"""Synthetic run stores in the version-1 layout, written with pyarrow directly (not by attribkit).

Used by the explorer's tests and by ``benchmarks/explorer.py``. Values are seeded blobs so that
maps look like attributions; gaps and errors are random but reproducible.
"""

from __future__ import annotations

import io
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

SMILES = ("CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CCCCC1N")
LABELS = ("cats", "dogs", "cups")
CLASSES = ("tabby cat", "golden retriever", "espresso", "rocket", "<b>bold</b> & co")
Array = np.ndarray[Any, Any]


def _atoms(smiles: str) -> int:
    return sum(ch.isalpha() and ch.upper() in "CNOSP" for ch in smiles)


def _tensor_column(values: list[Array]) -> pa.Array:
    shape = values[0].shape
    storage = pa.FixedSizeListArray.from_arrays(
        pa.array(np.stack(values).reshape(-1).astype(np.float32)), int(np.prod(shape)))
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), shape), storage)


def _picture(rng: np.random.Generator, size: int) -> tuple[Array, bytes]:
    yy, xx = np.mgrid[0:size, 0:size] / size
    cx, cy = rng.uniform(0.25, 0.75, 2)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.04)
    base = rng.uniform(0.1, 0.9, 3)
    rgb = np.clip(base[None, None, :] * 0.6 + 0.4 * blob[:, :, None] * rng.uniform(0, 1, 3),
                  0, 1)
    buf = io.BytesIO()
    Image.fromarray((rgb * 255).astype(np.uint8)).save(buf, format="PNG")
    return np.moveaxis(rgb, -1, 0).astype(np.float32), buf.getvalue()


def _map(rng: np.random.Generator, x: Array) -> Array:
    size = x.shape[-1]
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.zeros_like(x)
    for _ in range(3):
        cx, cy, s = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.choice([-1.0, 1.0, 1.0])
        out += s * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)[None] * x
    return (out + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)


def write_store(root: str | pathlib.Path, n_items: int = 20, *, kind: str = "image",
                methods: Sequence[str] = ("integrated_gradients", "saliency"), size: int = 16,
                shard: int = 500, interior: Sequence[int] = (0,), alphas: int = 8,
                failed: Sequence[int] = (), version: int = 1, seed: int = 0,
                summary: bool = True, folders: bool = False, channels: int = 3,
                inputs: bool = True) -> pathlib.Path:
    """Write a store of ``n_items`` items of ``kind`` (image, text, tabular) under ``root``;
    ``folders=True`` puts each image in a folder named after its label (``data/L/i.png``),
    and the summary holds per-item AOPC / deletion / insertion, drawn from ``seed``. Image maps
    keep the first ``channels`` channels; ``inputs=False`` stores no model inputs (the
    thumbnails stay): both keep large benchmark stores small on disk."""
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    (root / "items").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(parents=True, exist_ok=True)
    manifest = {"format": "attribkit-run", "version": version, "model": "tests:tiny", "kind": kind,
                "methods": [{"name": m, "params": {"steps": 16}} for m in methods],
                "target": None, "inputs": {"source": "synthetic", "count": n_items,
                                           "sha256": "0" * 64},
                "attribkit": "0.1.0", "torch": "2.13.0+cpu", "created": "2026-12-01T00:00:00Z"}
    (root / "manifest.json").write_text(json.dumps(manifest))
    words = ["the", "film", "was", "not", "good", "at", "all", "<script>", "brilliant", "dull"]
    names = [f"feature {j}" for j in range(8)]
    for first in range(0, n_items, shard):
        ids = list(range(first, min(n_items, first + shard)))
        items: dict[str, list[Any]] = {k: [] for k in (
            "item", "item_id", "source", "kind", "text", "tokens", "feature_names", "thumbnail",
            "input", "input_shape", "status", "error")}
        per_item: list[tuple[int, Array, str | None]] = []
        for i in ids:
            bad = i in failed
            tokens = text = thumb = None
            feats = None
            if kind == "image":
                x, thumb = _picture(rng, size)
            elif kind == "smiles":
                text = SMILES[i % len(SMILES)]
                x = rng.standard_normal(_atoms(text)).astype(np.float32)
            elif kind == "text":
                tokens = [str(w) for w in rng.choice(words, rng.integers(3, 9))]
                text = " ".join(tokens)
                x = rng.standard_normal(len(tokens)).astype(np.float32)
            else:
                x = rng.standard_normal(len(names)).astype(np.float32)
                text, feats = ",".join(f"{v:.3f}" for v in x), names
            items["item"].append(i)
            items["item_id"].append(f"photo_{i:05d}" if kind == "image" else f"row {i}")
            folder = f"{LABELS[i % len(LABELS)]}/" if folders else ""
            items["source"].append(f"data/{folder}{i}.png" if kind == "image" else f"row {i}")
            items["kind"].append(kind)
            items["text"].append(text)
            items["tokens"].append(tokens)
            items["feature_names"].append(feats)
            items["thumbnail"].append(thumb)
            items["input"].append(x.reshape(-1).tolist() if inputs else None)
            items["input_shape"].append(list(x.shape) if inputs else None)
            items["status"].append("failed" if bad else "ok")
            items["error"].append("cannot identify image file <x.png>" if bad else None)
            per_item.append((i, x[:channels] if kind == "image" else x,
                             None if bad else CLASSES[i % len(CLASSES)]))
        pq.write_table(pa.table({
            "item": pa.array(items["item"], pa.int64()),
            **{k: pa.array(items[k], pa.string()) for k in ("item_id", "source", "kind", "text",
                                                            "status", "error")},
            **{k: pa.array(items[k], pa.list_(pa.string())) for k in ("tokens",
                                                                      "feature_names")},
            "thumbnail": pa.array(items["thumbnail"], pa.binary()),
            "input": pa.array(items["input"], pa.list_(pa.float32())),
            "input_shape": pa.array(items["input_shape"], pa.list_(pa.int32())),
        }), root / "items" / f"part-{ids[0]:08d}-{ids[-1]:08d}.parquet")
        for m in methods:
            _write_results(root, m, per_item, rng, kind, ids)
    for i in interior:
        if kind == "image" and i < n_items and i not in failed:
            _write_interior(root, i, rng, size, alphas)
    if summary:
        # the layout of attribkit.runs.summary: {mean, ci: [low, high], n, ...} per statistic
        def stat(mean: float, half: float) -> dict[str, Any]:
            per = rng.normal(mean, 4 * half, n_items)
            return {"n": n_items, "mean": mean, "ci": [mean - half, mean + half], "level": 0.95,
                    "per_item": {str(i): float(per[i]) for i in range(n_items)
                                 if i not in failed}}
        (root / "summary.json").write_text(json.dumps({"version": 1, "methods": {m: {
            "params": {"steps": 16}, "abs_gap": stat(0.004, 0.001),
            "aopc": stat(0.31 + 0.1 * k, 0.03), "deletion": stat(0.22, 0.02),
            "insertion": stat(0.61, 0.04), "worst_gap": [{"item": 1, "relative_gap": 0.2}]}
            for k, m in enumerate(methods)}}))
    return root


_TYPES = {"item": pa.int64(), "target": pa.int64(), "steps_used": pa.int64(),
          **{k: pa.float64() for k in ("output", "baseline_output", "gap", "relative_gap",
                                       "error_estimate", "seconds")},
          **{k: pa.string() for k in ("item_id", "method", "params", "target_name", "status",
                                      "error", "extra")}}


def _write_results(root: pathlib.Path, method: str, per_item: list[tuple[int, Array, str | None]],
                   rng: np.random.Generator, kind: str, ids: list[int]) -> None:
    rows: dict[str, list[Any]] = {k: [] for k in (
        "item", "item_id", "method", "params", "target", "target_name", "output",
        "baseline_output", "gap", "relative_gap", "error_estimate", "steps_used", "seconds",
        "status", "error", "extra")}
    vals: list[Array] = []
    for i, x, cls in per_item:
        ok = cls is not None
        v = _map(rng, x) if kind == "image" else (x * rng.uniform(0.2, 1.0, x.shape)
                                                  ).astype(np.float32)
        out = float(rng.uniform(0.3, 0.99))
        gap = float(rng.standard_normal() * 10 ** rng.uniform(-5, -1)) if ok else None
        rows["item"].append(i)
        rows["item_id"].append(f"photo_{i:05d}" if kind == "image" else f"row {i}")
        rows["method"].append(method)
        rows["params"].append(json.dumps({"steps": 16}))
        rows["target"].append(CLASSES.index(cls) if ok else None)
        rows["target_name"].append(cls)
        rows["output"].append(out if ok else None)
        rows["baseline_output"].append(0.01 if ok else None)
        rows["gap"].append(gap)
        rows["relative_gap"].append(abs(gap) / (out - 0.01) if gap is not None else None)
        rows["error_estimate"].append(float(10 ** rng.uniform(-4, -1)) if ok else None)
        rows["steps_used"].append(16 if ok else None)
        rows["seconds"].append(0.01)
        rows["status"].append("ok" if ok else "failed")
        rows["error"].append(None if ok else "cannot identify image file <x.png>")
        rows["extra"].append(None)
        vals.append(v if ok else np.zeros_like(v))
    table = pa.table({k: pa.array(rows[k], _TYPES[k]) for k in rows})
    if kind in ("text", "smiles"):  # varying lengths: list + shape, as the spec says
        table = table.append_column("values", pa.array([v.tolist() for v in vals],
                                                       pa.list_(pa.float32())))
        table = table.append_column("values_shape", pa.array([list(v.shape) for v in vals],
                                                             pa.list_(pa.int32())))
    else:
        table = table.append_column("values", _tensor_column(vals))
    pq.write_table(table, root / "results" / f"part-{method}-{ids[0]:08d}-{ids[-1]:08d}.parquet",
                   row_group_size=32)


def _write_interior(root: pathlib.Path, i: int, rng: np.random.Generator, size: int,
                    alphas: int) -> None:
    a = np.linspace(1.0 / alphas, 1.0, alphas)
    x, _ = _picture(np.random.default_rng(i), size)
    frames = [(_map(rng, x) * (1.0 / (1.0 + 20 * ak ** 2))).astype(np.float32) for ak in a]
    scores = (1 - np.exp(-6 * a)).tolist()
    cls = CLASSES[i % len(CLASSES)]
    row = {"item": i, "item_id": f"photo_{i:05d}", "method": "interior_gradients",
           "params": json.dumps({"alphas": alphas}), "target": CLASSES.index(cls),
           "target_name": cls, "output": 0.9, "baseline_output": 0.01, "gap": None,
           "relative_gap": None, "error_estimate": None, "steps_used": alphas, "seconds": 0.1,
           "status": "ok", "error": None,
           "extra": json.dumps({"alphas": a.tolist(), "scores": scores})}
    table = pa.table({k: pa.array([v], _TYPES[k]) for k, v in row.items()})
    table = table.append_column("values", _tensor_column([np.stack(frames)]))
    pq.write_table(table, root / "results" / f"part-interior_gradients-{i:08d}-{i:08d}.parquet")
