"""Over-segmentation of an image at several scales (Felzenszwalb & Huttenlocher 2004, via
scikit-image), as XRAI uses it (Kapishnikov et al. 2019, section 3.1).

The image's values are rescaled to ``[-1, 1]`` and, by default, the image is resized to
224 x 224 so that the scales mean the same on every image; it is segmented at each scale, the
label maps are resized back (nearest), and each region becomes a boolean mask, dilated by a disk
so that regions include their edges. These are the settings of the paper's reference code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SCALES", "felzenszwalb_masks"]

#: Felzenszwalb ``scale`` values (larger: bigger regions).
SCALES = (50, 100, 150, 250, 500, 1200)
_SIGMA = 0.8
_MIN_SIZE = 150
_SIZE = (224, 224)


def felzenszwalb_masks(image: np.ndarray, *, scales: Sequence[float] = SCALES,
                       resize: bool = True, dilation: int = 5) -> list[np.ndarray]:
    """Region masks of ``image`` ``(H, W, C)`` (or ``(H, W)``) at every scale.

    Parameters
    ----------
    image
        The image, channels last; any value range.
    scales
        Felzenszwalb scales, one segmentation each.
    resize
        Segment a 224 x 224 copy and map the regions back.
    dilation
        Radius of the disk each mask is dilated by (0: none).

    Returns
    -------
    list of numpy.ndarray
        Boolean ``(H, W)`` masks, scale by scale, labels in increasing order (some may be
        empty after resizing back).
    """
    try:
        from skimage.morphology import disk
        from skimage.segmentation import felzenszwalb
        from skimage.transform import resize as resize_image
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("XRAI's regions need scikit-image: pip install 'attribkit[vision]', "
                          "or pass your own masks with segments=.") from err

    im = np.asarray(image, dtype=np.float64)
    if im.ndim == 3 and im.shape[2] == 1:
        im = im[:, :, 0]
    lo, hi = im.min(), im.max()
    im = (im - lo) / (hi - lo) if hi > lo else np.zeros_like(im)
    im = 2.0 * im - 1.0
    if resize:
        im = resize_image(im, _SIZE, order=3, mode="constant",  # type: ignore[no-untyped-call]
                          preserve_range=True, anti_aliasing=True)
    channel_axis = -1 if im.ndim == 3 else None
    foot = disk(dilation) if dilation else None  # type: ignore[no-untyped-call]
    masks: list[np.ndarray] = []
    for scale in scales:
        labels = felzenszwalb(im, scale=scale, sigma=_SIGMA, min_size=_MIN_SIZE,
                              channel_axis=channel_axis)
        if resize:
            labels = resize_image(  # type: ignore[no-untyped-call]
                labels, image.shape[:2], order=0, preserve_range=True, mode="constant",
                anti_aliasing=False).astype(int)
        masks.extend(_regions(labels, foot))
    return masks


def _regions(labels: np.ndarray, footprint: np.ndarray | None) -> list[np.ndarray]:
    """One mask per label from ``labels.min()`` to ``labels.max()``, each dilated by
    ``footprint`` (pixels outside the image count as unset).

    A pixel is in the dilated region of label ``l`` when some pixel of its (reflected)
    footprint neighbourhood has label ``l``: one pass per footprint offset over the label map,
    instead of one dilation per region.
    """
    lo, hi = int(labels.min()), int(labels.max())
    n = hi - lo + 1
    h, w = labels.shape
    if footprint is None:
        return [labels == lo + k for k in range(n)]
    rh, rw = footprint.shape[0] // 2, footprint.shape[1] // 2
    padded = np.full((h + 2 * rh, w + 2 * rw), -1, dtype=np.int64)
    padded[rh:rh + h, rw:rw + w] = labels - lo
    hit = np.zeros((n, h * w), dtype=bool)
    pixel = np.arange(h * w)
    for dy, dx in zip(*np.nonzero(footprint[::-1, ::-1]), strict=True):
        near = padded[dy:dy + h, dx:dx + w].reshape(-1)
        ok = near >= 0
        hit[near[ok], pixel[ok]] = True
    return [row.reshape(h, w) for row in hit]
