"""``attribkit explain``: attribute a model's prediction on some inputs.

Every method is planned before any runs (a method that cannot run on this model is refused with
a one-line reason); each result is printed and its picture written as soon as it finishes; one
method failing does not stop the others; ``report.html`` is written at the end with each
failure shown in its place; the exit code is 1 when any method failed or was refused.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any

import torch

from attribkit.cli._common import UsageError, one_line
from attribkit.cli.explain_run import Outcome, estimate_seconds, predict, run_one, save_picture
from attribkit.cli.inputs import DEFAULT_MAX_PIXELS, Item, expand
from attribkit.cli.interactions import wants_interactions
from attribkit.cli.models import ZOO_MODELS, Loaded, load_model, model_dtype
from attribkit.cli.settings import Plan, check_flags, parse_set, plan

__all__ = ["register"]

_SLOW_S = 60.0


def _methods(names: list[str]) -> tuple[list[str], set[str]]:
    """The methods to run, in order, and those named explicitly (not only through ``all``)."""
    from attribkit.methods import get, methods

    out: list[str] = []
    named: set[str] = set()
    for m in names:
        if m.lower() == "all":
            out += [n for n in methods() if n not in out]
            continue
        try:
            name = get(m).name
        except Exception as err:
            raise UsageError(one_line(err)) from err
        named.add(name)
        if name not in out:
            out.append(name)
    return out, named


def _check_args(args: argparse.Namespace) -> None:
    for flag in ("steps", "samples"):
        v = getattr(args, flag, None)
        if v is not None and v < 1:
            raise UsageError(f"--{flag} must be a positive integer, got {v}")
    if args.top < 1:
        raise UsageError(f"--top must be a positive integer, got {args.top}")
    if args.max_image_pixels < 1:
        raise UsageError(f"--max-image-pixels must be positive, got {args.max_image_pixels}")
    if args.tolerance is not None and not args.tolerance > 0:
        raise UsageError(f"--tolerance must be positive, got {args.tolerance}")
    if args.out is not None:
        out = pathlib.Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {args.out!r} is an existing file; give a folder name (it is "
                             "created if missing) or move the file away")


def _prepare(loaded: Loaded, item: Item) -> None:
    """Turn the raw input into the model's tensor (text ids, molecule features, scaled rows)."""
    if loaded.kind == "text":
        from attribkit.zoo import text

        ids, mask = text.encode([item.raw])
        item.x, item.extra["mask"] = ids, mask
    elif loaded.kind == "molecule":
        from attribkit.zoo import chem

        feats = chem.featurize(item.raw)
        dtype = model_dtype(loaded.model)
        item.x = chem.pack(feats.atoms.to(dtype), feats.pairs.to(dtype))
        mol = chem.mol_from_smiles(item.raw)
        item.extra["bonded"] = feats.bonded
        item.extra["atoms"] = [f"{a.GetSymbol()}{a.GetIdx()}" for a in mol.GetAtoms()]
    elif loaded.kind == "tabular":
        data = loaded.extra["data"]
        assert item.x is not None
        n = len(data.feature_names)
        if item.x.shape[-1] != n:
            raise ValueError(f"{item.source[:60]}: {loaded.name} wants {n} columns "
                             f"({', '.join(data.feature_names[:3])}, ...); this row has "
                             f"{item.x.shape[-1]}")
        item.x = data.standardise(item.x)
    elif item.x is not None and item.x.is_floating_point():
        item.x = item.x.to(model_dtype(loaded.model))


def _forward_seconds(loaded: Loaded, item: Item) -> float:
    """The time of one forward row (a batch of 8 copies, divided by 8)."""
    if item.x is None or loaded.kind == "text":
        return 0.0
    xs = item.x.expand(8, *item.x.shape[1:])
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            loaded.model(xs)
    except Exception:
        return 0.0
    return (time.perf_counter() - t0) / 8


class _Run:
    """The state of one ``explain`` command: output folder, results, report parts."""

    def __init__(self, args: argparse.Namespace, loaded: Loaded) -> None:
        self.args = args
        self.loaded = loaded
        self.out = pathlib.Path(args.out) if args.out else None
        self.results: list[dict[str, Any]] = []
        self.sections: list[Any] = []
        self.progress = not args.quiet and not args.json and sys.stderr.isatty()
        self.colour = sys.stdout.isatty() and not args.json

    def note(self, text: str) -> None:
        if not self.args.quiet or self.args.json:
            print(f"attribkit: {text}", file=sys.stderr, flush=True)

    def item(self, item: Item, plans: list[Plan]) -> None:
        target = self.args.target
        try:
            _cls, pred, tops = predict(self.loaded, item)
        except Exception as err:
            shape = tuple(item.x.shape) if item.x is not None else "?"
            raise RuntimeError(f"{self.loaded.name} cannot run on {item.source[:60]!r} (input "
                               f"shape {shape}): {one_line(err)}") from err
        shown: list[tuple[dict[str, Any], Any, Any]] = []
        if not self.args.json:
            print(f"{item.source[:60]}: {pred}", flush=True)
        for p in plans:
            rec, pic, res = self._one(item, p, target)
            self.results.append(rec)
            shown.append((rec, pic, res))
        self.sections.append((item, pred, tops, shown))

    def _one(self, item: Item, p: Plan, target: int | None
             ) -> tuple[dict[str, Any], Any, Outcome | None]:
        base = {"input": item.source, "name": item.name, "method": p.method, "files": []}
        if p.refused is not None:
            rec = {**base, "status": "refused", "error": p.refused,
                   "summary": f"{item.source[:50]} | {p.method} | refused: {p.refused}"}
            self._print(rec, None)
            return rec, None, None
        try:
            res = run_one(self.loaded, item, p.method, p.options, target, self.args.top,
                          self.progress)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            from attribkit.core.errors import UnsupportedModelError

            # the method's own structural check (e.g. a propagation rule meeting a functional
            # call) refuses a model before it computes anything
            status = "refused" if isinstance(err, UnsupportedModelError) else "failed"
            reason = one_line(err) if status == "refused" else \
                f"{type(err).__name__}: {one_line(err)}"
            rec = {**base, "status": status, "error": reason,
                   "summary": f"{item.source[:50]} | {p.method} | {status}: {reason}"}
            self._print(rec, None)
            return rec, None, None
        pic = None
        if self.out is not None:
            path = self.out / f"{item.name}_{p.method}.png"
            try:
                pic = save_picture(self.loaded, item, res, path)
            except Exception as err:  # a picture that fails is not a failed method
                self.note(f"could not draw {path.name}: {one_line(err)}")
            if path.is_file():
                res.record["files"].append(str(path))
        self._print(res.record, res)
        return res.record, pic, res

    def _print(self, rec: dict[str, Any], res: Outcome | None) -> None:
        if self.args.json:
            return
        print(rec["summary"], flush=True)
        if res is None:
            return
        if self.loaded.kind == "text" and self.colour and res.names is not None:
            from attribkit.viz import tokens_ansi

            print("    " + tokens_ansi(list(res.names), res.scores))
        for f in rec["top_features"]:
            label = f.get("name") or (f"box {tuple(f['box'])}" if "box" in f else f["index"])
            print(f"    {f['value']:+.4g}  {label}")
        for path in rec["files"]:
            print(f"    wrote {path}")

    def report(self) -> pathlib.Path | None:
        if self.out is None:
            return None
        from attribkit.cli.explain_report import write_report

        return write_report(self.out / "report.html", self.args.model, self.loaded,
                            self.sections)


def _cmd_explain(args: argparse.Namespace) -> int:
    _check_args(args)
    if wants_interactions(args.method):  # not an attribution: its own path (cli/interactions.py)
        from attribkit.cli.interactions import run_interactions

        return run_interactions(args, _prepare)
    methods, named = _methods(args.method)
    extra = parse_set(args.set or [])
    check_flags(methods, args, extra)
    run_: _Run | None = None
    loaded = load_model(args.model, trust_file=args.trust_model_file,
                        progress=not args.quiet and not args.json,
                        say=lambda m: print(f"attribkit: {m}", file=sys.stderr, flush=True))
    run_ = _Run(args, loaded)
    items = expand(loaded.kind, args.inputs, args.max_image_pixels)
    plans: list[tuple[Item, list[Plan]]] = []
    for item in items:
        _prepare(loaded, item)
        item_plans = [plan(m, loaded, item, args, extra) for m in methods]
        plans.append((item, item_plans))
    if run_.out is not None:
        run_.out.mkdir(parents=True, exist_ok=True)
    forward_s = _forward_seconds(loaded, items[0]) if items else 0.0
    for item, item_plans in plans:
        for p in item_plans:
            if p.refused is None:
                est = estimate_seconds(loaded, item, p.method, p.options, forward_s)
                if est > _SLOW_S:
                    run_.note(f"{p.method} on {item.name} will take about {est / 60:.0f} min "
                              "(estimated from the model evaluations it needs); settings such "
                              "as --window/--stride, --steps or --samples make it cheaper")
    for item, item_plans in plans:
        run_.item(item, item_plans)
    report = run_.report()
    # a failure, or a refusal of a method asked for by name (`-m all` skips what cannot run)
    bad = [r for r in run_.results
           if r["status"] == "failed" or (r["status"] == "refused" and r["method"] in named)]
    if args.json:
        print(json.dumps({"model": args.model, "results": run_.results,
                          "report": str(report) if report else None,
                          "exit_code": 1 if bad else 0}, indent=2))
    else:
        if report is not None:
            print(f"wrote {report}")
        if bad:
            print(f"attribkit: {len(bad)} of {len(run_.results)} results failed or were "
                  "refused (listed above)", file=sys.stderr)
        elif len(refused := [r for r in run_.results if r["status"] == "refused"]):
            print(f"attribkit: {len(refused)} methods of `-m all` do not apply to this model "
                  "(refused above)", file=sys.stderr)
    return 1 if bad else 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    e = sub.add_parser(
        "explain", help="attribute a model's prediction on some inputs",
        description="Attribute MODEL's output on each INPUT with each --method; print the top "
                    "features and the completeness gap, write one PNG per input and method and "
                    "report.html to --out. A module:callable MODEL is imported and called: it "
                    "runs your code (the current folder is importable).")
    e.add_argument("model", metavar="MODEL",
                   help="zoo name (" + ", ".join(ZOO_MODELS) + "), a TorchScript .pt or "
                        "torch.export .pt2 file, or module:callable (imports and runs your "
                        "code) returning a model")
    e.add_argument("inputs", metavar="INPUT", nargs="+",
                   help="image file or folder of images, text, SMILES, CSV row (comma-separated "
                        "numbers) or .csv file (every row), or .npy/.pt tensor file, as fits "
                        "the model")
    e.add_argument("--method", "-m", action="append", default=None,
                   help="method name or alias, or 'all' (repeatable; default "
                        "integrated_gradients); or 'interactions' on its own (--set "
                        "index=FSII --set order=2: the strongest pairs of features)")
    e.add_argument("--target", "-t", type=int, default=None,
                   help="class index to explain (default: the predicted class, which the "
                        "output names)")
    g = e.add_argument_group("method settings (passed to the methods that take them)")
    g.add_argument("--steps", type=int, default=None, help="path steps (steps=)")
    g.add_argument("--rule", default=None, help="quadrature rule, or LRP rule (rule=)")
    g.add_argument("--tolerance", type=float, default=None,
                   help="target completeness tolerance for adaptive IG (tolerance=)")
    g.add_argument("--baseline", default=None,
                   help="a number, a name (black, zeros, blur, uniform) or a .npy/.pt file "
                        "(baseline=); default black for photos, zeros otherwise")
    g.add_argument("--window", default=None,
                   help="occlusion window N or HxW (window=); default 16x16 on photos")
    g.add_argument("--stride", default=None, help="window step N or HxW (stride=); default 8")
    g.add_argument("--samples", type=int, default=None,
                   help="samples for SmoothGrad, expected gradients, Shapley (n_samples=)")
    g.add_argument("--layer", default=None,
                   help="layer name for Grad-CAM / layer attribution (layer=); default: the "
                        "last convolution for Grad-CAM")
    g.add_argument("--seed", type=int, default=None, help="random seed (seed=)")
    g.add_argument("--segments", default=None,
                   help="feature groups for occlusion, Shapley, KernelSHAP, LIME "
                        "(feature_mask=): slic[:N], felzenszwalb[:SCALE], grid:N or a .npy/.pt "
                        "file of integer ids")
    g.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help="any other method option, checked against the method's signature; "
                        "VALUE is read as int, float, true/false, JSON or text (repeatable)")
    e.add_argument("--top", type=int, default=10,
                   help="how many top features to print (image regions for photos)")
    e.add_argument("--out", "-o", default=None, help="folder for PNG files and report.html")
    e.add_argument("--json", action="store_true",
                   help="one JSON object on stdout (also for errors)")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")
    e.add_argument("--trust-model-file", action="store_true",
                   help="load a .pt2 archive even if it holds pickled entries (this can run "
                        "code from the file: only for files you trust)")
    e.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse larger images (default {DEFAULT_MAX_PIXELS:,}, Pillow's "
                        "decompression-bomb limit)")
    e.set_defaults(func=_cmd_explain, default_methods=["integrated_gradients"])
