"""``attribkit report``: the HTML report of a run store, with data-set summaries.

Per method: the distribution of completeness gaps and AOPC / deletion / insertion over the items
(mean with a 95 % confidence interval, from :func:`attribkit.runs.summary.summarise`), and the
worst items, linked to a section that shows each of them.
"""

from __future__ import annotations

import argparse
import html
import io
import math
import pathlib
import sys
from typing import Any

import numpy as np

__all__ = ["failure_groups", "register", "write_report"]

_STATS = (("relative_gap", "relative completeness gap |gap| / |F(x) - F(x')|"),
          ("abs_gap", "completeness gap |sum(a) - (F(x) - F(x'))|"),
          ("aopc", "AOPC (10 % of the features ablated; higher is better)"),
          ("deletion", "deletion area (lower is better)"),
          ("insertion", "insertion area (higher is better)"),
          ("seconds_per_item", "seconds per item"))


def _ci(stat: dict[str, Any]) -> str:
    lo, hi = stat.get("ci", [None, None])
    return "n/a" if lo is None or hi is None else f"[{lo:.4g}, {hi:.4g}]"


def _histogram(values: list[float], title: str) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.6), dpi=100)
    ax = fig.add_subplot()
    v = np.asarray([x for x in values if x is not None and math.isfinite(x) and x > 0])
    if v.size:
        ax.hist(np.log10(v), bins=min(30, max(5, v.size // 2)), color="#4a7ab5")
    ax.set_xlabel("log10 relative completeness gap")
    ax.set_ylabel("items")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _item_block(rep: Any, store: Any, res: Any, item: int, methods: list[str], kind: str
                ) -> None:
    from attribkit.cli.report_table import item_waterfall
    from attribkit.viz import scale_intensity, tokens_html

    rec = store.item(item)
    rep.raw(f'<h3 id="item-{item}">item {item}: {html.escape(str(rec["item_id"]))}</h3>')
    rep.text(f"source: {rec['source']}")
    if rec.get("status") == "failed":
        rep.text(f"failed: {rec.get('error')}", note=True)
        return
    thumb = rec.get("thumbnail")
    if thumb:
        rep.image(thumb, "input")
    for m in methods:
        rows = res[(res["item"] == item) & (res["method"] == m)]
        if not len(rows):
            continue
        r = rows.iloc[0]
        cap = f"{m}: target {r['target_name'] or r['target']}"
        if r["relative_gap"] == r["relative_gap"] and r["relative_gap"] is not None:
            cap += f", relative gap {r['relative_gap']:.2%}"
        if r["status"] != "ok":
            rep.text(f"{m} failed: {r['error']}", note=True)
            continue
        vals = store.values(item, m)
        if kind == "generation":
            rep.text(f"{cap}; its token x token map is under \"Answers, token by token\"")
        elif kind in ("image", "tensor") and thumb and vals.ndim == 3:
            from PIL import Image

            base = np.asarray(Image.open(io.BytesIO(thumb)).convert("RGB"))
            rep.image(scale_intensity(base, vals[None]), cap, width=160)
        elif rec.get("tokens") is not None:
            rep.text(cap)
            rep.raw(tokens_html(list(rec["tokens"]), vals))
        elif rec.get("feature_names") is not None or kind == "tabular":
            item_waterfall(rep, rec, r, vals, cap, m)
        else:
            rep.text(f"{cap}; values of shape {tuple(vals.shape)}")


def failure_groups(failed: Any, examples: int = 5) -> list[dict[str, Any]]:
    """The failed rows grouped by their error's first line, most frequent first.

    Parameters
    ----------
    failed : pandas.DataFrame
        ``item``, ``item_id``, ``method`` and ``error`` of each failure.
    examples : int, default 5
        Example item ids kept per error.

    Returns
    -------
    list of dict
        ``error``, ``count``, ``methods`` (sorted), ``items`` (item indices, in order) and
        ``examples`` (the first ``examples`` item ids).
    """
    groups: dict[str, dict[str, Any]] = {}
    for r in failed.itertuples():
        key = str(r.error or "unknown error").strip().splitlines()[0][:300]
        g = groups.setdefault(key, {"error": key, "count": 0, "methods": set(), "items": [],
                                    "examples": []})
        g["count"] += 1
        g["methods"].add(str(r.method))
        if int(r.item) not in g["items"]:
            g["items"].append(int(r.item))
            if len(g["examples"]) < examples:
                g["examples"].append(str(r.item_id))
    out = sorted(groups.values(), key=lambda g: (-g["count"], g["error"]))
    for g in out:
        g["methods"] = sorted(g["methods"])
    return out


def _failure_table(groups: list[dict[str, Any]]) -> str:
    rows = []
    for g in groups:
        links = ", ".join(f'<a href="#item-{i}">{html.escape(e)}</a>'
                          for i, e in zip(g["items"], g["examples"], strict=False))
        more = len(g["items"]) - len(g["examples"])
        links += f" and {more} more" if more > 0 else ""
        rows.append(f"<tr><td>{html.escape(g['error'])}</td><td>{g['count']}</td>"
                    f"<td>{html.escape(', '.join(g['methods']))}</td><td>{links}</td></tr>")
    return ("<table><caption>Failures grouped by error</caption><tr><th>error</th>"
            "<th>count</th><th>methods</th><th>examples</th></tr>" + "".join(rows) + "</table>")


def write_report(path: str | pathlib.Path, *, curves: bool = True, steps: int = 10,
                 out: str | pathlib.Path | None = None) -> pathlib.Path:
    """Summarise the store at ``path`` and write its HTML report (default ``path/report.html``)."""
    import attribkit.runs as runs
    from attribkit.report import Report
    from attribkit.runs.summary import summarise

    store = runs.open(path)
    summary = summarise(path, curves=curves, steps=steps)
    man = store.manifest
    rep = Report(f"attribkit run report: {pathlib.Path(path).name}")
    rep.table(["model", "kind", "items", "target", "created", "attribkit", "torch"],
              [[man["model"], man["kind"], man["inputs"]["count"], man["target"] or "predicted",
                man["created"], man["attribkit"], man["torch"]]])
    rep.text(f"inputs: {man['inputs']['source']}")
    res = store.results
    _ = store.items
    for problem in store.problems:  # unreadable shards: named, and left out
        print(f"attribkit: {problem}", file=sys.stderr)
        rep.text(problem, note=True)
    linked: set[int] = set()
    for name, m in summary["methods"].items():
        rep.heading(name, 2)
        rep.text(f"settings: {m['params'] or 'defaults'}; {m['ok']} ok, {m['failed']} failed")
        rows = [[label, s["n"], s["mean"], _ci(s), s["median"], s["p90"], s["max"]]
                for key, label in _STATS if (s := m.get(key)) and s.get("n")]
        rep.table(["measure", "items", "mean", "95% CI of the mean", "median", "90th pct",
                   "max"], rows)
        ok = res[(res["method"] == name) & (res["status"] == "ok")] if len(res) else res
        if len(ok) and ok["relative_gap"].notna().any():
            rep.image(_histogram(list(ok["relative_gap"].dropna()), f"{name}: completeness"),
                      "distribution of the relative completeness gap over the items")
        for key, label in (("worst_gap", "largest relative gap"),
                           ("worst_faithfulness", "lowest insertion - deletion")):
            if m.get(key):
                links = ", ".join(
                    f'<a href="#item-{d["item"]}">{html.escape(str(d["item_id"]))}</a>'
                    for d in m[key])
                rep.raw(f"<p>Worst items by {html.escape(label)}: {links}</p>")
                linked.update(d["item"] for d in m[key])
    if summary["kind"] == "tabular":
        from attribkit.cli.report_table import feature_section

        feature_section(rep, store, list(summary["methods"]))
    if summary["kind"] not in ("image", "tabular", "tensor") or not curves:
        rep.text("AOPC / deletion / insertion are computed for image, tabular and tensor "
                 "stores (text stores keep per-token scores, generation stores token x token "
                 "matrices).", note=True)
    if man["kind"] == "generation":
        from attribkit.cli.report_generation import add_answers, store_answers

        answers, left_out = store_answers(store)
        add_answers(rep, answers, left_out=left_out)
    failed = store.failed
    if len(failed):
        rep.heading("Failed", 2)
        groups = failure_groups(failed)
        rep.text(f"{len(failed)} failed (item, method) pairs, {len(groups)} distinct errors; "
                 "the first items of each are shown below.")
        rep.raw(_failure_table(groups))
        for g in groups:
            linked.update(g["items"][:5])
    if linked:
        rep.heading("Worst and failed items", 2)
        methods = list(summary["methods"])
        for item in sorted(linked):
            _item_block(rep, store, res, item, methods, summary["kind"])
    return rep.save(pathlib.Path(out) if out else pathlib.Path(path) / "report.html")


def _cmd_report(args: argparse.Namespace) -> int:
    from attribkit.cli._common import UsageError

    if args.steps < 1:
        raise UsageError(f"--steps must be a positive integer, got {args.steps}")
    written = write_report(args.store, curves=not args.no_curves, steps=args.steps, out=args.out)
    print(f"wrote {written} and {pathlib.Path(args.store) / 'summary.json'}")
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    r = sub.add_parser("report", help="summarise a run store into report.html",
                       description="Write STORE/summary.json and an HTML report: per method the "
                                   "completeness gaps and AOPC / deletion / insertion over the "
                                   "items (mean, 95%% CI), the worst items linked.")
    r.add_argument("store", metavar="STORE", help="the --out folder of `attribkit run`")
    r.add_argument("--out", "-o", default=None, help="the HTML file (default STORE/report.html)")
    r.add_argument("--steps", type=int, default=10, help="steps of each perturbation curve")
    r.add_argument("--no-curves", action="store_true",
                   help="gap statistics only (no model needed)")
    r.set_defaults(func=_cmd_report)
