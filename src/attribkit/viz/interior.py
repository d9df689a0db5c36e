"""Interior gradients (Gradients of Counterfactuals, Figure 3): one map per scaling parameter, and
as an animation."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from attribkit.core.errors import InputError
from attribkit.viz._common import Array, image_array, normalize, to_pil
from attribkit.viz.image import scale_intensity

__all__ = ["interior_frames", "interior_gif", "interior_strip"]


def _parts(interior: Any, index: int) -> tuple[Array, Array, Array]:
    """(alphas (A,), gradients (A, C, H, W) or (A, H, W), scores (A,)) of one example."""
    alphas = np.asarray(torch.as_tensor(interior.alphas).detach().cpu().double().numpy())
    grads = interior.gradients.detach().cpu().double()[index].numpy()
    scores = interior.scores.detach().cpu().double()[index].numpy()
    if grads.shape[0] != alphas.shape[0]:
        raise InputError("interior gradients: gradients and alphas disagree in length.")
    return alphas, grads, scores


def interior_frames(image: Any, interior: Any, *, index: int = 0, percentile: float = 99.0,
                    common_scale: bool = False) -> list[Array]:
    """One picture per alpha: the image scaled by that alpha's pixel importance.

    Parameters
    ----------
    image : PIL image, array or tensor
        The picture (at ``alpha = 1``).
    interior : InteriorGradients
        From :func:`attribkit.interior_gradients` (``alphas``, ``gradients``, ``scores``).
    index : int, default 0
        The example.
    percentile : float, default 99
        Outlier clipping percentile.
    common_scale : bool, default False
        ``False`` normalises each frame on its own (shows where, Figure 3); ``True`` uses one scale
        for all frames (shows how much: the gradients vanish as alpha grows).

    Returns
    -------
    list of numpy.ndarray
        ``(H, W, 3)`` uint8 frames.
    """
    _, grads, _ = _parts(interior, index)
    imp = np.abs(grads).sum(axis=1) if grads.ndim == 4 else np.abs(grads)
    if common_scale:
        base = image_array(image).astype(np.float64)
        scaled = normalize(imp, percentile)
        return [np.clip(base * s[:, :, None], 0, 255).round().astype(np.uint8) for s in scaled]
    return [scale_intensity(image, m, percentile=percentile) for m in imp]


def interior_strip(image: Any, interior: Any, *, index: int = 0, percentile: float = 99.0,
                   max_frames: int = 8, columns: int = 4, panel: float = 3.0,
                   title: str | None = None) -> Figure:
    """Figure 3: the picture for a few alphas, then the trend of the mean pixel importance.

    Parameters
    ----------
    image : PIL image, array or tensor
        The picture.
    interior : InteriorGradients
        The interior gradients of the picture.
    index : int, default 0
        The example.
    percentile : float, default 99
        Outlier clipping percentile.
    max_frames : int, default 8
        The most maps shown (evenly chosen among the alphas).
    columns : int, default 4
        Maps per row.
    panel : float, default 3
        Width of one map in inches (300 px at 100 dpi).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Rows of maps with a grey scale bar (each map is scaled to its own ``percentile``, so the
        bar reads as relative importance), then, across the full width, the curves of mean
        |gradient| and ``F(alpha)`` against alpha.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    alphas, grads, scores = _parts(interior, index)
    frames = interior_frames(image, interior, index=index, percentile=percentile)
    pick = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round()
                     .astype(int))
    n = len(pick)
    rows = -(-n // max(1, columns))
    cols = -(-n // rows)  # balanced rows: 5 maps as 3 + 2, not 4 + 1
    fig = Figure(figsize=(panel * cols + 1.0, panel * rows + 2.8 + (0.4 if title else 0)),
                 layout="constrained")
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[panel] * rows + [2.6])
    axes = []
    for j, k in enumerate(pick):
        ax = fig.add_subplot(grid[j // cols, j % cols])
        ax.imshow(frames[k], interpolation="nearest")
        ax.set_title(f"α = {alphas[k]:.2f}", fontsize=10)
        ax.axis("off")
        axes.append(ax)
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap="gray"), ax=axes,
                       fraction=0.02, pad=0.01, aspect=40)
    bar.set_label(f"importance, per map (1 = its {percentile:g}th pct.)", fontsize=8)
    ax = fig.add_subplot(grid[rows, :])
    mag = np.abs(grads).reshape(len(alphas), -1).mean(axis=1)
    ax.plot(alphas, mag, "o-", ms=4, color="tab:blue", label="mean |gradient|")
    ax.set_ylabel("mean |gradient|", color="tab:blue", fontsize=9)
    ax.set_xlabel("scaling parameter α")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(alphas, scores, "s-", ms=4, color="tab:orange", label="F(α)")
    ax2.set_ylabel("F(α)", color="tab:orange", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def interior_gif(image: Any, interior: Any, path: str | None = None, *, index: int = 0,
                 percentile: float = 99.0, duration_ms: int = 250) -> bytes:
    """The interior gradients as an animated GIF, one frame per alpha.

    Parameters
    ----------
    image : PIL image, array or tensor
        The picture.
    interior : InteriorGradients
        Its interior gradients.
    path : str, optional
        Also write the GIF to this file.
    index : int, default 0
        The example.
    percentile : float, default 99
        Outlier clipping percentile.
    duration_ms : int, default 250
        Time per frame.

    Returns
    -------
    bytes
        The GIF file's bytes (loops forever).
    """
    alphas, _, _ = _parts(interior, index)
    frames = interior_frames(image, interior, index=index, percentile=percentile)
    pil: list[Image.Image] = []
    for a, f in zip(alphas, frames, strict=True):
        img = to_pil(f)
        if img.width >= 96:  # too small a picture gets no caption
            _stamp(img, f"a={a:.2f}")
        pil.append(img.convert("P", palette=Image.Palette.ADAPTIVE))
    buf = io.BytesIO()
    pil[0].save(buf, format="GIF", save_all=True, append_images=pil[1:], duration=duration_ms,
                loop=0)
    data = buf.getvalue()
    if path is not None:
        with open(path, "wb") as fh:
            fh.write(data)
    return data


def _stamp(img: Image.Image, text: str) -> None:
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 7 * len(text) + 4, 13), fill=(0, 0, 0))
    d.text((2, 1), text, fill=(255, 255, 255))
