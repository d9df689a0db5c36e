"""The ``attribkit`` command: a thin layer over the public API.

Commands: ``explain``, ``methods``, ``demo``, ``audit``. Exit codes: 0 success; 2 bad usage (an
unknown command, option, method or model name, or an option value that cannot be right); 1 a
failure while running (a file that is missing or does not load, an input that does not fit the
model, a method that fails), with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import pathlib
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["UsageError", "main"]

ZOO_MODELS = {
    "efficientnet-lite0": "image (EfficientNet-Lite0, ImageNet; softmax of the top class)",
    "minilm-sentiment": "text (MiniLM sentiment classifier; target 1 positive, 0 negative)",
    "breast-cancer-mlp": "tabular CSV row of 30 raw measurements (sklearn breast cancer)",
}
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class UsageError(Exception):
    """The command line cannot be right (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with one line, no usage dump on stdout
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --------------------------------------------------------------------------- models and inputs


@dataclass
class _Loaded:
    """A model ready to explain and how to read its inputs."""

    model: Callable[..., Tensor]
    kind: str  # "image", "text", "tabular", "tensor"
    name: str
    baseline: Any = None
    label: Callable[[int], str] = str
    extra: dict[str, Any] = field(default_factory=dict)


class _ScriptCall:
    """A TorchScript module as a plain callable (TorchScript modules take no Python hooks)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, *args: Any) -> Tensor:
        out: Tensor = self.module(*args)
        return out


class _ExportedCall:
    """A ``torch.export`` program as a callable; row by row if its batch size is fixed."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, x: Tensor, *args: Tensor) -> Tensor:
        try:
            out: Tensor = self.module(x, *args)
            return out
        except Exception:
            if x.shape[0] <= 1:
                raise
        rows = [self.module(x[i:i + 1], *(a[i:i + 1] for a in args)) for i in range(x.shape[0])]
        return torch.cat(rows)


def _load_model(spec: str) -> _Loaded:
    key = spec.lower()
    if key in ("efficientnet-lite0", "efficientnet_lite0", "efficientnet"):
        from attribkit.zoo import vision

        return _Loaded(vision.SoftmaxModel(vision.load_efficientnet_lite0()), "image", spec,
                       baseline="zoo-black", label=vision.class_name)
    if key in ("minilm-sentiment", "minilm", "sentiment"):
        from attribkit.zoo import text

        model = text.load_sentiment_classifier()
        return _Loaded(model, "text", spec, label=lambda c: ("negative", "positive")[c])
    if key in ("breast-cancer-mlp", "breast-cancer", "tabular"):
        from attribkit.zoo import tabular

        tab_model, data = tabular.load_breast_cancer_mlp()
        return _Loaded(tab_model, "tabular", spec, label=lambda c: data.class_names[c],
                       extra={"data": data})
    path = pathlib.Path(spec).expanduser()
    if path.suffix in (".pt", ".pt2", ".pth", ".ptl") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"model file not found: {spec!r}")
        try:
            if path.suffix == ".pt2":
                m: Any = torch.export.load(str(path)).module()
            else:
                with warnings.catch_warnings():  # torch marks TorchScript deprecated
                    warnings.simplefilter("ignore", DeprecationWarning)
                    m = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        except Exception as err:
            raise RuntimeError(f"cannot load model {spec!r} ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''}); give a "
                               "TorchScript .pt, a torch.export .pt2 or module:callable") from err
        if path.suffix == ".pt2":
            return _Loaded(_ExportedCall(m), "tensor", spec)
        if isinstance(m, nn.Module):
            m.eval()
        if isinstance(m, torch.jit.ScriptModule):
            m = _ScriptCall(m)  # hooks (used by attribkit's model guard) fail on ScriptModules
        return _Loaded(m, "tensor", spec)
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec):
        mod_name, fn_name = spec.split(":")
        try:
            mod = importlib.import_module(mod_name)
            factory = getattr(mod, fn_name)
        except (ImportError, AttributeError) as err:
            raise RuntimeError(f"cannot import {spec!r}: {err}") from err
        m = factory()
        if not callable(m):
            raise RuntimeError(f"{spec!r} returned {type(m).__name__}, not a model")
        if isinstance(m, nn.Module):
            m.eval()
        return _Loaded(m, "tensor", spec)
    raise UsageError(f"unknown model {spec!r}: use a zoo name ({', '.join(ZOO_MODELS)}), a "
                     "TorchScript .pt / torch.export .pt2 file, or module:callable")


def _model_dtype(model: Any) -> torch.dtype:
    """The floating dtype of a model's parameters (float32 when it has none)."""
    inner = model.module if isinstance(model, _ScriptCall | _ExportedCall) else model
    if isinstance(inner, nn.Module):
        for prm in inner.parameters():
            if prm.is_floating_point():
                return prm.dtype
    return torch.float32


def _read_tensor_input(text: str) -> tuple[Tensor, str]:
    """An input for a model from a file: image, .npy / .pt tensor, or a CSV row."""
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() in _IMAGE_EXT:
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {text!r}")
        import numpy as np
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as img:
                a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as err:
            raise RuntimeError(f"cannot read {text!r} as an image ({err})") from err
        return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous(), "image"
    if p.suffix.lower() in (".npy", ".pt"):
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {text!r}")
        if p.suffix.lower() == ".npy":
            import numpy as np

            t = torch.from_numpy(np.load(p))
        else:
            t = torch.load(p, map_location="cpu", weights_only=True)
        return torch.as_tensor(t), "tensor"
    return _csv_row(text), "tabular"


def _csv_row(text: str) -> Tensor:
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() == ".csv":
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {text!r}")
        lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
        text = lines[-1]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"input {text[:60]!r} is neither an image, a tensor file nor a CSV "
                         "row of numbers") from err
    return torch.tensor([values], dtype=torch.float64)


# --------------------------------------------------------------------------- explain


def _top_features(values: Tensor, k: int, names: Sequence[str] | None = None
                  ) -> list[dict[str, Any]]:
    v = values.detach().double()
    flat = v.flatten()
    order = flat.abs().argsort(descending=True)[:k]
    out = []
    for i in order.tolist():
        idx = list(torch.unravel_index(torch.tensor(i), v.shape))
        entry: dict[str, Any] = {"index": [int(j) for j in idx], "value": float(flat[i])}
        if names is not None:
            entry["name"] = names[i]
        out.append(entry)
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _method_opts(name: str, steps: int | None, target: Any, baseline: Any) -> dict[str, Any]:
    import inspect

    from attribkit.methods import get

    info = get(name)
    params = inspect.signature(info.fn).parameters
    opts: dict[str, Any] = {"target": target}
    if info.needs_baseline and baseline is not None:
        opts["baseline"] = baseline
    if steps is not None and "steps" in params:
        opts["steps"] = steps
    return opts


def _cmd_explain(args: argparse.Namespace) -> int:
    from attribkit.methods import get
    from attribkit.report import Report
    from attribkit.viz import feature_bars, scale_intensity, tokens_ansi, tokens_html

    for m in args.method:
        try:
            get(m)
        except Exception as err:
            raise UsageError(str(err)) from err
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be a positive integer, got {args.steps}")
    target: Any = None if args.target is None else int(args.target)
    loaded = _load_model(args.model)
    out = pathlib.Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rep = Report(f"attribkit explain {args.model}")
    results: list[dict[str, Any]] = []
    for n_in, raw in enumerate(args.inputs):
        for method in args.method:
            rec, picture = _explain_one(loaded, raw, method, args, target)
            results.append(rec)
            if out is None:
                continue
            stem = f"input{n_in}_{get(method).name}"
            if picture is not None and loaded.kind in ("image", "tensor") and picture[1].dim() == 4:
                img, vals = picture
                from attribkit.viz import to_pil

                pic = scale_intensity(img, vals)
                to_pil(pic).save(out / f"{stem}.png")
                rec["files"].append(str(out / f"{stem}.png"))
                rep.heading(f"{raw} · {method}", 3).text(rec["summary"]).image(pic, method)
            elif loaded.kind == "text" and picture is not None:
                toks, scores = picture
                rep.heading(f"{raw} · {method}", 3).text(rec["summary"])
                rep.raw(tokens_html(toks, scores))
                if not args.json and not args.quiet:
                    print(tokens_ansi(toks, scores))
            elif picture is not None:
                names, vals = picture
                rep.heading(f"{raw} · {method}", 3).text(rec["summary"])
                fig = feature_bars(names, vals, title=method)
                fig.savefig(out / f"{stem}.png")
                rec["files"].append(str(out / f"{stem}.png"))
                rep.image(fig, method)
    if out is not None:
        rep.save(out / "report.html")
    if args.json:
        print(json.dumps({"model": args.model, "results": results,
                          "report": str(out / "report.html") if out else None}, indent=2))
    else:
        for r in results:
            print(r["summary"])
            for f in r["top_features"]:
                label = f.get("name", f["index"])
                print(f"    {f['value']:+.4g}  {label}")
        if out is not None:
            print(f"wrote {out / 'report.html'}")
    return 0


def _explain_one(loaded: _Loaded, raw: str, method: str, args: argparse.Namespace,
                 target: Any) -> tuple[dict[str, Any], Any]:
    from attribkit.methods import explain, get

    progress = not args.quiet and not args.json
    picture: Any = None
    names: Sequence[str] | None = None
    if loaded.kind == "text":
        from attribkit.zoo import text

        ex = text.explain_text(raw, method=method, target=1 if target is None else target,
                               steps=args.steps or 32, model=loaded.model,  # type: ignore[arg-type]
                               progress=progress)
        attr = ex.attribution
        names = ex.tokens
        values = ex.scores
        picture = (ex.tokens, ex.scores)
    else:
        if loaded.kind == "image":
            from attribkit.zoo import vision

            p = pathlib.Path(raw).expanduser()
            if p.suffix.lower() not in _IMAGE_EXT and not p.is_file():
                raise ValueError(f"{loaded.name} explains image files; {raw[:60]!r} is not one")
            x = vision.load_image(p)
            baseline: Any = vision.black_baseline(x)
        elif loaded.kind == "tabular":
            data = loaded.extra["data"]
            row = _csv_row(raw)
            if row.shape[1] != len(data.feature_names):
                raise ValueError(f"{loaded.name} takes a CSV row of {len(data.feature_names)} "
                                 f"numbers; got {row.shape[1]}")
            x = data.standardise(row)
            baseline = torch.zeros_like(x)
            names = list(data.feature_names)
        else:
            x, _kind = _read_tensor_input(raw)
            baseline = None
            if x.is_floating_point():
                x = x.to(_model_dtype(loaded.model))
        opts = _method_opts(method, args.steps, target, baseline)
        if "progress" in __import__("inspect").signature(get(method).fn).parameters:
            opts["progress"] = progress
        try:
            attr = explain(loaded.model, x, method=method, **opts)
        except Exception as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise RuntimeError(f"{method} failed on {raw[:60]!r} with {loaded.name}: {first}"
                               ) from err
        if attr.multi_target:
            attr = attr.for_target(0)
        values = attr.values[0]
        if loaded.kind in ("image", "tensor") and x.dim() == 4:
            if loaded.kind == "image":
                from attribkit.zoo import vision

                picture = (vision.deprocess(x), attr.values)
            else:
                picture = (x[0].clamp(0, 1), attr.values)
        elif names is not None:
            picture = (names, values)
    tgt = int(attr.target.flatten()[0]) if attr.target is not None else None
    gap = attr.gap
    rel = attr.relative_gap
    rec: dict[str, Any] = {
        "input": raw, "method": get(method).name, "target": tgt,
        "target_name": loaded.label(tgt) if tgt is not None and loaded.kind != "tensor" else None,
        "output": _num(attr.output.flatten()[0]) if attr.output is not None else None,
        "baseline_output": _num(attr.baseline_output.flatten()[0])
        if attr.baseline_output is not None else None,
        "sum": _num(attr.total().flatten()[0]),
        "gap": _num(gap.flatten()[0]) if gap is not None else None,
        "relative_gap": _num(rel.flatten()[0]) if rel is not None else None,
        "top_features": _top_features(values, args.top, names if names is not None and
                                      len(names) == values.numel() else None),
        "files": [],
    }
    gap_txt = (f"gap {rec['gap']:+.3g} ({rec['relative_gap']:.2%})"
               if rec["gap"] is not None and rec["relative_gap"] is not None
               else "gap n/a (no baseline)")
    tname = f" {rec['target_name']}" if rec["target_name"] else ""
    out_txt = f"F(x)={rec['output']:.4g}" if rec["output"] is not None else ""
    rec["summary"] = (f"{raw[:50]} | {rec['method']} | target {tgt}{tname} {out_txt} | "
                      f"sum {rec['sum']:.4g} | {gap_txt}")
    return rec, picture


# --------------------------------------------------------------------------- other commands


def _cmd_methods(args: argparse.Namespace) -> int:
    from attribkit.methods import methods

    rows: list[dict[str, Any]] = []
    for name, info in methods().items():
        rows.append({"name": name, "family": info.family, "needs_baseline": info.needs_baseline,
                     "complete": info.complete, "axioms": sorted(info.axioms),
                     "needs_module": info.needs_module, "stochastic": info.stochastic,
                     "aliases": list(info.aliases), "summary": info.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        from attribkit.methods.catalogue import markdown_table

        print(markdown_table())
        return 0
    print(f"{'method':26s} {'family':12s} {'baseline':8s} {'complete':8s} axioms")
    for r in rows:
        print(f"{r['name']:26s} {r['family']:12s} {'yes' if r['needs_baseline'] else 'no':8s} "
              f"{'yes' if r['complete'] else 'no':8s} {', '.join(r['axioms'])}")
        if args.verbose:
            alias = f" (aliases: {', '.join(r['aliases'])})" if r["aliases"] else ""
            print(f"    {r['summary']}{alias}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from attribkit.demo import TASKS, run_demo

    if args.task not in TASKS:
        raise UsageError(f"unknown demo task {args.task!r}; choose from {', '.join(TASKS)}")
    if args.photos < 1:
        raise UsageError(f"--photos must be at least 1, got {args.photos}")
    run_demo(out=args.out, task=args.task, quiet=args.quiet, photos=args.photos)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from attribkit.methods import get

    methods_: list[str] | None = None
    if args.method:
        try:
            methods_ = [get(m).name for m in args.method]
        except Exception as err:
            raise UsageError(str(err)) from err
    both = not args.axioms and not args.unification
    parts: list[str] = []
    notes: list[str] = []
    if args.axioms or both:
        try:
            from attribkit import axioms
        except ImportError:
            notes.append("axiom audit: attribkit.axioms is not available in this build")
        else:
            table = axioms.audit(methods_, progress=not args.quiet)
            parts.append(table.to_markdown())
    if args.unification or both:
        try:
            from attribkit.theory import unification
        except ImportError:
            notes.append("unification: attribkit.theory.unification is not available")
        else:
            res = unification.run_unification(methods_)
            parts.append(unification.render_markdown(res, command="attribkit audit"))
    text = "\n\n".join(parts)
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out}")
    else:
        print(text)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="attribkit",
                description="Attribution methods for PyTorch models (Integrated Gradients and "
                            "more). Exit codes: 0 ok, 2 bad usage, 1 failure.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    e = sub.add_parser("explain", help="attribute a model's prediction on some inputs",
                       description="Attribute MODEL's output on each INPUT with each --method; "
                                   "print the top features and the completeness gap, write PNG "
                                   "and report.html to --out.")
    e.add_argument("model", metavar="MODEL",
                   help="zoo name (" + ", ".join(ZOO_MODELS) + "), a TorchScript .pt or "
                        "torch.export .pt2 file, or module:callable returning a model")
    e.add_argument("inputs", metavar="INPUT", nargs="+",
                   help="image file, text, CSV row (comma-separated numbers or a .csv file), or "
                        ".npy/.pt tensor file, as fits the model")
    e.add_argument("--method", "-m", action="append", default=None,
                   help="method name or alias (repeatable; default integrated_gradients)")
    e.add_argument("--target", "-t", type=int, default=None,
                   help="class index to explain (default: the predicted class)")
    e.add_argument("--steps", type=int, default=None, help="path steps for path methods")
    e.add_argument("--top", type=int, default=10, help="how many top features to print")
    e.add_argument("--out", "-o", default=None, help="folder for PNG files and report.html")
    e.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_explain)

    m = sub.add_parser("methods", help="list the registered attribution methods",
                       description="The method registry with each method's properties.")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.add_argument("--verbose", "-v", action="store_true", help="add summaries and aliases")
    m.add_argument("--markdown", action="store_true",
                   help="the catalogue table of docs/methods.md (parameters included)")
    m.set_defaults(func=_cmd_methods)

    d = sub.add_parser("demo", help="run the demonstration and write OUT/report.html",
                       description="Seed 003's figures on EfficientNet-Lite0 (or another task): "
                                   "IG vs gradients, saturation, interior gradients, all methods, "
                                   "AOPC. Writes OUT/report.html and prints a summary.")
    d.add_argument("--out", "-o", default="out", help="output folder (default: out)")
    d.add_argument("--task", default="vision",
                   help="vision (default), toy (tiny CNN, seconds), text, tabular, chem")
    d.add_argument("--photos", type=int, default=3, help="photos explained (vision; default 3)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    d.set_defaults(func=_cmd_demo)

    a = sub.add_parser("audit", help="axiom and unification tables",
                       description="Print the axiom audit (attribkit.axioms) and the unification "
                                   "table (attribkit.theory.unification) as markdown; both by "
                                   "default.")
    a.add_argument("--axioms", action="store_true", help="only the method x axiom table")
    a.add_argument("--unification", action="store_true", help="only the unification table")
    a.add_argument("--method", "-m", action="append", default=None,
                   help="audit only this method (repeatable; default all registered)")
    a.add_argument("--out", "-o", default=None, help="write the markdown to this file")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    a.set_defaults(func=_cmd_audit)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            from attribkit import __version__

            print(f"attribkit {__version__}")
            return 0
        if args.command is None:
            raise UsageError("a command is required: explain, methods, demo or audit "
                             "(see `attribkit --help`)")
        if args.command == "explain" and args.method is None:
            args.method = ["integrated_gradients"]
        return int(args.func(args))
    except SystemExit as e:  # --help
        return int(e.code) if isinstance(e.code, int) else 0
    except UsageError as err:
        print(f"attribkit: usage error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("attribkit: interrupted", file=sys.stderr)
        return 1
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"attribkit: error: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
