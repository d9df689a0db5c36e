"""Localisation: how much of the attribution falls where the evidence is (Gradients of
Counterfactuals; the pointing game of Zhang et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.core.signs import DEFAULT_SIGN, check_sign, resolve_sign
from attribkit.core.summary import summary_repr
from attribkit.evaluate._features import pixel_map

__all__ = ["Box", "Localisation", "localisation", "mass_inside", "pointing_game", "region_mask"]

#: A box ``(top, left, bottom, right)`` in pixels, bottom and right exclusive.
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Localisation:
    """Localisation scores per example.

    Attributes
    ----------
    mass_share
        ``(N,)`` share of the total attribution mass inside the region.
    region_share
        ``(N,)`` share of the positions inside the region (the value a uniform map would get).
    hit
        ``(N,)`` whether the maximum of the map lies in the region (pointing game).
    """

    mass_share: Tensor
    region_share: Tensor
    hit: Tensor

    __repr__ = summary_repr

    def _headline(self) -> list[str]:
        return [f"mean_mass_share={self.mean_mass_share:.4g}",
                f"pointing_accuracy={self.pointing_accuracy:.4g}"]

    @property
    def mean_mass_share(self) -> float:
        """The mean share inside the region."""
        return float(self.mass_share.mean())

    @property
    def pointing_accuracy(self) -> float:
        """The share of examples whose maximum lies in the region."""
        return float(self.hit.to(torch.float64).mean())


_LOCAL_SIGNS = ("absolute", "positive", "negative")


def _map(attributions: Attribution | Tensor, sign: str) -> Tensor:
    if isinstance(attributions, Attribution) and attributions.multi_target:
        raise InputError("this attribution has several targets; pick one with "
                         "attribution.for_target(k).")
    v = attributions.values if isinstance(attributions, Attribution) else attributions
    if not isinstance(v, Tensor) or v.dim() < 2:
        raise InputError("attributions must be an Attribution or an (N, ...) tensor.")
    check_sign(sign, _LOCAL_SIGNS)
    return pixel_map(v.detach(), sign)


def region_mask(region: Tensor | Box | Sequence[Box], shape: Sequence[int]) -> Tensor:
    """A boolean mask ``(N, *shape[1:])`` from a box, one box per example, or a mask.

    Parameters
    ----------
    region
        A box ``(top, left, bottom, right)``, a list of ``N`` boxes, or a boolean / 0-1 mask
        broadcastable to ``shape``.
    shape
        The shape of the importance map ``(N, H, W)`` (or ``(N, ...)`` for masks).
    """
    n = int(shape[0])
    if isinstance(region, Tensor):
        m = region.to(torch.bool)
        try:
            return m.reshape(*([1] * (len(shape) - m.dim())), *m.shape).expand(*shape)
        except RuntimeError as err:
            raise InputError(f"region mask {tuple(region.shape)} does not broadcast to the map "
                             f"{tuple(shape)}.") from err
    if len(shape) != 3:
        raise InputError("boxes need image attributions (N, C, H, W) or maps (N, H, W).")
    boxes: list[Box]
    if len(region) == 4 and all(isinstance(v, int) for v in region):
        boxes = [region] * n  # type: ignore[list-item]
    else:
        boxes = list(region)  # type: ignore[arg-type]
    if len(boxes) != n:
        raise InputError(f"give one box or {n} boxes (one per example), got {len(boxes)}.")
    mask = torch.zeros(tuple(shape), dtype=torch.bool)
    for i, (t, left, b, r) in enumerate(boxes):
        if not (0 <= t < b and 0 <= left < r):
            raise InputError(f"box {(t, left, b, r)} is empty; use (top, left, bottom, right).")
        mask[i, t:b, left:r] = True
    return mask


def mass_inside(attributions: Attribution | Tensor, region: Tensor | Box | Sequence[Box], *,
                sign: str = DEFAULT_SIGN, absolute: bool | None = None) -> Tensor:
    """The share of the attribution mass inside the region, ``(N,)`` (Gradients of Counterfactuals).

    Parameters
    ----------
    attributions
        An :class:`Attribution` or a tensor; images are reduced to ``sum_c |a|`` per pixel.
    region
        See :func:`region_mask`.
    sign
        ``"absolute"``: magnitudes (Gradients of Counterfactuals); ``"positive"`` / ``"negative"``:
        evidence for / against the target only (the mass of a signed map is not defined, so not
        ``"all"``).
    absolute
        Deprecated: ``True`` is ``sign="absolute"``, ``False`` is ``sign="positive"``.
    """
    sign = resolve_sign(sign, absolute, where="mass_inside", when_false="positive")
    m = _map(attributions, sign)
    mask = region_mask(region, m.shape).to(m.device)
    flat, fm = m.reshape(m.shape[0], -1), mask.reshape(m.shape[0], -1)
    total = flat.sum(dim=1)
    inside = (flat * fm).sum(dim=1)
    return torch.where(total > 0, inside / total.clamp_min(1e-300), torch.zeros_like(total))


def pointing_game(attributions: Attribution | Tensor, region: Tensor | Box | Sequence[Box], *,
                  tolerance: int = 0, sign: str = DEFAULT_SIGN,
                  absolute: bool | None = None) -> Tensor:
    """Whether the map's maximum lies in the region (widened by ``tolerance`` pixels), ``(N,)``.

    Parameters
    ----------
    attributions
        An :class:`Attribution` or a tensor.
    region
        See :func:`region_mask`.
    tolerance
        Pixels by which the region is dilated (Zhang et al. use 15 on 224-pixel images).
    sign, absolute
        As for :func:`mass_inside`.
    """
    sign = resolve_sign(sign, absolute, where="pointing_game", when_false="positive")
    m = _map(attributions, sign)
    mask = region_mask(region, m.shape).to(m.device)
    if tolerance > 0 and mask.dim() == 3:
        k = 2 * tolerance + 1
        mask = torch.nn.functional.max_pool2d(mask[:, None].to(torch.float32), k, stride=1,
                                              padding=tolerance)[:, 0] > 0
    flat = m.reshape(m.shape[0], -1)
    top = flat.argmax(dim=1)
    return mask.reshape(m.shape[0], -1).gather(1, top[:, None])[:, 0]


def localisation(attributions: Attribution | Tensor, region: Tensor | Box | Sequence[Box], *,
                 tolerance: int = 0, sign: str = DEFAULT_SIGN,
                 absolute: bool | None = None) -> Localisation:
    """Mass share, region share and pointing-game hits together.

    Parameters
    ----------
    attributions, region, tolerance, sign, absolute
        As for :func:`mass_inside` and :func:`pointing_game`.
    """
    sign = resolve_sign(sign, absolute, where="localisation", when_false="positive")
    m = _map(attributions, sign)
    mask = region_mask(region, m.shape)
    return Localisation(mass_share=mass_inside(attributions, region, sign=sign),
                        region_share=mask.reshape(m.shape[0], -1).to(torch.float64).mean(dim=1),
                        hit=pointing_game(attributions, region, tolerance=tolerance, sign=sign))
