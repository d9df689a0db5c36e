"""One self-contained HTML report: images embedded as base64 data URIs, no network needed."""

from __future__ import annotations

import base64
import html
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from attribkit.core.attribution import Attribution
from attribkit.report.encode import encode_image
from attribkit.report.reading import read_gaps
from attribkit.viz._common import image_array
from attribkit.viz.compare import comparison_grid

__all__ = ["Report", "data_uri"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1500px;margin:2em auto;padding:0 1.5em;color:#222}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ccc;padding-bottom:.2em}
h3{font-size:1.1em}figure{display:inline-block;margin:.4em;vertical-align:top;text-align:center}
figcaption{font-size:.85em;color:#444;max-width:640px;margin:.2em auto}
img{max-width:100%;height:auto}img.px{image-rendering:pixelated}
figure.wide{display:block;margin:.6em 0}figure.wide img{width:100%}
figure.wide figcaption{max-width:none}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
.note{color:#8a5a00;font-size:.9em}.reading{max-width:60em;color:#234;margin-top:.2em}
caption{caption-side:top;text-align:left;font-weight:600;padding:.2em 0}
nav.toc{background:#f7f7f7;border:1px solid #ddd;padding:.4em 1.2em;margin:1em 0}
nav.toc>ol{columns:2 24em}nav.toc ol{margin:.2em 0;padding-left:1.4em}
nav.toc li{break-inside:avoid}
nav.toc h2{border:0;margin:.2em 0;font-size:1.1em}
"""
#: Pictures of photos are shown at least this wide (in CSS pixels), small ones enlarged.
MIN_PHOTO_PX = 320


def data_uri(item: Any, *, photo: bool | None = None) -> str:
    """A ``data:`` URI for an image, photo-like pictures compressed (WebP), line art as PNG.

    Parameters
    ----------
    item : bytes, PIL image, numpy array or matplotlib figure
        PNG or GIF bytes, a PIL image, an ``(H, W, 3)`` array, or a figure.
    photo : bool, optional
        ``True``: encode as lossy WebP (photos and heat maps); ``False``: PNG (line art, exact
        pixels); ``None`` decides from the picture (see
        :func:`attribkit.report.encode.encode_image`).

    Returns
    -------
    str
        ``data:image/png;base64,...`` (or ``image/webp``, ``image/gif``).
    """
    data, mime = encode_image(item, photo=photo)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _one(attr: Any, index: int) -> Any:
    """Example ``index`` of an attribution batch, keeping an Attribution's gap."""
    if isinstance(attr, Attribution):
        pick = {f: getattr(attr, f)[index:index + 1] for f in
                ("values", "inputs", "output", "baseline_output")
                if getattr(attr, f) is not None}
        from dataclasses import replace

        return replace(attr, **pick)
    return torch.as_tensor(np.asarray(attr) if not isinstance(attr, torch.Tensor) else attr
                           )[index:index + 1]


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
        self._lead: list[str] = []
        self._toc: list[tuple[int, str, str]] = []

    def heading(self, text: str, level: int = 2) -> Report:
        """Add a heading (``level`` 1-4) with an anchor; levels 2 and 3 go in the contents."""
        level = min(max(int(level), 1), 4)
        anchor = self._anchor(text)
        if level in (2, 3):
            self._toc.append((level, text, anchor))
        self._parts.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')
        return self

    def _anchor(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "section"
        used = {a for _, _, a in self._toc}
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        return anchor

    def summary(self, header: Sequence[str], rows: Sequence[Sequence[Any]], *,
                caption: str = "", reading: str = "") -> Report:
        """Put a summary table first on the page (after the contents), whenever it is added.

        Parameters
        ----------
        header : sequence of str
            Column names.
        rows : sequence of sequences
            One row per item (floats to 4 significant digits, escaped).
        caption : str, default ""
            What the table shows (escaped).
        reading : str, default ""
            A short interpretation printed under it.
        """
        parts, self._parts = self._parts, []
        self._toc.insert(0, (2, "Summary", "summary"))
        self._parts.append('<h2 id="summary">Summary</h2>')
        self.table(header, rows, caption, reading=reading)
        self._lead, self._parts = self._lead + self._parts, parts
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

    def image(self, item: Any, caption: str = "", *, width: int | None = None,
              wide: bool = False, photo: bool | None = None) -> Report:
        """Add an embedded image (see :func:`data_uri`) with an escaped caption.

        Parameters
        ----------
        item : bytes, PIL image, array or figure
            The picture.
        caption : str, default ""
            Shown under it (escaped).
        width : int, optional
            Display width in CSS pixels (a smaller picture is enlarged without smoothing).
        wide : bool, default False
            Use the page's full width (for grids and figures with several panels).
        photo : bool, optional
            Compress as a photo (lossy WebP) or keep exact pixels (PNG); ``None`` decides
            from the picture (see :func:`data_uri`).
        """
        w = f' width="{int(width)}" class="px"' if width else ""
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        cls = ' class="wide"' if wide else ""
        self._parts.append(f'<figure{cls}><img src="{data_uri(item, photo=photo)}" '
                           f'alt="{html.escape(caption)}"{w}>{cap}</figure>')
        return self

    def photo(self, image: Any, caption: str = "") -> Report:
        """Add a photo at least :data:`MIN_PHOTO_PX` wide (small pictures enlarged, unsmoothed)."""
        a = image_array(image)
        return self.image(a, caption, width=max(MIN_PHOTO_PX, a.shape[1]))

    def reading(self, text: str) -> Report:
        """Add a short reading of the preceding table or figure (escaped); empty text adds
        nothing."""
        if text:
            self._parts.append(f'<p class="reading">{html.escape(text)}</p>')
        return self

    def global_views(self, values: Any, features: Any = None, names: Sequence[str] | None = None,
                     *, dependence: int | str | None = None, top: int = 15,
                     what: str = "features") -> Report:
        """Add the global views of a batch: summary (beeswarm), mean |a| bars and, if asked, a
        dependence plot of one feature (see :mod:`attribkit.viz.global_views`).

        Parameters
        ----------
        values : array-like, Tensor or Attribution
            ``(N, F)`` attributions (regions: :func:`attribkit.viz.region_values`; tokens:
            :func:`attribkit.viz.token_values`).
        features : array-like, optional
            ``(N, F)`` the feature values (colours the beeswarm; needed for the dependence
            plot).
        names : sequence of str, optional
            Feature names.
        dependence : int or str, optional
            The feature of the dependence plot; ``"top"`` picks the one with the largest mean
            |a|.
        top : int, default 15
            Features shown.
        what : str, default "features"
            What the columns are, for the reading (``"regions"``, ``"tokens"``).
        """
        from attribkit.viz.global_views import (
            as_matrix,
            dependence_plot,
            mean_abs_bars,
            summary_plot,
        )

        v = as_matrix(values)
        with np.errstate(invalid="ignore"):
            mean_abs = np.nan_to_num(np.nanmean(np.abs(v), axis=0), nan=-1.0)
        labels = list(names) if names is not None else [f"feature {i}" for i in range(v.shape[1])]
        first = int(np.argmax(mean_abs))
        self.image(summary_plot(v, features, labels, top=top),
                   f"each dot is one of {v.shape[0]} examples: its attribution (x) to the "
                   f"{what} of each row, coloured by the feature's value")
        self.image(mean_abs_bars(v, labels, top=top), "mean |attribution| over the batch")
        share = float(mean_abs[first] / mean_abs[mean_abs > 0].sum()) if (mean_abs > 0).any() \
            else 0.0
        self.reading(f"Over {v.shape[0]} examples, {labels[first]} has the largest mean |a| "
                     f"of the {what} ({share:.0%} of their total). Dots right "
                     "of zero push the output up, left of zero down; a row whose colours "
                     "separate left and right is a feature whose value decides its effect.")
        if dependence is not None and features is not None:
            j = first if dependence == "top" else dependence
            self.image(dependence_plot(v, features, j, labels),
                       "attribution of one feature against its value")
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]],
              caption: str = "", *, reading: str = "") -> Report:
        """Add a table; cells are formatted (floats to 4 significant digits) and escaped;
        ``reading`` is a short interpretation printed under it."""
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
        for r in rows:
            out.append("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>")
        out.append("</table>")
        self._parts.append("".join(out))
        return self.reading(reading)

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
            Method name to attributions; shown side by side, in the paper's intensity style.
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
        gaps: list[list[Any]] = []
        for method, attr in attributions.items():
            if isinstance(attr, Attribution) and attr.gap is not None:
                g = float(attr.gap[index])
                rg = attr.relative_gap
                rel = float(rg[index]) if rg is not None else float("nan")
                gaps.append([method, float(attr.total()[index]), g, rel])
        if attributions:
            picked = {m: _one(a, index) for m, a in attributions.items()}
            self.image(comparison_grid([base], picked, labels=[prediction or "input"],
                                       panel=3.4, max_columns=4),
                       "the photo and each method's pixel importance (eq. 1) with its scale",
                       wide=True)
        else:
            self.photo(base, "input")
        if gif is not None:
            self.image(gif, "interior gradients, alpha from small to 1 (animation)",
                       width=max(MIN_PHOTO_PX, base.shape[1]))
        if gaps:
            self.table(["method", "sum of attributions", "gap", "relative gap"], gaps,
                       reading=read_gaps({r[0]: r[3] for r in gaps}))
        if results:
            cols = sorted({k for r in results.values() for k in r})
            self.table(["method", *cols],
                       [[m, *[r.get(c, "") for c in cols]] for m, r in results.items()])
        return self

    def contents(self) -> str:
        """The contents list: a link to every level-2 heading, level-3 ones nested under it."""
        if len(self._toc) < 2:
            return ""
        out = ['<nav class="toc" id="contents"><h2>Contents</h2><ol>']
        open_sub = False
        for i, (level, text, anchor) in enumerate(self._toc):
            link = f'<a href="#{anchor}">{html.escape(text)}</a>'
            if level == 3 and i > 0:
                out.append(("" if open_sub else "<ol>") + f"<li>{link}</li>")
                open_sub = True
                continue
            if open_sub:
                out.append("</ol></li>")
                open_sub = False
            elif i > 0:
                out.append("</li>")
            out.append(f"<li>{link}")
        out.append("</ol></li>" if open_sub else "</li>")
        out.append("</ol></nav>")
        return "".join(out)

    def to_html(self) -> str:
        """The whole page as a string: title, contents list, summary, then the sections."""
        body = "\n".join([*self._lead, *self._parts])
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>\n"
                f"<body><h1>{html.escape(self.title)}</h1>\n{self.contents()}\n{body}\n"
                f"</body></html>\n")

    def save(self, path: str | pathlib.Path) -> pathlib.Path:
        """Write the page to ``path`` (folders created) and return the path."""
        p = pathlib.Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_html(), encoding="utf-8")
        return p
