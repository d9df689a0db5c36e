"""A model's input space: how a pixel value becomes the value the model sees.

A named baseline (``"black"``, ``"white"``, ``"grey"``) is a colour, so its value in the model's
input depends on the model's normalisation: on attribkit's EfficientNet, which sees
``(pixels - 127) / 128``, black is ``-127/128``, not ``0``. A model declares its normalisation
with an :class:`InputSpace` in the attribute ``attribkit_input_space`` (attribkit's zoo models
do); the named baselines go through it. For a model without one, such a name is taken as the
value of a ``[0, 1]`` image and a warning says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ATTRIBUTE", "COLOURS", "InputSpace", "input_space_of"]

#: The model attribute that holds its :class:`InputSpace`.
ATTRIBUTE = "attribkit_input_space"
#: The named baselines that are colours, as fractions of the brightest pixel.
COLOURS = {"black": 0.0, "grey": 0.5, "gray": 0.5, "white": 1.0}


@dataclass(frozen=True)
class InputSpace:
    """``model value = (pixel - mean) / scale``, per channel (axis 1) or for all channels.

    Parameters
    ----------
    mean
        Subtracted from a pixel value: one number, or one per channel.
    scale
        The pixel value is then divided by it: one number, or one per channel.
    pixel_max
        The value of the brightest pixel (255 for bytes, 1 for ``[0, 1]`` images).

    Examples
    --------
    >>> InputSpace(mean=127.0, scale=128.0, pixel_max=255.0).colour("black")
    -0.9921875
    """

    mean: float | Sequence[float] = 0.0
    scale: float | Sequence[float] = 1.0
    pixel_max: float = 1.0

    def colour(self, name: str) -> float | tuple[float, ...]:
        """The model value of the colour ``name`` (a key of :data:`COLOURS`), per channel
        where the space has per-channel constants."""
        pixel = COLOURS[name] * float(self.pixel_max)
        means, scales = _many(self.mean), _many(self.scale)
        n = max(len(means), len(scales))
        if len(means) not in (1, n) or len(scales) not in (1, n):
            raise ValueError("InputSpace mean and scale must have one value or the same number "
                             "of channels.")
        values = tuple((pixel - means[i % len(means)]) / scales[i % len(scales)]
                       for i in range(n))
        return values[0] if n == 1 else values


def _many(v: float | Sequence[float]) -> tuple[float, ...]:
    return (float(v),) if isinstance(v, (int, float)) else tuple(float(a) for a in v)


def input_space_of(model: object) -> InputSpace | None:
    """The :class:`InputSpace` that ``model`` declares, or ``None``."""
    space = getattr(model, ATTRIBUTE, None)
    return space if isinstance(space, InputSpace) else None
