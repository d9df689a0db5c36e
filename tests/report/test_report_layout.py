"""The report's layout: page width, photo sizes, readings of tables, global views."""

from __future__ import annotations

import re

import numpy as np
import torch

from attribkit.core.attribution import Attribution
from attribkit.report import Report
from attribkit.report.reading import read_aopc, read_gaps, read_methods


def test_photos_are_at_least_320_px_and_grids_use_the_width() -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    attr = Attribution(values=torch.ones_like(x), inputs=x, method="ig",
                       output=torch.tensor([20.0]), baseline_output=torch.tensor([0.0]))
    rep = Report("t").photo(x, "tiny photo")
    rep.input_section("one", x, {"ig": attr}, prediction="cat 0.9")
    s = rep.to_html()
    assert re.search(r'<img [^>]*width="320" class="px"', s)  # 16 px enlarged, unsmoothed
    assert s.count('<figure class="wide">') == 1  # the input section's grid
    assert "max-width:1500px" in s
    assert '<p class="reading">' in s and "complete within 5%" in s  # gap 300 %: not complete


def test_readings_say_what_the_numbers_mean() -> None:
    close = read_aopc({"integrated gradients": 0.11, "random": 0.10})
    assert "comes close" in close and "says little" in close
    below = read_aopc({"integrated gradients": 0.05, "gradient": 0.07, "random": 0.08})
    assert below.startswith("The best ranking here is random") and "cannot tell" in below
    above = read_aopc({"integrated gradients": 0.30, "random": 0.10})
    assert "well above" in above and "3.0 times" in above
    assert read_aopc({"random": 0.1}) == ""
    ok = read_gaps({"a": 0.001, "b": 0.02})
    assert ok.startswith("Completeness holds within 5% for every row") and "b" in ok
    bad = read_gaps({"a": 0.001, "b": 0.2})
    assert bad.startswith("1 of 2 rows") and "20.0% (b)" in bad and "tolerance=" in bad
    m = read_methods(15, {"lrp": "skipped: needs a module"}, {"ig": 0.01, "deeplift": 0.0})
    assert m.startswith("15 methods ran") and "1 did not (lrp)" in m and "within 5%" in m


def test_global_views_add_three_figures_and_a_reading() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    a = x * np.array([3.0, 1.0, 0.5, 0.1])
    s = Report("t").global_views(a, x, ["w", "x", "y", "z"], dependence="top").to_html()
    assert s.count("<img") == 3
    assert "30 examples, w has the largest mean |a|" in s
