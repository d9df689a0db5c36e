"""One self-contained HTML report: images embedded as base64 data URIs, no network needed."""

from __future__ import annotations

import base64
import html
import io
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.viz._common import figure_to_png, image_array, to_pil
from attribkit.viz.image import scale_intensity

__all__ = ["Report", "data_uri"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ccc;padding-bottom:.2em}
h3{font-size:1.1em}figure{display:inline-block;margin:.4em;vertical-align:top;text-align:center}
figcaption{font-size:.85em;color:#444;max-width:420px}img{max-width:100%;height:auto}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
.note{color:#8a5a00;font-size:.9em}
"""


def data_uri(item: Any) -> str:
    """A ``data:`` URI for an image.

    Parameters
    ----------
    item : bytes, PIL image, numpy array or matplotlib figure
        PNG or GIF bytes, a PIL image, an ``(H, W, 3)`` array, or a figure (rendered to PNG).

    Returns
    -------
    str
        ``data:image/png;base64,...`` (or ``image/gif``).
    """
    if isinstance(item, bytes | bytearray):
        data = bytes(item)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            mime = "image/gif"
        elif data[:8] == b"\x89PNG\r\n\x1a\n":
            mime = "image/png"
        else:
            raise InputError("image bytes must be PNG or GIF.")
    elif hasattr(item, "savefig"):
        data, mime = figure_to_png(item), "image/png"
    else:
        pil = item if isinstance(item, Image.Image) else to_pil(image_array(item))
        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        data, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return str(v)


class Report:
    """Builds one HTML page; every piece of user text is escaped.

    Parameters
    ----------
    title : str
        The page title.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> Report:
        """Add a heading (``level`` 1-4)."""
        level = min(max(int(level), 1), 4)
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def text(self, text: str, *, note: bool = False) -> Report:
        """Add a paragraph of plain text (escaped); ``note=True`` styles it as a remark."""
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")
        return self

    def raw(self, fragment: str) -> Report:
        """Add an HTML fragment produced by attribkit (e.g. :func:`attribkit.viz.tokens_html`).

        The fragment is inserted as is: only pass HTML whose user text is already escaped.
        """
        self._parts.append(fragment)
        return self

    def image(self, item: Any, caption: str = "", *, width: int | None = None) -> Report:
        """Add an embedded image (see :func:`data_uri`) with an escaped caption."""
        w = f' width="{int(width)}"' if width else ""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure><img src="{data_uri(item)}" alt="{html.escape(caption)}"'
                           f"{w}>{cap}</figure>")
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]],
              caption: str = "") -> Report:
        """Add a table; cells are formatted (floats to 4 significant digits) and escaped."""
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
        for r in rows:
            out.append("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>")
        out.append("</table>")
        self._parts.append("".join(out))
        return self

    def input_section(self, name: str, image: Any, attributions: Mapping[str, Any], *,
                      prediction: str = "", index: int = 0, gif: bytes | None = None,
                      results: Mapping[str, Mapping[str, Any]] | None = None) -> Report:
        """Add the standard block for one input.

        Parameters
        ----------
        name : str
            The input's name (heading).
        image : PIL image, array or tensor
            The picture (``[0, 1]`` tensors or uint8 arrays).
        attributions : mapping of str to Attribution or array
            Method name to attributions; shown side by side, in the seed's intensity style.
        prediction : str, default ""
            The prediction (label and score) as text.
        index : int, default 0
            The example within each attribution batch.
        gif : bytes, optional
            An interior-gradient animation (:func:`attribkit.viz.interior_gif`).
        results : mapping of str to mapping, optional
            Axiom / evaluation results: a table row per key (method), a column per inner key.
        """
        self.heading(name, 3)
        if prediction:
            self.text(f"Prediction: {prediction}")
        base = image_array(image)
        self.image(base, "input")
        gaps: list[list[Any]] = []
        for method, attr in attributions.items():
            cap = method
            if isinstance(attr, Attribution) and attr.gap is not None:
                g = float(attr.gap[index])
                rg = attr.relative_gap
                rel = float(rg[index]) if rg is not None else float("nan")
                cap = f"{method} (completeness gap {g:+.3g}, {rel:.2%})"
                gaps.append([method, float(attr.total()[index]), g, rel])
            self.image(scale_intensity(base, attr, index=index), cap)
        if gif is not None:
            self.image(gif, "interior gradients, alpha from small to 1 (animation)")
        if gaps:
            self.table(["method", "sum of attributions", "gap", "relative gap"], gaps)
        if results:
            cols = sorted({k for r in results.values() for k in r})
            self.table(["method", *cols],
                       [[m, *[r.get(c, "") for c in cols]] for m, r in results.items()])
        return self

    def to_html(self) -> str:
        """The whole page as a string."""
        body = "\n".join(self._parts)
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n"
                f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write the page to ``path`` (folders created) and return the path."""
        p = pathlib.Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_html(), encoding="utf-8")
        return p
