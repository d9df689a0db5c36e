"""Hand-drawn object boxes for the sample photos, and crops / flips of them with their boxes
moved exactly (extra ``vision``): the labelled set of the localisation experiment (Gradients of
Counterfactuals, section 2.5).

The boxes live in ``photo_boxes.json`` next to this module, in the pixels of the full-resolution
photos of :func:`attribkit.zoo.vision.load_photo`, with how they were drawn. A :class:`Variant`
cuts a rectangle out of a photo and may mirror it; :func:`variant_boxes` carries the boxes
through the cut, the mirror and :func:`attribkit.zoo.vision.center_crop` (resize of the shorter
side to 224, central 224 x 224), so that each box ends in the model's input coordinates.
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = ["LabelledImage", "PhotoObject", "Variant", "labelled_images", "photo_objects",
           "variant_boxes", "variant_image", "variants_of"]

Box = tuple[int, int, int, int]
_DATA = pathlib.Path(__file__).with_name("photo_boxes.json")
_SIDE = 224
#: An object keeps a variant only if at least this share of its box area survives the cut.
MIN_KEPT = 0.5


@dataclass(frozen=True)
class PhotoObject:
    """One boxed object of a sample photo (several boxes: one object class, as in ImageNet)."""

    photo: str
    object: str
    classes: tuple[int, ...]
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Variant:
    """A rectangle ``(top, left, bottom, right)`` cut from a photo, mirrored left-right if
    ``flip``; ``name`` is how the images are labelled (``"full"``, ``"flip"``, ``"left"``...)."""

    name: str
    crop: Box
    flip: bool = False


@dataclass(frozen=True)
class LabelledImage:
    """A model input with its object boxes in input coordinates.

    Attributes
    ----------
    name
        ``"photo/variant"`` (``"photo/variant#k"`` when a photo has several objects).
    x
        ``(1, 3, 224, 224)`` model input (:func:`attribkit.zoo.vision.preprocess`).
    boxes
        The object's boxes in input pixels, ``(top, left, bottom, right)``, end exclusive.
    classes
        ImageNet classes that name the object.
    object
        What the boxes enclose.
    """

    name: str
    x: Tensor
    boxes: tuple[Box, ...]
    classes: tuple[int, ...]
    object: str

    @property
    def mask(self) -> Tensor:
        """``(224, 224)`` bool: the union of the boxes."""
        m = torch.zeros(_SIDE, _SIDE, dtype=torch.bool)
        for t, left, b, r in self.boxes:
            m[t:b, left:r] = True
        return m


@functools.lru_cache(maxsize=1)
def photo_objects() -> tuple[PhotoObject, ...]:
    """The boxed objects of ``photo_boxes.json``, in file order."""
    raw = json.loads(_DATA.read_text(encoding="utf-8"))
    return tuple(PhotoObject(photo=o["photo"], object=o["object"], classes=tuple(o["classes"]),
                             boxes=tuple(tuple(b) for b in o["boxes"]))  # type: ignore[misc]
                 for o in raw["objects"])


def variants_of(height: int, width: int) -> tuple[Variant, ...]:
    """The image, its mirror, and two crops: the left and right squares of a landscape photo, or
    the top-left and bottom-right three-quarter squares of a square one."""
    full = (0, 0, height, width)
    if width > height:
        a, b = Variant("left", (0, 0, height, height)), Variant(
            "right", (0, width - height, height, width))
    elif height > width:
        a, b = Variant("top", (0, 0, width, width)), Variant(
            "bottom", (height - width, 0, height, width))
    else:
        s = (3 * height) // 4
        a, b = Variant("top-left", (0, 0, s, s)), Variant(
            "bottom-right", (height - s, width - s, height, width))
    return (Variant("full", full), Variant("flip", full, flip=True), a, b)


def variant_image(image: np.ndarray[Any, Any], variant: Variant) -> np.ndarray[Any, Any]:
    """The pixels of ``variant`` of an ``(H, W, ...)`` image (before model preprocessing)."""
    t, left, b, r = variant.crop
    out = image[t:b, left:r]
    return np.ascontiguousarray(out[:, ::-1] if variant.flip else out)


def _center_crop_geometry(h: int, w: int) -> tuple[float, float, int, int]:
    """Scales and offsets of :func:`attribkit.zoo.vision.center_crop` for an ``h x w`` image."""
    s = _SIDE / min(w, h)
    nw, nh = max(_SIDE, round(w * s)), max(_SIDE, round(h * s))
    return nh / h, nw / w, (nh - _SIDE) // 2, (nw - _SIDE) // 2


def variant_boxes(boxes: Sequence[Box], shape: tuple[int, int],
                  variant: Variant) -> tuple[tuple[Box, ...], float]:
    """Boxes of a photo of ``shape`` carried into the model input of ``variant``.

    The cut and the mirror are exact in pixels; the resize maps the box edges (pixel borders)
    by the resize's scale and rounds them to the nearest border, and the central crop shifts
    and clips them.

    Returns
    -------
    tuple
        The boxes in ``224 x 224`` input pixels (boxes cut away entirely are dropped) and the
        share of the boxes' area, in the photo, that lies inside the crop.
    """
    ct, cl, cb, cr = variant.crop
    if not (0 <= ct < cb <= shape[0] and 0 <= cl < cr <= shape[1]):
        raise InputError(f"variant {variant.name!r} crop {variant.crop} is outside the photo "
                         f"{shape}.")
    h, w = cb - ct, cr - cl
    sy, sx, oy, ox = _center_crop_geometry(h, w)
    out: list[Box] = []
    total = kept = 0
    for t, left, b, r in boxes:
        total += (b - t) * (r - left)
        t, b = max(t, ct) - ct, min(b, cb) - ct
        left, r = max(left, cl) - cl, min(r, cr) - cl
        if t >= b or left >= r:
            continue
        kept += (b - t) * (r - left)
        if variant.flip:
            left, r = w - r, w - left
        box = (min(max(round(t * sy) - oy, 0), _SIDE), min(max(round(left * sx) - ox, 0), _SIDE),
               min(max(round(b * sy) - oy, 0), _SIDE), min(max(round(r * sx) - ox, 0), _SIDE))
        if box[0] < box[2] and box[1] < box[3]:
            out.append(box)
    return tuple(out), kept / total if total else 0.0


def labelled_images(photos: Sequence[str] | None = None,
                    variants: Sequence[str] | None = None) -> list[LabelledImage]:
    """The labelled set: every boxed object in every variant that keeps at least half of it.

    Parameters
    ----------
    photos
        Restrict to these photos (default all boxed photos).
    variants
        Restrict to these variant names (``"full"``, ``"flip"``, ``"left"``, ...).
    """
    from attribkit.zoo import vision

    objs = [o for o in photo_objects() if photos is None or o.photo in photos]
    counts: dict[str, int] = {}
    for o in objs:
        counts[o.photo] = counts.get(o.photo, 0) + 1
    seen: dict[str, int] = {}
    out: list[LabelledImage] = []
    for o in objs:
        k = seen[o.photo] = seen.get(o.photo, 0) + 1
        tag = f"#{k}" if counts[o.photo] > 1 else ""
        img = vision.load_photo(o.photo)
        for v in variants_of(img.shape[0], img.shape[1]):
            if variants is not None and v.name not in variants:
                continue
            boxes, kept = variant_boxes(o.boxes, (img.shape[0], img.shape[1]), v)
            if kept < MIN_KEPT or not boxes:
                continue
            out.append(LabelledImage(name=f"{o.photo}/{v.name}{tag}",
                                     x=vision.preprocess(variant_image(img, v)), boxes=boxes,
                                     classes=o.classes, object=o.object))
    return out
