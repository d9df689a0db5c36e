"""``attribkit explain``: attribute a model's prediction on some inputs."""

from __future__ import annotations

import argparse
import inspect
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.cli._common import UsageError, num
from attribkit.cli.inputs import IMAGE_EXT, csv_row, read_tensor_input
from attribkit.cli.models import ZOO_MODELS, Loaded, load_model, model_dtype

__all__ = ["register"]


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


def _method_opts(name: str, steps: int | None, target: Any, baseline: Any) -> dict[str, Any]:
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
    loaded = load_model(args.model)
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


def _explain_one(loaded: Loaded, raw: str, method: str, args: argparse.Namespace,
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
            if p.suffix.lower() not in IMAGE_EXT and not p.is_file():
                raise ValueError(f"{loaded.name} explains image files; {raw[:60]!r} is not one")
            x = vision.load_image(p)
            baseline: Any = vision.black_baseline(x)
        elif loaded.kind == "tabular":
            data = loaded.extra["data"]
            row = csv_row(raw)
            if row.shape[1] != len(data.feature_names):
                raise ValueError(f"{loaded.name} takes a CSV row of {len(data.feature_names)} "
                                 f"numbers; got {row.shape[1]}")
            x = data.standardise(row)
            baseline = torch.zeros_like(x)
            names = list(data.feature_names)
        else:
            x, _kind = read_tensor_input(raw)
            baseline = None
            if x.is_floating_point():
                x = x.to(model_dtype(loaded.model))
        opts = _method_opts(method, args.steps, target, baseline)
        if "progress" in inspect.signature(get(method).fn).parameters:
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
        "output": num(attr.output.flatten()[0]) if attr.output is not None else None,
        "baseline_output": num(attr.baseline_output.flatten()[0])
        if attr.baseline_output is not None else None,
        "sum": num(attr.total().flatten()[0]),
        "gap": num(gap.flatten()[0]) if gap is not None else None,
        "relative_gap": num(rel.flatten()[0]) if rel is not None else None,
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


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
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
    e.set_defaults(func=_cmd_explain, default_methods=["integrated_gradients"])
