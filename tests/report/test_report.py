"""The HTML report: parses, embeds all images, escapes user text."""

from __future__ import annotations

import base64
import html.parser
import io
import pathlib

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from attribkit.core.attribution import Attribution
from attribkit.report import Report, data_uri

EVIL = "<script>alert(1)</script>"


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        d = dict(attrs)
        if "src" in d:
            self.srcs.append(d["src"] or "")
        if "href" in d:
            self.hrefs.append(d["href"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(s: str) -> _Collect:
    p = _Collect()
    p.feed(s)
    p.close()
    return p


def test_data_uri_round_trips_png_gif_array_figure() -> None:
    a = np.zeros((3, 4, 3), dtype=np.uint8)
    a[0, 0] = (255, 0, 0)
    uri = data_uri(a)
    assert uri.startswith("data:image/png;base64,")
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    np.testing.assert_array_equal(back, a)
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="GIF")
    assert data_uri(buf.getvalue(), photo=False).startswith("data:image/gif;base64,")
    assert data_uri(buf.getvalue()).startswith("data:image/webp;base64,")  # smaller as WebP
    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1])
    assert data_uri(fig).startswith("data:image/png;base64,")


def test_report_is_self_contained_and_escapes(tmp_path: pathlib.Path) -> None:
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    attr = Attribution(values=torch.ones_like(x), inputs=x, method="ig",
                       output=torch.tensor([40.0]), baseline_output=torch.tensor([0.0]))
    gif = io.BytesIO()
    Image.new("RGB", (6, 6)).save(gif, format="GIF")
    rep = Report(EVIL)
    rep.heading(EVIL).text(EVIL)
    rep.input_section(EVIL, x, {EVIL: attr}, prediction=EVIL, gif=gif.getvalue(),
                      results={EVIL: {EVIL: 1.5, "aopc": 0.25}})
    rep.table([EVIL], [[EVIL]], caption=EVIL)
    path = rep.save(tmp_path / "sub" / "r.html")
    s = path.read_text(encoding="utf-8")
    assert EVIL not in s
    p = _parse(s)
    assert "script" not in p.tags
    assert p.tags.count("img") == 2  # the grid (input and each map with its scale), the GIF
    assert all(src.startswith("data:image/") for src in p.srcs)
    assert all(h.startswith("#") for h in p.hrefs)  # the contents list links within the page
    assert "http://" not in s and "https://" not in s
    assert any(EVIL in t for t in p.text)  # shown to the reader as text
    # completeness gap in the table: 108 - 40 = 68
    assert any("68" in t for t in p.text)
