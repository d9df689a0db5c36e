"""Reading command-line inputs: image files and folders, tensor files, CSV rows and files, texts.

Every INPUT becomes one or more :class:`Item` (a ``.csv`` file gives one per row, a folder one
per image in it), each named after what the user gave, so that output files read
``astronaut_ig.png`` and ``patients_row3_ig.png``.
"""

from __future__ import annotations

import csv
import pathlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXT", "Item", "csv_rows", "expand", "read_image",
           "read_tensor_input", "slug"]

from attribkit.runs.sources import DEFAULT_MAX_PIXELS

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class Item:
    """One example to explain.

    Attributes
    ----------
    name
        A file-name-safe stem for the outputs (``astronaut``, ``data_row3``).
    source
        What the user gave, for messages and the report.
    x
        The model input ``(1, ...)`` (for text and molecules: ``None``; the zoo reads ``raw``).
    raw
        The text, SMILES or raw CSV values.
    image
        For images: the ``(H, W, 3)`` uint8 picture the model saw (after any crop).
    extra
        ``size`` (original width, height) and ``crop`` (left, top, scale x, scale y) for images.
    """

    name: str
    source: str
    x: Tensor | None = None
    raw: Any = None
    image: np.ndarray[Any, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def slug(text: str, limit: int = 40) -> str:
    """A short file-name-safe stem of ``text`` (letters, digits, ``-`` and ``_``)."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:limit].strip("_")
    return s or "input"


def read_image(path: pathlib.Path, max_pixels: int) -> np.ndarray[Any, Any]:
    """An image file as ``(H, W, 3)`` uint8, refusing decompression bombs.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    max_pixels : int
        The most pixels (width x height) accepted; Pillow's bomb warning becomes an error.

    Returns
    -------
    numpy.ndarray
        The RGB pixels.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {str(path)!r}")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise Image.DecompressionBombError("too many pixels")
                return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise RuntimeError(f"{path.name}: the image is larger than {max_pixels:,} pixels (a "
                           "possible decompression bomb); pass --max-image-pixels N to allow "
                           "it") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise RuntimeError(f"cannot read {str(path)!r} as an image ({err})") from err
    finally:
        Image.MAX_IMAGE_PIXELS = old


def read_tensor_input(path: pathlib.Path) -> Tensor:
    """A ``.npy`` (no pickles) or ``.pt`` (``weights_only``) tensor file, used as is."""
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {str(path)!r}")
    if path.suffix.lower() == ".npy":
        return torch.as_tensor(np.load(path, allow_pickle=False))
    return torch.as_tensor(torch.load(path, map_location="cpu", weights_only=True))


def _numbers(cells: Sequence[str]) -> list[float] | None:
    try:
        return [float(c) for c in cells]
    except ValueError:
        return None


def csv_rows(text: str) -> list[tuple[str, list[float]]]:
    """``(label, values)`` of a CSV row ``"1,2.5,3"`` or of every row of a ``.csv`` file.

    A first line that is not all numbers is taken as the header and skipped.
    """
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() != ".csv":
        values = _numbers(text.split(","))
        if values is None:
            raise ValueError(f"input {text[:60]!r} is neither an image, a tensor file nor a CSV "
                             "row of numbers")
        return [(text, values)]
    if not p.is_file():
        raise FileNotFoundError(f"input file not found: {text!r}")
    out: list[tuple[str, list[float]]] = []
    with p.open(newline="", encoding="utf-8-sig") as fh:  # Excel's "CSV UTF-8" has a BOM
        reader = csv.reader(fh)
        first = True
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            values = _numbers(row)
            if values is None:
                if first:
                    first = False
                    continue  # a header
                raise ValueError(f"{p.name} line {reader.line_num} is not all numbers: "
                                 f"{','.join(row)[:60]!r}")
            first = False
            out.append((f"{p.name}:{reader.line_num}", values))
    if not out:
        raise ValueError(f"{p.name} holds no rows of numbers")
    return out


def _images_in(folder: pathlib.Path) -> list[pathlib.Path]:
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXT and f.is_file())
    if not files:
        raise FileNotFoundError(f"folder {str(folder)!r} holds no image files "
                                f"({', '.join(sorted(IMAGE_EXT))})")
    return files


def _image_item(path: pathlib.Path, kind: str, max_pixels: int) -> Item:
    pixels = read_image(path, max_pixels)
    h, w = pixels.shape[:2]
    if kind == "image":  # the zoo model: resize the short side to 224, centre crop
        from attribkit.zoo import vision

        crop = vision.center_crop(pixels)
        s = vision.IMAGE_SIZE / min(w, h)
        nw, nh = max(vision.IMAGE_SIZE, round(w * s)), max(vision.IMAGE_SIZE, round(h * s))
        left, top = (nw - vision.IMAGE_SIZE) // 2, (nh - vision.IMAGE_SIZE) // 2
        x = vision.preprocess(crop)
        return Item(path.stem, str(path), x=x, image=crop,
                    extra={"size": (w, h), "crop": (left, top, nw / w, nh / h)})
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    return Item(path.stem, str(path), x=x.contiguous(), image=pixels,
                extra={"size": (w, h), "crop": (0, 0, 1.0, 1.0)})


def expand(kind: str, raws: Sequence[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Item]:
    """Turn the command line's INPUTs into items for a model reading ``kind`` inputs.

    Parameters
    ----------
    kind : str
        ``"image"`` (the zoo's photo model), ``"text"``, ``"molecule"``, ``"tabular"`` or
        ``"tensor"`` (a file or ``module:callable`` model).
    raws : sequence of str
        The INPUT arguments.
    max_pixels : int
        The largest image accepted (see :func:`read_image`).

    Returns
    -------
    list of Item
        In order; names made unique by a numeric suffix.
    """
    items: list[Item] = []
    for raw in raws:
        p = pathlib.Path(raw).expanduser()
        if kind in ("text", "molecule"):
            items.append(Item(slug(raw, 30), raw, raw=raw))
        elif p.is_dir():
            items += [_image_item(f, kind, max_pixels) for f in _images_in(p)]
        elif p.suffix.lower() in IMAGE_EXT:
            items.append(_image_item(p, kind, max_pixels))
        elif kind == "image":
            raise ValueError(f"efficientnet-lite0 explains image files or folders of them; "
                             f"{raw[:60]!r} is neither")
        elif p.suffix.lower() in (".npy", ".pt"):
            items.append(Item(p.stem, raw, x=read_tensor_input(p)))
        else:
            rows = csv_rows(raw)
            multi = p.suffix.lower() == ".csv"
            for n, (label, values) in enumerate(rows, start=1):
                name = f"{p.stem}_row{n}" if multi else "row"
                items.append(Item(name, label, raw=values,
                                  x=torch.tensor([values], dtype=torch.float64)))
    seen: dict[str, int] = {}
    for it in items:
        k = seen.get(it.name, 0) + 1
        seen[it.name] = k
        if k > 1:
            it.name = f"{it.name}_{k}"
    return items
