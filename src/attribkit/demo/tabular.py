"""The tabular report (``attribkit demo --task tabular``): breast-cancer MLP, features."""

from __future__ import annotations

import math
import pathlib
import time

from attribkit.demo.result import DemoResult

__all__ = ["tabular_task"]


def tabular_task(out: pathlib.Path, quiet: bool, photos: int = 3) -> DemoResult:
    """IG of three test rows and the global views of the test set (``photos`` is not used)."""
    import attribkit
    from attribkit.report import Report
    from attribkit.viz import feature_bars
    from attribkit.zoo import tabular

    del photos
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
