"""What a perturbation method will cost, said before any work, and its defaults on photos.

On a photo, one feature per player is a hang (occlusion of 150,528 values, one forward pass
each) or a refusal (KernelSHAP's regression over 150,528 players). :func:`photo_like` says when
an input is a photo; :func:`photo_window` and :func:`photo_grid` are the command line's groups
for it; :func:`check_memory` refuses what cannot fit in memory with the number and the fix;
:func:`announce` says how many forward passes a long call will make.
"""

from __future__ import annotations

import os

from torch import Tensor

from attribkit.core.coalitions import patch_group_ids
from attribkit.core.errors import InputError
from attribkit.core.notes import note

__all__ = ["LONG_CALL", "PHOTO_PIXELS", "announce", "check_memory", "machine_memory",
           "photo_grid", "photo_like", "photo_players", "photo_window"]

#: Images with more pixels than this (64 x 64) get grouped players by default.
PHOTO_PIXELS = 64 * 64
#: Forward passes above which a call without a progress bar says how many it will make.
LONG_CALL = 20_000


def photo_like(inputs: Tensor) -> bool:
    """Whether ``inputs`` are images ``(N, C, H, W)`` with more than :data:`PHOTO_PIXELS`."""
    return inputs.dim() == 4 and int(inputs.shape[-2]) * int(inputs.shape[-1]) > PHOTO_PIXELS


def photo_window(inputs: Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """Occlusion's window and stride on photos, as the command line's: a side of a 14th of the
    image (16 on 224 x 224) and half of it as the stride."""
    side = max(1, min(int(inputs.shape[-2]), int(inputs.shape[-1])) // 14)
    step = max(1, side // 2)
    return (side, side), (step, step)


def photo_grid(inputs: Tensor) -> Tensor:
    """Players on photos, as the command line's: 4 x 4 square patches over all channels."""
    side = max(1, min(int(inputs.shape[-2]), int(inputs.shape[-1])) // 4)
    return patch_group_ids(tuple(inputs.shape[1:]), (side, side))


def photo_players(inputs: Tensor, mask: Tensor | None, method: str) -> Tensor | None:
    """``mask``, or on photos where it is ``None`` the 4 x 4 patches of :func:`photo_grid`
    with a one-line note (every pixel a player would not fit in memory or time)."""
    if mask is not None or not photo_like(inputs):
        return mask
    grid = photo_grid(inputs)
    h, w = (int(s) for s in inputs.shape[-2:])
    note(f"{method} on {h} x {w} images plays 16 square patches (4 x 4 over all channels), not "
         f"{inputs[0].numel():,} single values; pass feature_mask= (attribkit.masks.superpixels "
         "or attribkit.masks.grid) to choose.")
    return grid


def machine_memory() -> int:
    """Bytes of physical memory (16 GiB where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 16 << 30


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse, in one line, a request of ``nbytes`` that cannot fit in this machine's memory.

    Parameters
    ----------
    nbytes
        The estimated bytes.
    what
        What needs them (``"kernel_shap with 150528 players"``).
    fix
        How to ask for less.
    """
    have = machine_memory()
    if nbytes > have:
        raise InputError(f"{what} needs about {_size(nbytes)}, more than this machine's "
                         f"{_size(have)}: {fix}")


def announce(method: str, passes: int, progress: bool, how: str = "") -> None:
    """Say before the work that ``method`` will make ``passes`` forward passes, when that is
    more than :data:`LONG_CALL` and no progress bar will show them."""
    if passes > LONG_CALL and not progress:
        note(f"{method} will make {passes:,} forward passes; progress=True shows them"
             + (f", {how}" if how else "") + ".")


def _size(nbytes: float) -> str:
    gib = nbytes / (1 << 30)
    return f"{gib:,.0f} GiB" if gib >= 10 else f"{gib:.1f} GiB"
