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
    from skimage.morphology import dilation as dilate
    from skimage.morphology import disk
    from skimage.segmentation import felzenszwalb
    from skimage.transform import resize as resize_image

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
    masks: list[np.ndarray] = []
    for scale in scales:
        labels = felzenszwalb(im, scale=scale, sigma=_SIGMA, min_size=_MIN_SIZE,
                              channel_axis=channel_axis)
        if resize:
            labels = resize_image(  # type: ignore[no-untyped-call]
                labels, image.shape[:2], order=0, preserve_range=True, mode="constant",
                anti_aliasing=False).astype(int)
        masks.extend(labels == k for k in range(labels.min(), labels.max() + 1))
    if dilation:
        foot = disk(dilation)  # type: ignore[no-untyped-call]
        masks = [dilate(mk, footprint=foot) for mk in masks]
    return masks
