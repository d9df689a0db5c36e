"""Live mode: explain an uploaded image, a typed sentence or a CSV row, and keep it in the store.

Work runs in one background thread, one job at a time (a model is not assumed thread-safe); the
page polls ``/api/live/jobs/{id}`` for the stage and the fraction done. Uploads arrive already
bounded in size (see ``app.py``); images are decoded with Pillow's decompression-bomb check
raised as an error.
"""

from __future__ import annotations

import inspect
import io
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from attribkit.core.saving import finite
from attribkit.serve.append import LiveResult, write_item, write_result
from attribkit.serve.store import RunStore

__all__ = ["Job", "JobRunner", "LiveModel", "UploadError", "decode_image"]


class UploadError(ValueError):
    """An upload that cannot be used (too large, not an image, wrong kind); said in one line."""


class LiveModel(Protocol):
    """What live mode needs of a loaded model (``attribkit.cli.models.Loaded`` fits)."""

    @property
    def model(self) -> Callable[..., torch.Tensor]:
        """The model."""

    @property
    def kind(self) -> str:
        """``image`` (zoo), ``text`` (zoo), ``tabular`` (zoo) or ``tensor``."""

    @property
    def name(self) -> str:
        """The model spec, for messages."""

    @property
    def label(self) -> Callable[[int], str]:
        """Class index -> class name."""

    @property
    def extra(self) -> dict[str, Any]:
        """Kind-specific extras (the tabular data set)."""


@dataclass
class Job:
    """A live explanation in progress (what the page polls)."""

    id: str
    what: str
    state: str = "queued"  # queued, running, done, failed
    stage: str = "waiting for the model"
    progress: float = 0.0
    item: int | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        """The job as JSON for the page."""
        return {"id": self.id, "what": self.what, "state": self.state, "stage": self.stage,
                "progress": round(self.progress, 3), "item": self.item, "error": self.error,
                "elapsed": round(time.time() - self.started, 2)}


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode an uploaded image; a decompression bomb or an unreadable file is an UploadError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > max_pixels:
                raise UploadError(f"the image is {img.width} x {img.height} pixels, more than the "
                                  f"limit of {max_pixels}; send a smaller picture.")
            img.load()
            return img.convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise UploadError(f"the image is too large to decode safely ({err}); send a "
                              "smaller picture.") from err
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            if isinstance(err, UploadError):
                raise
            raise UploadError("the upload is not an image Pillow can read (PNG, JPEG, ...).") \
                from err


def _dtype(model: Any) -> torch.dtype:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype
    return torch.float32


def _thumb(img: Image.Image) -> bytes:
    t = img.copy()
    t.thumbnail((256, 256))
    buf = io.BytesIO()
    t.save(buf, format="PNG")
    return buf.getvalue()


def method_options(method: str, *, steps: int | None, target: int | None,
                   baseline: Any, model: Any = None, layer: str | None = None) -> dict[str, Any]:
    """Keyword options of ``attribkit.explain`` that ``method`` accepts.

    A method that needs a layer (Grad-CAM) gets ``layer`` (a name of ``model.named_modules()``,
    as the store's manifest records it) or else the model's last convolution, as a run does.
    """
    from attribkit.methods.registry import get
    from attribkit.runs.checks import MethodError, last_convolution

    info = get(method)
    params = inspect.signature(info.fn).parameters
    opts: dict[str, Any] = {"target": target}
    if "layer" in params and (layer or params["layer"].default is inspect.Parameter.empty):
        name = layer or last_convolution(model)
        if name is None or not isinstance(model, torch.nn.Module):
            raise MethodError(f"{info.name} needs a layer and the model has no convolution")
        opts["layer"] = model.get_submodule(name)
    if info.needs_baseline and baseline is not None:
        opts["baseline"] = baseline
    if steps is not None and "steps" in params:
        opts["steps"] = steps
    return opts


class JobRunner:
    """Runs live explanations one at a time and appends them to the store.

    Parameters
    ----------
    store : RunStore
        Where results go.
    loaded : LiveModel
        The model and how to read its inputs.
    max_pixels : int
        The largest image (width x height) accepted.
    """

    def __init__(self, store: RunStore, loaded: LiveModel, max_pixels: int) -> None:
        self.store = store
        self.loaded = loaded
        self.max_pixels = max_pixels
        self.jobs: dict[str, Job] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attribkit-live")
        self._lock = threading.Lock()

    def submit(self, what: str, work: Callable[[Job], None]) -> Job:
        """Queue ``work(job)``; the job records its stage, progress and outcome."""
        job = Job(uuid.uuid4().hex, what)
        with self._lock:
            self.jobs[job.id] = job
            while len(self.jobs) > 200:
                self.jobs.pop(next(iter(self.jobs)))

        def run() -> None:
            job.state = "running"
            try:
                work(job)
                job.state, job.progress, job.stage = "done", 1.0, "done"
            except Exception as err:  # reported to the page in one line
                job.state = "failed"
                job.error = str(err).splitlines()[0] if str(err) else type(err).__name__
                traceback.print_exc()
        self._pool.submit(run)
        return job

    def shutdown(self) -> None:
        """Stop taking jobs (running ones finish)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ inputs
    def prepare(self, input_kind: str, data: bytes) -> dict[str, Any]:
        """Turn an upload into a model input and what to store for viewing (in the request)."""
        kind = self.loaded.kind
        if input_kind == "image":
            if kind not in ("image", "tensor"):
                raise UploadError(f"the model {self.loaded.name} takes {kind} inputs, not images.")
            img = decode_image(data, self.max_pixels)
            if kind == "image":
                from attribkit.zoo import vision

                x = vision.preprocess(img)
                shown = Image.fromarray(vision.deprocess(x))
                return {"x": x, "baseline": vision.black_baseline(x), "thumbnail": _thumb(shown),
                        "kind": "image", "text": None, "names": None}
            h, w = self._image_size()
            arr = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
            x = torch.from_numpy(arr / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous()
            return {"x": x.to(_dtype(self.loaded.model)), "baseline": None,
                    "thumbnail": _thumb(img), "kind": "image", "text": None, "names": None}
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise UploadError("the text is not UTF-8.") from err
        if not text:
            raise UploadError("the text is empty.")
        if input_kind == "text":
            if kind != "text":
                raise UploadError(f"the model {self.loaded.name} takes {kind} inputs, not text.")
            return {"x": None, "text": text, "kind": "text", "thumbnail": None, "names": None,
                    "baseline": None}
        if input_kind == "row":
            try:
                row = [float(v) for v in text.splitlines()[-1].split(",")]
            except ValueError as err:
                raise UploadError("a CSV row is comma-separated numbers.") from err
            x = torch.tensor([row], dtype=torch.float64)
            names = None
            if kind == "tabular":
                data_ = self.loaded.extra["data"]
                if len(row) != len(data_.feature_names):
                    raise UploadError(f"{self.loaded.name} takes {len(data_.feature_names)} "
                                      f"numbers; got {len(row)}.")
                x, names = data_.standardise(x), list(data_.feature_names)
            elif kind != "tensor":
                raise UploadError(f"the model {self.loaded.name} takes {kind} inputs, not rows.")
            else:
                x = x.to(_dtype(self.loaded.model))
            return {"x": x, "baseline": torch.zeros_like(x), "kind": "tabular", "text": text,
                    "names": names, "thumbnail": None}
        raise UploadError("input kind must be image, text or row.")

    def _image_size(self) -> tuple[int, int]:
        """The stored image inputs' height and width (224 x 224 when the store has none)."""
        items = self.store.items
        for i in items["item"][items["status"] == "ok"].head(1):
            x = self.store.model_input(int(i))
            if x is not None and x.ndim >= 3:
                return int(x.shape[-2]), int(x.shape[-1])
        return 224, 224

    def _layer(self, method: str) -> str | None:
        """The layer the store's manifest names for ``method`` (``grad_cam:layer=...``)."""
        for entry in self.store.manifest.get("methods", []):
            if isinstance(entry, dict) and entry.get("name") == method:
                layer = (entry.get("params") or {}).get("layer")
                return layer if isinstance(layer, str) else None
        return None

    # ------------------------------------------------------------------ work
    def explain_upload(self, job: Job, prepared: dict[str, Any], methods: list[str],
                       steps: int | None, target: int | None, name: str) -> None:
        """Explain a prepared upload with each method and append the item to the store."""
        from attribkit.methods.registry import explain, get

        results: list[LiveResult] = []
        tokens: list[str] | None = None
        x = prepared["x"]
        for k, method in enumerate(methods):
            job.stage, job.progress = f"{get(method).name} ({k + 1} of {len(methods)})", \
                k / (len(methods) + 1)
            t0 = time.perf_counter()
            if prepared["kind"] == "text":
                from attribkit.zoo import text as ztext

                ex = ztext.explain_text(prepared["text"], method=method,
                                        target=1 if target is None else target,
                                        steps=steps or 32, model=self.loaded.model)  # type: ignore[arg-type]
                attr, tokens, values = ex.attribution, list(ex.tokens), ex.scores
            else:
                attr = explain(self.loaded.model, x, method=method,
                               **method_options(method, steps=steps, target=target,
                                                baseline=prepared["baseline"],
                                                model=self.loaded.model,
                                                layer=self._layer(get(method).name)))
                if attr.multi_target:
                    attr = attr.for_target(0)
                values = attr.values[0]
            results.append(_result(get(method).name, attr, values, self.loaded.label,
                                   time.perf_counter() - t0, steps))
        job.stage, job.progress = "writing to the store", len(methods) / (len(methods) + 1)
        item = self.store.next_item()
        model_input = None if x is None else x[0].detach().cpu().float().numpy()
        write_item(self.store.root, item, item_id=name, source="live upload",
                   kind=prepared["kind"], text=prepared["text"], tokens=tokens,
                   feature_names=prepared["names"], thumbnail=prepared["thumbnail"],
                   model_input=model_input)
        for r in results:
            write_result(self.store.root, item, name, r)
        self.store.reload()
        job.item = item

    def interior(self, job: Job, item: int, target: int | None, alphas: int = 24) -> None:
        """Compute interior gradients of a stored image item and append them."""
        from attribkit.methods.integrated import interior_gradients

        x_np = self.store.model_input(item)
        if x_np is None:
            raise UploadError(f"item {item} has no stored input to compute interior gradients.")
        x = torch.from_numpy(x_np).unsqueeze(0).to(_dtype(self.loaded.model))
        baseline = None
        if self.loaded.kind == "image":
            from attribkit.zoo import vision

            baseline = vision.black_baseline(x)
        job.stage, job.progress = f"{alphas} gradients along the path", 0.1
        t0 = time.perf_counter()
        a = torch.linspace(1.0 / alphas, 1.0, alphas, dtype=x.dtype)
        ig = interior_gradients(self.loaded.model, x, target=target, baseline=baseline, alphas=a)
        job.stage, job.progress = "writing to the store", 0.9
        item_id = str(self.store.item_record(item)["item_id"])
        write_result(self.store.root, item, item_id, LiveResult(
            "interior_gradients", ig.gradients[0].detach().float().numpy(), target,
            self.loaded.label(target) if target is not None else None,
            seconds=time.perf_counter() - t0, params={"alphas": alphas},
            extra={"alphas": ig.alphas.tolist(), "scores": ig.scores[0].tolist()}))
        self.store.reload()
        job.item = item


def _result(method: str, attr: Any, values: Any, label: Callable[[int], str], seconds: float,
            steps: int | None) -> LiveResult:
    def first(t: Any) -> float | None:
        return None if t is None else finite(t.flatten()[0])

    tgt = None if attr.target is None else int(attr.target.flatten()[0])
    params = {k: v for k, v in dict(attr.params).items()
              if isinstance(v, int | float | str | bool) or v is None}
    steps_used = params.get("steps_used", params.get("steps", steps))
    return LiveResult(method, np.asarray(torch.as_tensor(values).detach().cpu().float().numpy()),
                      tgt, label(tgt) if tgt is not None else None, first(attr.output),
                      first(attr.baseline_output), first(attr.gap), first(attr.relative_gap),
                      first(attr.error_estimate),
                      int(steps_used) if isinstance(steps_used, int | float) else None,
                      seconds, params)
