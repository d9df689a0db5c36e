"""The zoo pages' small tables of model quality, regenerated from the models themselves.

* ``docs/zoo-tabular.md``: the breast-cancer MLP's accuracies for seeds 0-2 (``tabular-seeds``)
  and, for test row 0, IG summed over each group's three columns against exact group Shapley
  values (``tabular-row``);
* ``docs/zoo-text.md``: the sentiment heads' accuracies (``text-heads``);
* ``docs/zoo-chem.md``: the property regressors' errors (``chem-models``).

Usage: ``python benchmarks/zoo_models.py [--only tabular text chem]``. Cached models are loaded,
missing ones trained (the logP regressor takes a few minutes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import attribkit
from attribkit.core.pages import write_section

DOCS = Path(__file__).resolve().parent.parent / "docs"


def tabular() -> None:
    from attribkit.zoo import tabular as tab

    data = tab.breast_cancer_data()
    rows = ["Regenerate with: `python benchmarks/zoo_models.py --only tabular`.", "",
            "| seed | train accuracy | test accuracy |", "| --- | --- | --- |"]
    for seed in (0, 1, 2):
        model = tab.train_breast_cancer_mlp(data, seed)
        rows.append(f"| {seed} | {tab.accuracy(model, data.X_train, data.y_train):.4f} | "
                    f"{tab.accuracy(model, data.X_test, data.y_test):.4f} |")
    write_section(DOCS / "zoo-tabular.md", "tabular-seeds", "\n".join(rows))
    model, data = tab.load_breast_cancer_mlp(0)
    x = data.X_test[:1].double()
    model = model.double()
    ig = attribkit.integrated_gradients(model, x, target=0, steps=256, rule="riemann_trapezoid")
    sh = attribkit.shapley_values(model, x, target=0, groups=tab.group_mask(), mode="exact")
    with torch.no_grad():
        fx, f0 = float(model(x)[0, 0]), float(model(torch.zeros_like(x))[0, 0])
    out = ["Regenerate with: `python benchmarks/zoo_models.py --only tabular`. Test row 0, "
           f"malignant logit `F(x) = {fx:.3f}`, `F(0) = {f0:.3f}`; IG 256 trapezoid steps.", "",
           "| group | IG (summed over 3 columns) | exact Shapley |", "| --- | --- | --- |"]
    for name in tab.GROUP_NAMES:
        cols = list(tab.FEATURE_GROUPS[name])
        out.append(f"| {name} | {float(ig.values[0, cols].sum()):+.3f} | "
                   f"{float(sh.values[0, cols].sum()):+.3f} |")  # spread over the columns
    write_section(DOCS / "zoo-tabular.md", "tabular-row", "\n".join(out))
    print("\n".join([*rows, "", *out]), flush=True)


def text() -> None:
    from attribkit.zoo import text as tx

    rows = ["Regenerate with: `python benchmarks/zoo_models.py --only text`.", "",
            "| head | training tweets | held-out tweets | train accuracy | "
            "**held-out accuracy** |", "| --- | --- | --- | --- | --- |"]
    for label, kw in (("full (default, seed 0)", {}),
                      ("small (tests, seed 0)", {"n_train": 200, "n_test": 100, "cache": False})):
        h = tx.train_sentiment_head(**kw)  # type: ignore[arg-type]
        rows.append(f"| {label} | {kw.get('n_train', 3000)} | {kw.get('n_test', 1000)} | "
                    f"{h.train_accuracy:.3f} | **{h.test_accuracy:.3f}** |")
    write_section(DOCS / "zoo-text.md", "text-heads", "\n".join(rows))
    print("\n".join(rows), flush=True)


def chem() -> None:
    from attribkit.zoo import chem as ch

    rows = ["Regenerate with: `python benchmarks/zoo_models.py --only chem`.", "",
            "| property | training molecules | held-out molecules | train RMSE | held-out RMSE | "
            "held-out R^2 | training or loading time |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for prop, label in (("tpsa", "TPSA (A^2)"), ("logp", "Crippen logP")):
        t0 = time.perf_counter()
        m = ch.train_property_model(prop)
        rows.append(f"| {label} | {m.n_train} | 200 | {m.train_rmse:.2f} | {m.test_rmse:.2f} | "
                    f"{m.test_r2:.3f} | {time.perf_counter() - t0:.0f} s |")
    write_section(DOCS / "zoo-chem.md", "chem-models", "\n".join(rows))
    print("\n".join(rows), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", nargs="*", default=["tabular", "text", "chem"])
    args = ap.parse_args()
    for part in args.only:
        {"tabular": tabular, "text": text, "chem": chem}[part]()


if __name__ == "__main__":
    main()
