"""What a network does along the straight path from a baseline to an image: the top-class logit
and softmax score, and how far chosen layers' activations are from their values at the image.

Shared by the saturation experiment (Gradients of Counterfactuals, Figures 2 and 12); one forward
pass per path point gives all of them. Forward hooks are removed and the model's flags restored on
exit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.core.guard import ModelGuard, refuse_batch_statistics
from attribkit.core.progress import progress_bar
from attribkit.core.summary import summary_repr

__all__ = ["PathActivity", "default_layers", "logit_network", "path_activity", "path_gradients",
           "reach_alpha"]


@dataclass(frozen=True)
class PathActivity:
    """The network along ``x' + alpha (x - x')`` for each image.

    Attributes
    ----------
    alphas
        ``(A,)`` increasing, ending at 1.
    target
        ``(N,)`` the top class at each image (fixed along its path).
    logit
        ``(N, A)`` the target's pre-softmax logit (Figure 2b).
    probability
        ``(N, A)`` its softmax score (Figure 2a).
    l2
        ``layer -> (N, A)`` ``||a(alpha) - a(1)|| / ||a(1)||``, the L2 distance of the layer's
        activation vector to its value at the image, relative to the latter's norm (Figure 12).
    cosine
        ``layer -> (N, A)`` ``1 - cos(a(alpha), a(1))`` (Figure 12).
    """

    alphas: Tensor
    target: Tensor
    logit: Tensor
    probability: Tensor
    l2: dict[str, Tensor]
    cosine: dict[str, Tensor]

    __repr__ = summary_repr


def reach_alpha(alphas: Tensor, curves: Tensor, fraction: float = 0.9) -> Tensor:
    """``(N,)`` the first alpha where ``(c(alpha) - c(0)) / (c(1) - c(0))`` reaches ``fraction``
    (``nan`` where it never does, or where ``c(1) == c(0)``).

    Parameters
    ----------
    alphas
        ``(A,)`` from 0 to 1.
    curves
        ``(N, A)`` one curve per image.
    fraction
        The share of the total change.
    """
    rise = curves[:, -1:] - curves[:, :1]
    norm = (curves - curves[:, :1]) / torch.where(rise == 0, torch.ones_like(rise), rise)
    reached = (norm >= fraction) & (rise != 0)
    first = alphas[reached.to(torch.int64).argmax(dim=1)].to(torch.float64)
    return torch.where(reached.any(dim=1), first, torch.full_like(first, float("nan")))


def logit_network(model: nn.Module) -> nn.Module:
    """The part of ``model`` before its final softmax (the model itself if it has none).

    Recognises :class:`attribkit.zoo.vision.SoftmaxModel` (``.model`` and ``.softmax``), an
    ``nn.Sequential`` ending in ``nn.Softmax``, and a module whose ``.net`` is such a sequence.

    Parameters
    ----------
    model
        A classifier that may end in a softmax.
    """
    if isinstance(getattr(model, "softmax", None), nn.Softmax) and isinstance(
            getattr(model, "model", None), nn.Module):
        inner: nn.Module = model.model  # type: ignore[assignment]
        return inner
    seq = model if isinstance(model, nn.Sequential) else getattr(model, "net", None)
    if isinstance(seq, nn.Sequential) and len(seq) > 1 and isinstance(seq[-1], nn.Softmax):
        return seq[0] if len(seq) == 2 else seq[:-1]
    if isinstance(model, nn.Module) and not any(isinstance(m, nn.Softmax)
                                                 for m in model.modules()):
        return model
    raise InputError(f"cannot find the logits of {type(model).__name__}: give the network "
                     "without its softmax (e.g. attribkit.zoo.vision.load_efficientnet_lite0()).")


def default_layers(net: nn.Module, count: int = 4) -> dict[str, nn.Module]:
    """``count`` layers spread from early to deepest: EfficientNet's blocks (``_blocks``), else
    the network's Conv2d / Linear modules, the last one excluded (it gives the logits).

    Parameters
    ----------
    net
        The network without softmax.
    count
        How many layers.
    """
    blocks = getattr(net, "_blocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks) >= count:
        idx = torch.linspace(len(blocks) / count - 1, len(blocks) - 1, count).round().long()
        return {f"_blocks.{int(i)}": blocks[int(i)] for i in idx}
    names = {m: n for n, m in net.named_modules()}
    linear = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    if not linear:
        raise InputError("the network has no Conv2d/Linear layer before its output; pass "
                         "layers={name: module} explicitly.")
    picks = linear[-count:]
    return {names[m]: m for m in picks}


def path_activity(net: nn.Module, inputs: Tensor, *, baseline: float | Tensor,
                  alphas: Tensor, layers: Mapping[str, nn.Module], batch_size: int = 8,
                  progress: bool = False) -> PathActivity:
    """Logits, softmax scores and layer distances along each image's straight path.

    Parameters
    ----------
    net
        A classifier returning ``(N, C)`` logits (no softmax), in eval mode.
    inputs
        ``(N, ...)`` images.
    baseline
        The path's start: a number or a tensor broadcastable to ``inputs``.
    alphas
        ``(A,)`` increasing values from 0 to 1 (the last must be 1: the image itself).
    layers
        ``name -> module`` whose outputs are compared with their values at the image.
    batch_size
        Path points per forward pass.
    progress
        Show a progress bar.
    """
    a = torch.as_tensor(alphas, dtype=inputs.dtype)
    if a.dim() != 1 or a.numel() < 2 or bool((a.diff() <= 0).any()) or float(a[-1]) != 1.0:
        raise InputError("alphas must increase and end at 1 (the image itself).")
    refuse_batch_statistics(net)
    b = torch.as_tensor(baseline, dtype=inputs.dtype).expand_as(inputs)
    captured: dict[str, list[Tensor]] = {}
    logits: list[Tensor] = []

    def keep(name: str) -> object:
        def hook(_m: nn.Module, _i: object, out: Tensor) -> None:
            captured[name].append(out.detach().flatten(1).to(torch.float64))
        return hook

    bar = progress_bar(inputs.shape[0] * a.numel(), "saturation along the path", progress)
    with bar, ModelGuard(net) as guard, torch.no_grad():
        for name, module in layers.items():
            captured[name] = []
            guard.add_handle(module.register_forward_hook(keep(name)))  # type: ignore[arg-type]
        for i in range(inputs.shape[0]):
            pts = b[i:i + 1] + a.reshape(-1, *([1] * (inputs.dim() - 1))) * (inputs[i:i + 1]
                                                                              - b[i:i + 1])
            for s in range(0, a.numel(), batch_size):
                logits.append(net(pts[s:s + batch_size]).detach().to(torch.float64))
                bar.update(min(batch_size, a.numel() - s))
    out = torch.cat(logits).reshape(inputs.shape[0], a.numel(), -1)
    target = out[:, -1].argmax(dim=1)
    pick = target.reshape(-1, 1, 1).expand(-1, a.numel(), 1)
    logit = out.gather(2, pick)[..., 0]
    prob = out.softmax(dim=2).gather(2, pick)[..., 0]
    l2: dict[str, Tensor] = {}
    cos: dict[str, Tensor] = {}
    for name, parts in captured.items():
        if not parts:
            raise InputError(f"layer {name!r} never ran in the network's forward pass; give "
                             "modules of the network itself.")
        act = torch.cat(parts).reshape(inputs.shape[0], a.numel(), -1)
        end = act[:, -1:]
        l2[name] = (act - end).norm(dim=2) / end.norm(dim=2).clamp_min(1e-300)
        cos[name] = 1 - torch.nn.functional.cosine_similarity(act, end.expand_as(act), dim=2,
                                                              eps=1e-300)
    return PathActivity(alphas=a.to(torch.float64), target=target, logit=logit,
                        probability=prob, l2=l2, cosine=cos)


def path_gradients(net: nn.Module, inputs: Tensor, *, baseline: float | Tensor, alphas: Tensor,
                   target: Tensor, batch_size: int = 8,
                   progress: bool = False) -> tuple[Tensor, Tensor]:
    """Mean |gradient| of the target's softmax score and of its logit at each alpha.

    One forward and two backward passes per point (the logit's graph is reused).

    Parameters
    ----------
    net
        A classifier returning ``(N, C)`` logits (no softmax), in eval mode.
    inputs
        ``(N, ...)`` images.
    baseline
        The path's start.
    alphas
        ``(G,)`` where the gradients are taken.
    target
        ``(N,)`` the class of each image.
    batch_size
        Path points per pass.
    progress
        Show a progress bar.

    Returns
    -------
    tuple of Tensor
        ``(N, G)`` mean |d softmax / dx| and ``(N, G)`` mean |d logit / dx|, float64.
    """
    a = torch.as_tensor(alphas, dtype=inputs.dtype)
    refuse_batch_statistics(net)
    b = torch.as_tensor(baseline, dtype=inputs.dtype).expand_as(inputs)
    prob = torch.empty(inputs.shape[0], a.numel(), dtype=torch.float64)
    logit = torch.empty_like(prob)
    bar = progress_bar(inputs.shape[0] * a.numel(), "interior gradients", progress)
    with bar, ModelGuard(net), torch.enable_grad():
        for i in range(inputs.shape[0]):
            c = int(target[i])
            for s in range(0, a.numel(), batch_size):
                w = a[s:s + batch_size].reshape(-1, *([1] * (inputs.dim() - 1)))
                pts = (b[i:i + 1] + w * (inputs[i:i + 1] - b[i:i + 1])).detach()
                pts.requires_grad_(True)
                z = net(pts)
                (gl,) = torch.autograd.grad(z[:, c].sum(), pts, retain_graph=True)
                (gp,) = torch.autograd.grad(z.softmax(dim=1)[:, c].sum(), pts)
                logit[i, s:s + len(w)] = gl.abs().flatten(1).mean(dim=1).to(torch.float64)
                prob[i, s:s + len(w)] = gp.abs().flatten(1).mean(dim=1).to(torch.float64)
                bar.update(len(w))
    return prob, logit
