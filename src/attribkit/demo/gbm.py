"""``attribkit demo --task gbm``: a black-box model on tabular data.

A scikit-learn gradient-boosted classifier (no gradients) is trained on the breast-cancer split
of :mod:`attribkit.zoo.tabular` and explained through its ``predict_proba`` with KernelSHAP over
the 30 columns, exact Shapley values over the 10 measurement groups (mean, error and worst of
each), and LIME; the report shows the per-row explanations, how far the methods agree, the
global view (mean ``|KernelSHAP|`` per column over test rows) and the evaluation metrics.
"""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from attribkit.demo.result import DemoResult

if TYPE_CHECKING:
    from attribkit.zoo.tabular import BreastCancerData

__all__ = ["GbmSetup", "gbm_setup", "gbm_task"]


@dataclass
class GbmSetup:
    """The trained black box and its data."""

    predict: Any
    data: BreastCancerData
    groups: Tensor
    test_accuracy: float


def gbm_setup(seed: int = 0) -> GbmSetup:
    """Train the gradient-boosted classifier (about a second) on the standardised split."""
    from sklearn.ensemble import GradientBoostingClassifier

    from attribkit.zoo import tabular

    data = tabular.breast_cancer_data()
    clf = GradientBoostingClassifier(n_estimators=100, max_depth=2, random_state=seed)
    clf.fit(data.X_train.numpy(), data.y_train.numpy())
    acc = float((clf.predict(data.X_test.numpy()) == data.y_test.numpy()).mean())
    return GbmSetup(clf.predict_proba, data, tabular.group_mask(), acc)


def gbm_task(out: pathlib.Path, quiet: bool, photos: int = 3, *, rows: int = 3,
             global_rows: int = 20) -> DemoResult:
    """Write ``out/report.html`` for the black-box tabular demo (``photos`` is not used)."""
    import attribkit
    from attribkit import evaluate
    from attribkit.evaluate import spearman
    from attribkit.report import Report
    from attribkit.viz import feature_bars
    from attribkit.zoo.tabular import GROUP_NAMES

    del photos
    t0 = time.perf_counter()
    setup = gbm_setup()
    data, f = setup.data, setup.predict
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: gradient-boosted trees (a black box), breast cancer")
    rep.text(f"scikit-learn GradientBoostingClassifier, test accuracy {setup.test_accuracy:.3f}. "
             "The model is only called through predict_proba (NumPy in, NumPy out); absent "
             "features take the training mean (0 after standardisation). Target: the predicted "
             "class.")
    x = data.X_test[:rows]
    ks = attribkit.kernel_shap(f, x, n_samples=2048, seed=0, progress=not quiet)
    grp = attribkit.shapley_values(f, x, groups=setup.groups, mode="exact", target=ks.target)
    lm = attribkit.lime(f, x, n_samples=1000, distance="l2", seed=0, target=ks.target)
    assert ks.target is not None
    ks_groups = torch.zeros((rows, len(GROUP_NAMES)), dtype=torch.float64)
    ks_groups.index_add_(1, setup.groups, ks.values.to(torch.float64))
    rho = spearman(ks.values, lm.values)
    for i in range(rows):
        c = int(ks.target[i])
        rep.heading(f"test row {i}: predicted {data.class_names[c]} "
                    f"(p = {float(ks.output[i]) if ks.output is not None else float('nan'):.3f})",
                    3)
        rep.image(feature_bars(list(data.feature_names), ks.values[i],
                               title="KernelSHAP, 2048 coalitions"), "KernelSHAP per column")
        rep.image(feature_bars(list(GROUP_NAMES), grp.extras["players"][i],
                               title="exact Shapley, 10 groups"), "exact Shapley per group")
        rep.image(feature_bars(list(data.feature_names), lm.values[i],
                               title=f"LIME, R^2 {float(lm.extras['r2'][i]):.2f}"), "LIME")
        gap = (ks_groups[i] - grp.extras["players"][i]).abs().max()
        result.rows.append({
            "row": str(i), "class": data.class_names[c],
            "sum KernelSHAP": float(ks.total()[i]),
            "max stderr": float(ks.extras["stderr"][i].max()),
            "LIME R2": float(lm.extras["r2"][i]),
            "rho(KS, LIME)": float(rho[i]),
            "max |grouped KS - exact|": float(gap),
        })
    rep.table(list(result.rows[0]), [list(r.values()) for r in result.rows])
    rep.text("KernelSHAP summed over each group is not the Shapley value of the group (a "
             "different game: the group's columns enter together), so the last column measures "
             "how much the interactions between a group's columns matter, not an error.",
             note=True)
    xs = data.X_test[:global_rows]
    glob = attribkit.kernel_shap(f, xs, n_samples=1024, seed=1, target=1)
    mean_abs = glob.values.abs().mean(0)
    rep.heading(f"Global view: mean |KernelSHAP| over {global_rows} test rows (benign)", 3)
    rep.image(feature_bars(list(data.feature_names), mean_abs, title="mean |KernelSHAP|"),
              "global importance")
    table = evaluate.compare(
        f, x, ["kernel_shap", "lime", "shapley_values", "occlusion", "random"],
        measures=("faithfulness_correlation", "pixel_flipping", "infidelity", "sparseness",
                  "complexity", "seconds"), target=ks.target, steps=30,
        method_options={"shapley_values": {"groups": setup.groups},
                        "kernel_shap": {"n_samples": 2048}, "lime": {"distance": "l2"}})
    rep.heading("Evaluation metrics (arrows: which direction is better)", 3)
    rep.raw(_markdown_table_html(table.to_markdown()))
    result.notes.append(f"metrics: best faithfulness correlation "
                        f"{table.best('faithfulness_correlation')}")
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result


def _markdown_table_html(md: str) -> str:
    """A small markdown table as HTML (cells escaped)."""
    import html

    lines = [ln for ln in md.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    cells = [[html.escape(c.strip()) for c in ln.strip("|").split("|")] for ln in lines]
    if not cells:
        return ""
    head = "".join(f"<th>{c}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
