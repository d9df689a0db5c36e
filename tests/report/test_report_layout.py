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


def test_contents_list_links_every_section_and_summary_comes_first() -> None:
    rep = Report("t").heading("First part").text("a").heading("Detail", 3)
    rep.heading("First part").table(["x"], [[1]], "labelled")  # a repeated title: its own anchor
    rep.summary(["photo", "AOPC"], [["cat", 0.5]], caption="each photo")
    s = rep.to_html()
    nav = s[s.index('<nav class="toc"'):s.index("</nav>")]
    assert re.findall(r'href="#([^"]+)"', nav) == ["summary", "first-part", "detail",
                                                  "first-part-2"]
    assert s.index('id="summary"') < s.index('id="first-part"')
    assert "<caption>labelled</caption>" in s and "<caption>each photo</caption>" in s
    assert "<nav" not in Report("one").heading("only").to_html()  # one section: no list


def test_photos_are_webp_and_line_art_png() -> None:
    import base64
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    from attribkit.report import data_uri

    rng = np.random.default_rng(0)
    photo = (rng.random((224, 224, 3)) * 255).astype(np.uint8)
    uri = data_uri(photo)
    assert uri.startswith("data:image/webp;base64,")
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert back.shape == photo.shape
    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1, 0])
    assert data_uri(fig).startswith("data:image/png;base64,")
    assert data_uri(photo, photo=False).startswith("data:image/png;base64,")


def test_saturation_reading_comes_from_the_curves() -> None:
    from attribkit.report.reading import read_saturation

    a = np.linspace(0, 1, 11)
    flat = 1 - np.exp(-30 * a)  # saturated by alpha 0.2
    rising = a  # linear all the way
    s = read_saturation(a, [flat, rising, flat], ["cat", "dog", "car"])
    assert "1 of 3 still rise near α = 1" in s and "dog" in s and "cat" not in s
    assert "3 of 3 curves reach 90%" in s
    assert read_saturation(a, [flat], ["cat"]).startswith("1 of 1 curves reach 90% of their "
                                                          "rise F(1) - F(0) by α = 0.10")
    assert "flatten before α = 1" in read_saturation(a, [flat], ["cat"])
    peak = np.minimum(a, 0.5) - 0.5 * np.maximum(a - 0.8, 0)  # rises to 0.5, then falls 0.1
    s = read_saturation(a, [peak, flat], ["bike", "cat"])
    assert "1 of 2 fall near α = 1" in s and "bike" in s and "flatten" not in s


def test_a_grey_photo_in_a_figure_is_compressed_too() -> None:
    from matplotlib.figure import Figure

    from attribkit.report import data_uri

    rng = np.random.default_rng(1)
    grey = np.cumsum(rng.normal(size=(200, 200)), axis=1)  # textured, 256 grey levels at most
    fig = Figure(figsize=(4, 4))
    fig.add_subplot(1, 1, 1).imshow(grey, cmap="gray")
    assert data_uri(fig).startswith("data:image/webp;base64,")
