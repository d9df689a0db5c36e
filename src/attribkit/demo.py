"""The demonstration behind ``attribkit demo``: seed 003's figures on a real network.

``run_demo(task="vision")`` explains EfficientNet-Lite0 on sample photos from the wheels and
writes ``out/report.html``: Integrated Gradients against gradients at the image (Figure 4),
saturation curves (Figure 2), interior gradients as a strip and an animation (Figure 3), a
comparison of every registered method on one photo, and AOPC curves (Figure 5). ``task="toy"``
runs the same pipeline on a tiny seeded CNN and synthetic images in a few seconds (for tests).
"""

from __future__ import annotations

import inspect
import math
import pathlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.core.neurons import neuron

__all__ = ["TASKS", "DemoResult", "VisionSetup", "run_demo"]

TASKS = ("vision", "text", "tabular", "chem", "toy", "language", "gbm")


@dataclass
class VisionSetup:
    """What the image pipeline needs: a model, photos and how to name and draw things."""

    model: Callable[..., Tensor]
    photos: dict[str, Tensor]
    baseline_value: float
    class_name: Callable[[int], str]
    to_image: Callable[[Tensor], np.ndarray[Any, Any]]
    saturation_photos: dict[str, Tensor]
    ig_steps: int = 32
    alphas: int = 12
    compare_steps: int = 6
    patch: int = 28
    aopc_k: int = 500
    aopc_steps: int = 10
    compare_budget_s: float = 35.0
    title: str = "attribkit demo"
    module_model: nn.Module | None = None
    """The same function built only from modules (for propagation rules), where it differs."""
    channels_last: bool = False
    """Run IG in the channels-last layout (faster for EfficientNet on CPUs; see benchmarks)."""
    experiments: bool = False
    """Add the papers' experiments of the vision task (:mod:`attribkit.experiments`)."""


@dataclass
class DemoResult:
    """What the demo produced."""

    report: pathlib.Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: str = ""


class _Stages:
    """Wall-clock and CPU seconds of each demo stage."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[float, float]] = {}
        self._name = ""
        self._t = (0.0, 0.0)

    def start(self, name: str) -> None:
        self.stop()
        self._name, self._t = name, (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        if self._name:
            self.times[self._name] = (time.perf_counter() - self._t[0],
                                      time.process_time() - self._t[1])
            self._name = ""

    def text(self) -> str:
        return ", ".join(f"{k} {w:.0f} s (cpu {c:.0f} s)" for k, (w, c) in self.times.items())


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, flush=True)


# --------------------------------------------------------------------------- set-ups


def _vision_setup(n_photos: int) -> VisionSetup:
    from attribkit.zoo import vision

    names = ["chelsea", "coffee", "rocket", "astronaut", "flower", "china"][:max(1, n_photos)]
    photos = vision.sample_photos(names)
    sat = vision.sample_photos(list(vision.PHOTOS))
    net = vision.load_efficientnet_lite0()
    return VisionSetup(model=vision.SoftmaxModel(net),
                       module_model=nn.Sequential(net, nn.Softmax(dim=-1)), photos=photos,
                       baseline_value=vision.BLACK,
                       class_name=vision.class_name, to_image=vision.deprocess,
                       saturation_photos=sat, channels_last=True, experiments=True,
                       title="attribkit demo: EfficientNet-Lite0 on ImageNet photos")


class _ToyNet(nn.Module):
    """A tiny CNN whose class 0 looks at the bright square of the synthetic images."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                                 nn.Flatten(), nn.Linear(64, 3), nn.Softmax(dim=-1))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out


def _toy_setup() -> VisionSetup:
    g = torch.Generator().manual_seed(0)
    photos = {}
    for i in range(2):
        x = torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64) * 0.3
        x[:, :, 4 + i:9 + i, 4:9] = 0.9
        photos[f"toy<{i}>"] = x
    model = _ToyNet().double().eval()
    return VisionSetup(model=model, photos=photos, baseline_value=0.0,
                       class_name=lambda c: f"class {c}",
                       to_image=lambda t: (t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255)
                       .round().astype(np.uint8),
                       saturation_photos=photos, ig_steps=8, alphas=5, compare_steps=4, patch=4,
                       aopc_k=16, aopc_steps=4, compare_budget_s=30.0,
                       title="attribkit demo (toy)")


# --------------------------------------------------------------------------- helpers


def _last_conv(model: Any) -> nn.Module | None:
    """The last ``Conv2d`` of a model (the usual Grad-CAM layer), or ``None``."""
    inner = model.model if isinstance(model, nn.Module) and hasattr(model, "model") else model
    if not isinstance(inner, nn.Module):
        return None
    convs = [m for m in inner.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def _method_options(fn: Callable[..., Any], setup: VisionSetup, x: Tensor,
                    target: Tensor, baseline: Tensor) -> dict[str, Any]:
    """Cheap options for a registered method, from the parameters its function takes."""
    from attribkit.core.coalitions import patch_group_ids

    params = inspect.signature(fn).parameters
    opts: dict[str, Any] = {"target": target}
    if "baseline" in params:
        opts["baseline"] = baseline
    for name in ("background", "reference", "references"):
        if name in params:
            opts[name] = baseline
    for name, value in (("steps", setup.compare_steps), ("n_samples", setup.compare_steps),
                        ("seed", 0)):
        if name in params:
            opts[name] = value
    if "window" in params:
        opts["window"] = (setup.patch, setup.patch)
        if "stride" in params:
            opts["stride"] = (setup.patch, setup.patch)
    if "groups" in params:  # Shapley-type: few big patches, sampled
        opts["groups"] = patch_group_ids(tuple(x.shape[1:]), (2 * setup.patch, 2 * setup.patch))
        if "mode" in params:
            opts["mode"] = "sampling"
        if "n_samples" in params:
            opts["n_samples"] = max(2, setup.compare_steps // 2)
    layer = params.get("layer")
    if layer is not None and layer.default is inspect.Parameter.empty:
        opts["layer"] = _last_conv(setup.model)
    unit = params.get("neuron")
    if unit is not None and unit.default is inspect.Parameter.empty:  # neuron_conductance
        conv = _last_conv(setup.model)
        if conv is not None:
            opts["neuron"] = neuron(conv, 0, average=True)
    if "rule" in params and "integrated" in fn.__name__:
        opts["rule"] = "adaptive"
    return opts


def _top(model: Callable[..., Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        p = model(x)
    prob, cls = p.max(dim=1)
    return cls, prob


def _saturation(model: Callable[..., Tensor], photos: Mapping[str, Tensor], value: float,
                alphas: Tensor) -> Tensor:
    """``F(x' + alpha (x - x'))`` of each photo's top class, forward passes only, ``(N, A)``."""
    x = torch.cat(list(photos.values()))
    cls, _ = _top(model, x)
    rows = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            pts = value + alphas.to(x.dtype).reshape(-1, 1, 1, 1) * (x[i:i + 1] - value)
            rows.append(model(pts)[:, cls[i]])
    return torch.stack(rows)


# --------------------------------------------------------------------------- the pipeline


def _vision_pipeline(setup: VisionSetup, out: pathlib.Path, quiet: bool) -> DemoResult:
    import attribkit
    from attribkit import viz
    from attribkit.methods import methods
    from attribkit.report import Report
    from attribkit.report.reading import read_aopc, read_gaps, read_methods

    t0 = time.perf_counter()
    progress = not quiet
    result = DemoResult(report=out / "report.html")
    rep = Report(setup.title)
    names = list(setup.photos)
    x = torch.cat([setup.photos[n] for n in names])
    baseline = torch.full_like(x, setup.baseline_value)
    cls, prob = _top(setup.model, x)
    labels = [f"{setup.class_name(int(c))} {float(p):.3f}" for c, p in zip(cls, prob, strict=True)]
    images = [setup.to_image(x[i:i + 1]) for i in range(len(names))]

    # 1. IG and interior gradients (the last alpha, 1, is the gradient at the image).
    stages = _Stages()
    stages.start("IG")
    _log(f"[1/5] Integrated Gradients on {len(names)} photos ({setup.ig_steps} adaptive steps)",
         quiet)
    ig = attribkit.integrated_gradients(setup.model, x, target=cls, baseline=baseline,
                                        steps=setup.ig_steps, rule="adaptive", progress=progress,
                                        channels_last=setup.channels_last)
    stages.start("interior")
    _log(f"[2/5] interior gradients ({setup.alphas} alphas)", quiet)
    alphas = torch.linspace(1.0 / setup.alphas, 1.0, setup.alphas, dtype=x.dtype)
    # the strip and the animation need the first photo only; the others need alpha = 1 only
    interior = attribkit.interior_gradients(setup.model, x[:1], target=cls[:1],
                                            baseline=baseline[:1], alphas=alphas,
                                            progress=progress)
    at_image = attribkit.interior_gradients(setup.model, x[1:], target=cls[1:],
                                            baseline=baseline[1:], alphas=[1.0],
                                            progress=progress) if len(names) > 1 else None
    grad = interior.gradients[:, -1]
    if at_image is not None:
        grad = torch.cat([grad, at_image.gradients[:, -1]])
    grad_attr = Attribution(values=grad * (x - baseline), inputs=x, method="gradient*input",
                            baselines=baseline, target=cls, output=ig.output,
                            baseline_output=ig.baseline_output)

    rep.heading("Integrated Gradients against gradients at the image (seed 003, Figure 4)")
    rep.text("Each picture scales the photo's pixels by their importance (eq. 1: the sum over "
             "colour channels of |attribution|), clipped at the 99th percentile. Baseline: black "
             "image. Completeness: the IG attributions of each photo sum to F(x) - F(black).")
    fig4 = viz.comparison_grid(images, {"integrated gradients": ig, "gradient at the image": grad},
                               labels=labels, panel=3.4)
    rep.image(fig4, "left to right: photo (top class, softmax score), integrated gradients, "
                    "gradients at the image; each map with its own scale", wide=True)
    rows = []
    gap, rg = ig.gap, ig.relative_gap
    assert gap is not None and rg is not None and ig.output is not None
    assert ig.baseline_output is not None
    for i, n in enumerate(names):
        rows.append({"photo": n, "class": setup.class_name(int(cls[i])),
                     "p": float(prob[i]), "F(black)": float(ig.baseline_output[i]),
                     "sum IG": float(ig.total()[i]), "gap": float(gap[i]),
                     "rel_gap": float(rg[i]),
                     "sum grad*x": float(grad_attr.total()[i])})
    rep.table(["photo", "class", "softmax", "F(black)", "sum of IG", "gap", "relative gap",
               "sum of gradient*input"],
              [[r["photo"], r["class"], r["p"], r["F(black)"], r["sum IG"], r["gap"],
                r["rel_gap"], r["sum grad*x"]] for r in rows],
              reading=read_gaps({str(r["photo"]): float(rg[i]) for i, r in enumerate(rows)}))

    # 2. Saturation curves (forward passes only, all sample photos).
    stages.start("saturation")
    _log(f"[3/5] saturation curves on {len(setup.saturation_photos)} photos", quiet)
    sat_alphas = torch.linspace(0.0, 1.0, setup.alphas + 1, dtype=x.dtype)
    sat = _saturation(setup.model, setup.saturation_photos, setup.baseline_value, sat_alphas)
    rep.heading("Saturation (seed 003, Figure 2)")
    rep.text("The top-class softmax score F(x' + α (x - x')) against α for every sample photo: "
             "it rises steeply at small α and flattens well before α = 1, so the gradient at the "
             "image itself is small.")
    rep.image(viz.saturation_curves(sat_alphas, sat, labels=list(setup.saturation_photos)),
              "softmax score of the top class along the path from black")
    rep.heading("Interior gradients (seed 003, Figure 3)")
    rep.image(viz.interior_strip(images[0], interior, index=0, title=f"{names[0]}: {labels[0]}"),
              "pixel importance of the gradient at each scaled image, and the trend of the mean "
              "|gradient| and of F(α)", wide=True)
    gif = viz.interior_gif(images[0], interior, str(out / "interior.gif"), index=0)
    rep.image(gif, f"{names[0]}: interior gradients from α = {float(alphas[0]):.2f} to 1",
              width=max(320, images[0].shape[1]))

    # 3. Every registered method on one photo.
    stages.start("all methods")
    _log("[4/5] every registered method on one photo", quiet)
    compared: dict[str, Any] = {"integrated_gradients": ig}  # row 0 of the grid: photo 0
    table: list[list[Any]] = []
    x0, b0, c0 = x[:1], baseline[:1], cls[:1]
    started = (time.perf_counter(), time.process_time())
    for name, info in methods().items():
        if name == "integrated_gradients":
            table.append([name, info.family, f"{setup.ig_steps} adaptive steps",
                          float(gap[0]), float(rg[0]), "(above)"])
            continue
        # budget in CPU seconds (2 cores) with a wall-clock cap, so a busy machine still ends
        if (time.process_time() - started[1] > 2 * setup.compare_budget_s
                or time.perf_counter() - started[0] > 2 * setup.compare_budget_s):
            result.notes.append(f"{name}: skipped (comparison time budget spent)")
            table.append([name, info.family, "skipped: time budget", "", "", ""])
            continue
        t = time.perf_counter()
        try:
            opts = _method_options(info.fn, setup, x0, c0, b0)
            if not info.needs_baseline:
                opts.pop("baseline", None)
            model = (setup.module_model if info.needs_module and setup.module_model is not None
                     else setup.model)
            a = info.fn(model, x0, **opts)
        except Exception as err:  # a method that cannot run here is noted, not fatal
            msg = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            result.notes.append(f"{name}: skipped ({type(err).__name__}: {msg})")
            table.append([name, info.family, f"skipped: {msg}", "", "", ""])
            continue
        dt = time.perf_counter() - t
        if a.multi_target:
            a = a.for_target(0)
        # the gap is shown only for methods that claim completeness; a layer method's values
        # live at the layer (not drawn over the photo)
        if a.values.shape[-2:] == x0.shape[-2:]:
            compared[name] = a if info.complete else a.values
        g, r = (a.gap, a.relative_gap) if info.complete else (None, None)
        table.append([name, info.family, ", ".join(f"{k}={v}" for k, v in opts.items()
                                                    if k in ("steps", "n_samples", "window",
                                                             "mode")),
                      float(g[0]) if g is not None else "", float(r[0]) if r is not None else "",
                      f"{dt:.1f} s"])
    rep.heading(f"All registered methods on {names[0]}")
    rep.image(viz.comparison_grid(images[:1], compared, labels=labels[:1], panel=3.0,
                                  max_columns=4),
              "each method's pixel importance (eq. 1) with its scale, and its completeness gap "
              "where it has a baseline", wide=True)
    skipped = {r[0]: str(r[2]) for r in table if str(r[2]).startswith("skipped")}
    rep.table(["method", "family", "settings", "gap", "relative gap", "time"], table,
              reading=read_methods(len(table) - len(skipped), skipped,
                                   {r[0]: r[4] for r in table if isinstance(r[4], float)}))

    # 4. AOPC.
    per_photo: dict[str, Tensor]
    stages.start("AOPC")
    _log("[5/5] AOPC (pixel ablation)", quiet)
    rep.heading("AOPC: pixel ablation (seed 003, Figure 5)")
    try:
        from attribkit import evaluate
    except ImportError:
        evaluate = None  # type: ignore[assignment]
    per_photo = {}
    if evaluate is None or not hasattr(evaluate, "ablation_curve"):
        result.notes.append("AOPC: attribkit.evaluate is not available; nothing computed")
        rep.text("attribkit.evaluate is not available in this build: AOPC not computed.",
                 note=True)
    else:
        gen = torch.Generator().manual_seed(0)
        candidates = {"integrated gradients": ig.values, "gradient at the image": grad,
                      "random": torch.rand(x.shape, generator=gen, dtype=x.dtype)}
        curves: dict[str, Any] = {}
        aopcs: dict[str, float] = {}
        xs: Any = None
        for m, vals in candidates.items():
            c = evaluate.ablation_curve(setup.model, x, vals, k=setup.aopc_k,
                                        steps=setup.aopc_steps, target=cls, baseline=baseline,
                                        progress=progress)
            curves[m] = c.aopc_per_example
            per_photo[m] = c.aopc_per_example[:, -1]
            aopcs[m] = c.aopc
            xs = c.counts
        rep.text(f"The top {setup.aopc_k} pixels (by eq. 1) are set to black at each step, "
                 f"{setup.aopc_steps} steps; AOPC after k steps is the mean drop of the top-class "
                 "score over steps 0..k, averaged over the photos (band: one standard error).")
        rep.image(viz.evaluation_curves(curves, x=xs, xlabel="pixels removed"),
                  "AOPC: higher means the attribution found the pixels the score depends on")
        rep.table(["attribution", "AOPC"], [[m, v] for m, v in aopcs.items()],
                  reading=read_aopc(aopcs))
        for i, row in enumerate(rows):  # each photo's own AOPC (the mean is in the report)
            row["AOPC IG"] = float(per_photo["integrated gradients"][i])
            row["AOPC grad"] = float(per_photo["gradient at the image"][i])
    if setup.experiments:  # the papers' experiments (attribkit.experiments), demo budget
        stages.start("experiments")
        _log("[+] the papers' experiments", quiet)
        from attribkit.experiments import add_to_report

        result.notes.extend(add_to_report(rep, "vision", setup, quick=True, progress=progress))
    rep.heading("Per photo")
    for i, n in enumerate(names):
        results = {m: {"AOPC": float(v[i])} for m, v in per_photo.items()}
        rep.input_section(n, images[i], {"integrated gradients": ig, "gradient x input": grad_attr},
                          prediction=labels[i], index=i, gif=gif if i == 0 else None,
                          results=results or None)
    if result.notes:
        rep.heading("Notes")
        for note in result.notes:
            rep.text(note, note=True)
    stages.stop()
    result.seconds = time.perf_counter() - t0
    result.timings = stages.text()
    rep.text(f"Generated by attribkit {attribkit.__version__} in {result.seconds:.0f} s "
             f"({result.timings}).")
    rep.save(result.report)
    result.rows = rows
    return result


# --------------------------------------------------------------------------- other tasks

DEMO_TEXTS = (
    "I love this phone, the battery lasts all day!",
    "Worst service ever, I am never coming back.",
    "The movie was not bad at all.",
)
DEMO_SMILES = ("OC(=O)c1ccccc1N", "CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1O")


def _text_task(out: pathlib.Path, quiet: bool) -> DemoResult:
    from attribkit.report import Report
    from attribkit.viz import tokens_ansi, tokens_html
    from attribkit.zoo import text

    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: MiniLM sentiment, token attributions")
    rep.text("Integrated Gradients at the word-embedding layer from the [PAD] baseline, and "
             "gradient x input, for the positive class. Green tokens push towards positive, "
             "red towards negative.")
    _log("[1/1] loading the MiniLM sentiment classifier (trains its head once, then cached)",
         quiet)
    model = text.load_sentiment_classifier()
    for sentence in DEMO_TEXTS:
        ex = text.explain_text(sentence, steps=48, model=model, progress=not quiet)
        attr = ex.attribution
        gap, rg = attr.gap, attr.relative_gap
        p_pos = float(attr.output[0]) if attr.output is not None else math.nan
        rep.heading(sentence, 3)
        rep.raw(tokens_html(ex.tokens, ex.scores, title="integrated gradients"))
        row = {"text": sentence[:30], "F(x)": p_pos,
               "sum IG": float(attr.total()[0]),
               "gap": float(gap[0]) if gap is not None else math.nan,
               "rel_gap": float(rg[0]) if rg is not None else math.nan}
        try:
            gx = text.explain_text(sentence, method="gradient_x_input", model=model)
            rep.raw(tokens_html(gx.tokens, gx.scores, title="gradient x input"))
            row["sum grad*x"] = float(gx.attribution.total()[0])
        except Exception as err:
            result.notes.append(f"gradient_x_input on text: {str(err).splitlines()[0][:120]}")
        rep.table(["word", "IG"], [[w, v] for w, v in ex.words()])
        result.rows.append(row)
        if not quiet:
            print(tokens_ansi(ex.tokens, ex.scores))
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result


def _tabular_task(out: pathlib.Path, quiet: bool) -> DemoResult:
    import attribkit
    from attribkit.report import Report
    from attribkit.viz import feature_bars
    from attribkit.zoo import tabular

    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: breast-cancer MLP, feature attributions")
    model, data = tabular.load_breast_cancer_mlp()
    x = data.X_test[:3]
    rep.text(f"MLP test accuracy {data.test_accuracy:.3f}. Integrated Gradients from the "
             "training mean (zero after standardisation), target: the predicted class.")
    ig = attribkit.integrated_gradients(model, x, steps=64, progress=not quiet)
    gap, rg = ig.gap, ig.relative_gap
    assert gap is not None and rg is not None and ig.target is not None
    for i in range(x.shape[0]):
        c = int(ig.target[i])
        rep.heading(f"test row {i}: predicted {data.class_names[c]}", 3)
        rep.image(feature_bars(list(data.feature_names), ig.values[i],
                               title=f"IG, gap {float(gap[i]):+.2g}"), "top 15 features")
        result.rows.append({"row": str(i), "class": data.class_names[c],
                            "F(x)": float(ig.output[i]) if ig.output is not None else math.nan,
                            "sum IG": float(ig.total()[i]), "gap": float(gap[i]),
                            "rel_gap": float(rg[i])})
    rep.heading("The whole test set: global views", 2)
    everyone = attribkit.integrated_gradients(model, data.X_test, steps=64)
    rep.global_views(everyone, data.X_test, list(data.feature_names), dependence="top", top=12)
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result


def _chem_task(out: pathlib.Path, quiet: bool) -> DemoResult:
    from attribkit.report import Report
    from attribkit.viz import molecule_image

    try:
        from attribkit.zoo import chem
    except ImportError as err:
        raise InputError(f"the chem task needs attribkit.zoo.chem and RDKit ({err}).") from err
    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: molecules, atom attributions (TPSA model)")
    _log("[1/1] loading the TPSA graph-convolution model (trained once, then cached)", quiet)
    model = chem.load_property_model("tpsa")
    for smi in DEMO_SMILES:
        expl = chem.explain_molecule(model, smi, steps=32)
        per_atom = expl.per_atom(include_pairs=True)
        exact = chem.exact_contributions(smi, "tpsa")
        r = chem.pearson(per_atom, exact)
        rep.heading(smi, 3)
        rep.image(molecule_image(smi, per_atom, legend="IG per atom"), "IG per atom")
        rep.image(molecule_image(smi, exact, legend="exact TPSA contributions"), "exact")
        result.rows.append({"smiles": smi, "sum": float(expl.total),
                            "gap": float(expl.total) - float(getattr(expl, "delta", math.nan)),
                            "pearson vs exact": float(r)})
    from attribkit.experiments import add_to_report  # the papers' chemistry experiments

    result.notes.extend(add_to_report(rep, "chem", None, quick=True, progress=not quiet))
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result


def _print_summary(result: DemoResult) -> None:
    if result.rows:
        keys = list(result.rows[0])
        print("  ".join(f"{k:>12.12s}" for k in keys))
        for r in result.rows:
            print("  ".join(f"{v:>12.4g}" if isinstance(v, float) else f"{v!s:>12.12s}"
                            for v in r.values()))
    for note in result.notes:
        print(f"note: {note}")
    if result.timings:
        print(f"stages: {result.timings}")
    print(f"wrote {result.report} in {result.seconds:.1f} s (cpu {time.process_time():.0f} s)")


def run_demo(out: str | pathlib.Path = "out", *, task: str = "vision", quiet: bool = False,
             photos: int = 3, summary: bool = True) -> DemoResult:
    """Run the demonstration and write ``<out>/report.html``.

    Parameters
    ----------
    out : str or pathlib.Path, default "out"
        Output folder (created).
    task : str, default "vision"
        ``"vision"`` (EfficientNet-Lite0), ``"toy"`` (a tiny CNN, seconds; for tests), or
        ``"text"`` / ``"tabular"`` / ``"chem"`` where those zoo models are installed, or
        ``"gbm"`` (gradient-boosted trees explained as a black box; scikit-learn).
    quiet : bool, default False
        No progress bars or step messages.
    photos : int, default 3
        How many photos the vision task explains.
    summary : bool, default True
        Print the summary table.

    Returns
    -------
    DemoResult
        The report path, the summary rows and notes.
    """
    if task not in TASKS:
        raise InputError(f"unknown demo task {task!r}; choose from {', '.join(TASKS)}.")
    outdir = pathlib.Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    if task in ("vision", "toy"):
        setup = _vision_setup(photos) if task == "vision" else _toy_setup()
        result = _vision_pipeline(setup, outdir, quiet)
    elif task == "text":
        result = _text_task(outdir, quiet)
    elif task == "tabular":
        result = _tabular_task(outdir, quiet)
    elif task == "language":  # seed 003 section 3.2 and explain_generation (demo_language.py)
        from attribkit.demo_language import language_task

        result = language_task(outdir, quiet)
    elif task == "gbm":  # a black box: gradient-boosted trees (attribkit.demo_gbm)
        from attribkit.demo_gbm import run_gbm_task

        result = run_gbm_task(outdir, quiet)
    else:
        result = _chem_task(outdir, quiet)
    if summary:
        _print_summary(result)
    return result


