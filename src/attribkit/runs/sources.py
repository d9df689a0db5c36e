"""Where a run's items come from: a folder of images, a CSV, a text or SMILES file, or Python.

:func:`collect` turns what the user gave into a list of :class:`Item` (position, id, source and
the raw value the model spec's ``prepare`` reads) plus a description for the manifest. Reading
the *content* (decoding an image, tokenising) is left to the worker, so that one bad file fails
one item, not the run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import pathlib
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXT", "SMILES_EXT", "TEXT_EXT", "Item", "Source",
           "check_pixels", "collect", "pixel_limit"]

IMAGE_EXT = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 89_478_485
"""Pillow's own limit (about 9,500 x 9,500 pixels): larger images are refused unless
``--max-image-pixels`` raises it (a small PNG can decode to gigabytes)."""
SMILES_EXT = frozenset({".smi", ".smiles"})
TEXT_EXT = frozenset({".txt", ".text"})


@dataclass(frozen=True)
class Item:
    """One input of a run.

    Attributes
    ----------
    item
        0-based position in the input list.
    item_id
        A readable, unique name: a path relative to the folder, ``row 17``, ``line 3``, ``17``.
    source
        Where it came from: the file, ``data.csv row 17``, ``python``.
    raw
        What the model's ``prepare`` reads: a path, a sentence, a SMILES, a row of floats, a
        tensor or array.
    """

    item: int
    item_id: str
    source: str
    raw: Any


@dataclass(frozen=True)
class Source:
    """The items and how they were read (for the manifest)."""

    items: list[Item]
    description: str
    kind: str  # "image", "text", "smiles", "tabular", "python"
    feature_names: tuple[str, ...] | None = None
    """A CSV's column names (its header row), when it has one."""

    @property
    def sha256(self) -> str:
        """The hash of the item list: ``[item_id, source]`` pairs as JSON."""
        listing = json.dumps([[it.item_id, it.source] for it in self.items])
        return hashlib.sha256(listing.encode()).hexdigest()


def check_pixels(raw: Any, max_pixels: int) -> None:
    """Refuse an image file larger than ``max_pixels`` (width x height) from its header alone,
    before anything is decoded; other inputs pass. One line: the size, the limit, the flag."""
    if not (isinstance(raw, str) and pathlib.Path(raw).suffix.lower() in IMAGE_EXT):
        return
    import warnings

    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the header is read here; the limit is checked below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(raw) as img:
                w, h = img.size
    except Exception:
        return  # not readable as an image: the model's prepare says why
    finally:
        Image.MAX_IMAGE_PIXELS = old
    if w * h > max_pixels:
        raise ValueError(f"{pathlib.Path(raw).name}: the image is {w} x {h} pixels, more than "
                         f"the limit of {max_pixels:,} (a possible decompression bomb); pass "
                         "--max-image-pixels N (max_image_pixels=N) to allow it")


@contextlib.contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Let Pillow decode images up to ``max_pixels`` (checked by :func:`check_pixels` first)."""
    import warnings

    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max(max_pixels, DEFAULT_MAX_PIXELS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _folder(path: pathlib.Path) -> Source:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXT
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise ValueError(f"no image files in {str(path)!r} (looked for "
                         f"{', '.join(sorted(IMAGE_EXT))}); give a folder of images")
    items = [Item(i, str(p.relative_to(path).with_suffix("")), str(p), str(p))
             for i, p in enumerate(files)]
    return Source(items, str(path), "image")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv(path: pathlib.Path) -> Source:
    with path.open(newline="", encoding="utf-8-sig") as fh:  # Excel's "CSV UTF-8" has a BOM
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    names = None
    if rows and not all(_is_number(c) for c in rows[0]):
        names, rows = tuple(c.strip() for c in rows[0]), rows[1:]  # a header
    if not rows:
        raise ValueError(f"{str(path)!r} has no data rows; give a CSV with one item per row")
    items = []
    for i, r in enumerate(rows):
        try:
            values: Any = [float(c) for c in r]
        except ValueError:
            values = r  # recorded as failed by the worker, with the reason
        items.append(Item(i, f"row {i}", f"{path.name} row {i}", values))
    return Source(items, str(path), "tabular", names)


def _lines(path: pathlib.Path, kind: str) -> Source:
    items: list[Item] = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        text = line.strip()
        if not text or (text.startswith("#") and kind == "text"):
            continue
        if kind == "smiles":
            text = text.split()[0]  # "SMILES name" lines keep the SMILES
        items.append(Item(len(items), f"line {n}", f"{path.name} line {n}", text))
    if not items:
        raise ValueError(f"{str(path)!r} has no lines to attribute; give one "
                         f"{'SMILES' if kind == 'smiles' else 'sentence'} per line")
    return Source(items, str(path), kind)


def _python(data: Any) -> Source:
    items: list[Item] = []
    seq: Iterable[Any] = data
    if isinstance(data, Sized) and hasattr(data, "__getitem__"):  # a map-style Dataset
        seq = (data[i] for i in range(len(data)))  # type: ignore[index]
    for i, x in enumerate(seq):
        if isinstance(x, tuple | list) and len(x) == 2 and not isinstance(x[0], int | float):
            x = x[0]  # (input, label) pairs keep the input
        items.append(Item(i, str(i), "python", x))
    if not items:
        raise ValueError("the data holds no items; give a non-empty iterable or Dataset")
    return Source(items, "python", "python")


def collect(data: Any) -> Source:
    """The items of ``data``: a folder of images, a ``.csv``, a ``.txt`` (one sentence per line),
    a ``.smi`` / ``.smiles`` file, or any iterable / map-style ``torch.utils.data.Dataset``.

    Raises
    ------
    FileNotFoundError
        When a path does not exist.
    ValueError
        When it holds nothing to attribute or its type is not one of the above.
    """
    if isinstance(data, str | pathlib.Path):
        path = pathlib.Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"input not found: {str(path)!r}; give a folder of images, "
                                    "a .csv, a .txt (one sentence per line) or a .smi file")
        if path.is_dir():
            return _folder(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return _csv(path)
        if suffix in SMILES_EXT:
            return _lines(path, "smiles")
        if suffix in TEXT_EXT:
            return _lines(path, "text")
        if suffix in IMAGE_EXT:
            return Source([Item(0, path.stem, str(path), str(path))], str(path), "image")
        raise ValueError(f"cannot read {str(path)!r} as inputs: give a folder of images, a .csv, "
                         "a .txt (one sentence per line) or a .smi file")
    if isinstance(data, Iterable) or (isinstance(data, Sized) and hasattr(data, "__getitem__")):
        return _python(data)
    raise ValueError(f"data must be a path or an iterable, got {type(data).__name__}")
