"""``attribkit explain MODEL INPUT -m interactions``: which features act together.

:func:`attribkit.interactions` returns an :class:`~attribkit.core.interactions_result.Interactions`
(one value per coalition, not per input element), so ``explain`` hands ``-m interactions`` to
:func:`run_interactions` instead of its registry of attribution methods. Settings come from
``--set`` (``index=FSII``, ``order=2``, ``budget=``, ``batch_size=``) and the shared flags
(``--target``, ``--baseline`` (a number or ``zeros``), ``--seed``, ``--segments``, ``--top``).
The players are the input's features (at most 20 for the exact indices; more with
``budget=``), the ``--segments`` groups, or on photos a 4 x 4 grid of patches. For each input it
prints the strongest pairs and, with ``--out``, writes ``NAME_interactions.json`` (the top
coalitions), ``NAME_interactions_heatmap.png`` and ``NAME_interactions_bars.png``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Callable
from typing import Any

from attribkit.cli._common import UsageError, one_line
from attribkit.cli.explain_run import predict
from attribkit.cli.inputs import Item, expand
from attribkit.cli.models import Loaded, load_model
from attribkit.cli.settings import parse_set, segments_of

__all__ = ["INTERACTION_METHODS", "SETTINGS", "run_interactions", "wants_interactions"]

#: Names of ``-m`` that select this command.
INTERACTION_METHODS = ("interactions", "interaction", "shapley_interactions")
#: The ``--set`` keys it takes.
SETTINGS = ("index", "order", "budget", "batch_size", "seed", "feature_mask")


def wants_interactions(methods: list[str] | None) -> bool:
    """Whether ``-m`` asks for interactions (alone: mixing is refused by the caller)."""
    return any(m.lower().replace("-", "_") in INTERACTION_METHODS for m in methods or [])


def _baseline(text: str | None, loaded: Loaded, item: Item) -> Any:
    if text is None:
        if loaded.kind == "image" and item.x is not None:
            from attribkit.zoo import vision

            return vision.black_baseline(item.x)
        return None
    if text.strip().lower() in ("zeros", "zero"):
        return None
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--baseline {text!r}: -m interactions takes a number or 'zeros'") \
            from None


def _players(args: argparse.Namespace, extra: dict[str, Any], loaded: Loaded, item: Item) -> Any:
    spec = extra.pop("feature_mask", None) or args.segments
    if spec is not None:
        return segments_of(spec, item)
    if loaded.kind == "image" or (item.x is not None and item.x.dim() == 4):
        return segments_of("grid:4", item)  # 16 patches: 65,536 coalitions
    return None


def _record(res: Any, item: Item, top: int, feature_names: list[str] | None) -> dict[str, Any]:
    def name(p: int) -> str:
        label = res.player_name(p)
        if feature_names is not None and len(feature_names) == res.n_players:
            return feature_names[p]
        return str(label)

    err = None if res.stderr is None else res.stderr[0]
    pos = {c: i for i, c in enumerate(res.coalitions)}
    rows = []
    for size in range(1, res.order + 1):
        for players, value in res.top(top, size=size):
            idx = tuple(sorted(int(res.labels.tolist().index(p)) if res.labels is not None
                               else int(p) for p in players))
            row: dict[str, Any] = {"players": list(players), "names": [name(p) for p in idx],
                                   "value": value}
            if err is not None:
                row["stderr"] = float(err.reshape(-1, err.shape[-1])[0, pos[idx]])
            rows.append(row)
    return {"input": item.source, "name": item.name, "method": "interactions",
            "status": "ok", "index": res.index, "order": res.order, "players": res.n_players,
            "exact": res.exact, "evaluations": res.evaluations,
            "output": float(res.output.reshape(-1)[0]),
            "baseline_output": float(res.baseline_output.reshape(-1)[0]),
            "top_interactions": rows, "files": []}


def _pictures(res: Any, out: pathlib.Path, stem: str, top: int,
              names: list[str] | None) -> list[str]:
    from attribkit import viz

    files = []
    shown = None
    if names is not None and len(names) == res.n_players:
        shown = names
    if res.order >= 2:
        path = out / f"{stem}_interactions_heatmap.png"
        path.write_bytes(viz.figure_to_png(viz.interaction_heatmap(res, names=shown)))
        files.append(str(path))
    path = out / f"{stem}_interactions_bars.png"
    path.write_bytes(viz.figure_to_png(viz.interaction_bars(res, k=top, names=shown)))
    files.append(str(path))
    return files


def _report(model: str, shown: list[tuple[Any, dict[str, Any]]], top: int) -> Any:
    """One HTML page: per input, the heat map, the strongest coalitions as bars and a table."""
    from attribkit import viz
    from attribkit.report import Report

    rep = Report(f"attribkit: interactions of {model}")
    for res, rec in shown:
        how = "exact" if res.exact else f"estimated from {res.evaluations} model evaluations"
        rep.heading(str(rec["input"]))
        rep.text(f"{res.index} up to order {res.order} over {res.n_players} players ({how}); "
                 f"F(x) = {rec['output']:.4g}, F(x') = {rec['baseline_output']:.4g}. A positive "
                 "value: the players together raise the explained score beyond what their "
                 "lower-order terms give.")
        if res.order >= 2:
            rep.image(viz.interaction_heatmap(res), "pairs: heat map (diverging scale, 0 white)")
        rep.image(viz.interaction_bars(res, k=top),
                  f"the strongest coalitions of {res.order} players (at most {top})")
        rows = [[" × ".join(r["names"]), f"{r['value']:+.4g}",
                 f"± {1.96 * r['stderr']:.2g}" if "stderr" in r else "exact"]
                for r in rec["top_interactions"]]
        rep.table(["coalition", "value", "95 % interval"], rows)
    return rep


def run_interactions(args: argparse.Namespace, prepare: Callable[[Loaded, Item], None]) -> int:
    """Run ``explain ... -m interactions`` (module docstring); the exit code.

    Parameters
    ----------
    args
        The parsed ``explain`` arguments.
    prepare
        ``explain``'s conversion of a raw input into the model's tensor.
    """
    from attribkit import interactions

    others = [m for m in args.method if not wants_interactions([m])]
    if others:
        raise UsageError(f"-m interactions runs on its own (it returns interactions, not "
                         f"attributions); run -m {' -m '.join(others)} in a second command")
    extra = parse_set(args.set or [])
    unknown = sorted(set(extra) - set(SETTINGS))
    if unknown:
        raise UsageError(f"-m interactions does not take {', '.join(unknown)}; it takes "
                         f"{', '.join(SETTINGS)} (--set KEY=VALUE)")
    def say(m: str) -> None:
        print(f"attribkit: {m}", file=sys.stderr, flush=True)

    loaded = load_model(args.model, trust_file=args.trust_model_file,
                        progress=not args.quiet and not args.json, say=say)
    if loaded.kind in ("text", "molecule"):
        raise UsageError(f"-m interactions needs a tensor model; for {loaded.kind} models use "
                         "attribkit.interactions with feature groups, or "
                         "attribkit.prompt_interactions for language models")
    out = pathlib.Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    data = loaded.extra.get("data")
    feature_names = list(getattr(data, "feature_names", [])) or None
    results: list[dict[str, Any]] = []
    shown: list[tuple[Any, dict[str, Any]]] = []
    bad = 0
    for item in expand(loaded.kind, args.inputs, args.max_image_pixels):
        prepare(loaded, item)
        opts = dict(extra)
        mask = _players(args, opts, loaded, item)
        seed = opts.pop("seed", args.seed)
        _cls, pred, _tops = predict(loaded, item)
        if item.x is None:  # pragma: no cover - text and molecules are refused above
            raise UsageError(f"{item.source[:60]}: -m interactions needs a tensor input")
        try:
            res = interactions(loaded.model, item.x, target=args.target, feature_mask=mask,
                               baseline=_baseline(args.baseline, loaded, item), seed=seed,
                               progress=not args.quiet and not args.json and sys.stderr.isatty(),
                               **opts)
        except (ValueError, RuntimeError, TypeError) as err:
            bad += 1
            results.append({"input": item.source, "name": item.name, "method": "interactions",
                            "status": "failed", "error": one_line(err)})
            if not args.json:
                print(f"{item.source[:50]} | interactions | failed: {one_line(err)}")
            continue
        # a CSV's own column names first, then the model's
        names = (item.extra.get("names") or feature_names) if mask is None else None
        rec = _record(res, item, args.top, names)
        if out is not None:
            rec["files"] = _pictures(res, out, item.name, args.top, names)
            path = out / f"{item.name}_interactions.json"
            path.write_text(json.dumps(rec, indent=2))
            rec["files"].append(str(path))
            shown.append((res, rec))
        results.append(rec)
        if not args.json:
            how = "exact" if res.exact else f"estimated from {res.evaluations} evaluations"
            print(f"{item.source[:60]}: {pred}")
            print(f"{item.source[:50]} | interactions | {res.index} order {res.order}, "
                  f"{res.n_players} players, {how}")
            for row in [r for r in rec["top_interactions"] if len(r["players"]) == res.order]:
                se = f" ± {1.96 * row['stderr']:.2g}" if "stderr" in row else ""
                print(f"    {row['value']:+.4g}{se}  {' × '.join(row['names'])}")
            for f in rec["files"]:
                print(f"    wrote {f}")
    if out is not None and shown:
        page = _report(args.model, shown, args.top).save(out / "report.html")
        if not args.json:
            print(f"wrote {page}")
    if args.json:
        print(json.dumps({"model": args.model, "results": results,
                          "exit_code": 1 if bad else 0}, indent=2))
    return 1 if bad else 0
