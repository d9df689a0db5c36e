"""Forward-only fast path: a traced copy of an eval-mode model, BatchNorm folded into convolutions.

Perturbation methods and evaluations (``prepare(black_box=True)``) spend nearly all their time
in forward passes without gradients. For such a pass an eval-mode BatchNorm after a
convolution is a fixed affine map, which folds into the convolution's weights and bias
(:func:`~attribkit.core.batchnorm.merge_tensors`). :func:`fast_forward` traces the model with
``torch.fx`` (a ``Conv2d`` subclass that pads with a child module and calls ``F.conv2d`` is
traced through) and rewrites the trace:

* every ``BatchNorm`` whose input is a convolution's output (used by nothing else) is removed
  and the convolution reads folded copies of the weight and bias, held by the trace (the user's
  modules are shared, never written: their parameters, buffers and flags are the same objects
  with the same values afterwards);
* a zero padding module before such a convolution becomes the convolution's own padding (no
  padded copy of the batch): directly where it pads each axis equally on both sides, and for
  a depthwise convolution also where it does not (TensorFlow's ``same`` padding before a
  stride-2 convolution), by widening the kernel with zero taps;
* a 1 x 1 convolution of a channels-last batch is one matrix product (:func:`pointwise`);
* ``ReLU``, ``ReLU6``, ``Hardtanh``, ``LeakyReLU``, ``SiLU`` and ``Hardswish`` modules that read
  such a convolution's output run in place (no new tensor of that size to page in).

On EfficientNet-Lite0 (49 folds, 16 paddings, 32 matrix products, 33 in-place activations) a
forward pass of 3 channels-last photos cost 0.52x the CPU time of the model as given, one
thread (80 against 153 ms; 0.62x before the uneven paddings went). The values are the
same up to floating-point rounding (the folded weights round
differently): in float64 Integrated Gradients of EfficientNet-Lite0 moved by 6e-16; in float32
the kinks of ReLU6 amplify rounding in gradients (16-step IG of a photo: 0.27 % relative L2
from the model as given, where Captum and the model as given differ by 0.09 %). The copy is
used only where it reproduces the model's own outputs on the call's inputs (to ``sqrt(eps)``
of the dtype, relative).

The fast path is not used (the model runs as given) for models in training mode, with hooks, or
without a BatchNorm after a convolution; where tracing fails (data-dependent control flow) it
falls back silently. The copy is kept per model, input shape and layout
(:mod:`attribkit.core.memo`, so an edited model is traced again, and the copy goes with the
model); it holds folded convolution weights of its own, about the size of the model's.
:func:`plain_forward` turns the fast path off in a scope (to compare, or to rule it out).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from attribkit.core import memo
from attribkit.core.batchnorm import BATCHNORMS, CONV_TYPES, merge_tensors

__all__ = ["conv_args", "enabled", "fast_forward", "fold", "plain_forward", "pointwise",
           "reproduces", "trace"]

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs")
_STATE = threading.local()


@contextlib.contextmanager
def plain_forward() -> Iterator[None]:
    """Within this scope (this thread), forward-only problems run the model as given."""
    before = getattr(_STATE, "off", False)
    _STATE.off = True
    try:
        yield
    finally:
        _STATE.off = before


def enabled() -> bool:
    """Whether the fast path is on in this thread (see :func:`plain_forward`)."""
    return not getattr(_STATE, "off", False)


def _inplace(m: nn.Module) -> tuple[Callable[..., Tensor], tuple[Any, ...],
                                  dict[str, Any]] | None:
    """The in-place version of an activation module: function, extra arguments, keywords."""
    if isinstance(m, (nn.ReLU6, nn.Hardtanh)):
        return F.hardtanh_, (float(m.min_val), float(m.max_val)), {}
    if isinstance(m, nn.ReLU):
        return torch.relu_, (), {}
    if isinstance(m, nn.LeakyReLU):
        return F.leaky_relu_, (float(m.negative_slope),), {}
    if isinstance(m, nn.SiLU):
        return F.silu, (), {"inplace": True}
    if isinstance(m, nn.Hardswish):
        return F.hardswish, (), {"inplace": True}
    return None


_CONV_FNS = (torch.conv1d, torch.conv2d, torch.conv3d)
_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_PADS = (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
         nn.ConstantPad3d)


def _attr(gm: nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def conv_args(gm: fx.GraphModule, node: Any) -> dict[str, Any] | None:
    """A convolution node's arguments (weight and bias as tensors), or ``None``.

    A convolution module (zeros padding, numeric) or a call of ``conv1d/2d/3d`` whose weight and
    bias are attributes of the model (a ``Conv2d`` subclass that pads with a child module and
    calls ``F.conv2d``, traced through).
    """
    if not isinstance(node, fx.Node):
        return None
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        if (not isinstance(m, CONV_TYPES) or m.padding_mode != "zeros" or len(node.args) != 1
                or node.kwargs or isinstance(m.padding, str)):
            return None
        return {"input": node.args[0], "weight": m.weight, "bias": m.bias, "stride": m.stride,
                "padding": m.padding, "dilation": m.dilation, "groups": m.groups,
                "fn": _CONV_FNS[m.weight.dim() - 3]}
    if node.op != "call_function" or node.target not in _CONV_FNS:
        return None
    a: dict[str, Any] = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": None,
         **dict(zip(_ARGS, node.args, strict=False)), **node.kwargs}
    w, b = a.get("weight"), a["bias"]
    if not (isinstance(w, fx.Node) and w.op == "get_attr") or isinstance(a["padding"], str):
        return None
    if b is not None and not (isinstance(b, fx.Node) and b.op == "get_attr"):
        return None
    a["weight"] = _attr(gm, str(w.target))
    a["bias"] = None if b is None else _attr(gm, str(b.target))
    a["fn"] = node.target
    return a


def _emit(gm: fx.GraphModule, old: fx.Node, a: dict[str, Any], layout: bool) -> fx.Node:
    """A ``convNd`` call with ``a``'s arguments, its tensors held by ``gm``, replacing ``old``."""
    names: list[str | None] = []
    for what in ("weight", "bias"):
        t = a[what]
        if t is None:
            names.append(None)
            continue
        t = t.detach()
        if layout and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        name = f"attribkit_{what}_{len(gm._buffers)}"
        gm.register_buffer(name, t)
        names.append(name)
    with gm.graph.inserting_before(old):
        w = gm.graph.get_attr(str(names[0]))
        b = None if names[1] is None else gm.graph.get_attr(names[1])
        if _is_pointwise(a):
            new = gm.graph.call_function(pointwise, (a["input"], w, b))
        else:
            new = gm.graph.call_function(a["fn"], (a["input"], w, b, a["stride"], a["padding"],
                                                   a["dilation"], a["groups"]))
    old.replace_all_uses_with(new)
    gm.graph.erase_node(old)
    return new


def pointwise(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A 1 x 1 convolution (stride 1, no padding, one group) of a 4-D batch as one matrix product.

    A channels-last batch is a ``(N H W, C)`` matrix already: one ``addmm`` with the
    ``(O, C)`` weight, and the result read back as a channels-last ``(N, O, H, W)`` batch
    (no copy). Other layouts go to ``conv2d``.
    """
    if x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last):
        return F.conv2d(x, weight, bias)
    n, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
    w2 = weight.reshape(weight.shape[0], c).t()
    out = rows @ w2 if bias is None else torch.addmm(bias, rows, w2)
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def _zero_pad(gm: fx.GraphModule, node: Any, dims: int) -> tuple[tuple[int, int], ...] | None:
    """``(before, after)`` per axis (first axis first) of a zero-padding module, or None."""
    if not isinstance(node, fx.Node) or node.op != "call_module" or len(node.users) != 1:
        return None
    m = gm.get_submodule(str(node.target))
    if not isinstance(m, _PADS) or float(m.value) != 0.0 or len(m.padding) != 2 * dims:
        return None
    p = tuple(int(v) for v in m.padding)  # last axis first: (left, right, top, bottom, ...)
    if any(v < 0 for v in p):
        return None
    return tuple((p[2 * (dims - 1 - i)], p[2 * (dims - 1 - i) + 1]) for i in range(dims))


def _own_padding(a: dict[str, Any], pad: tuple[tuple[int, int], ...]) -> bool:
    """Make a zero pad before the convolution ``a`` its own padding; False where it cannot.

    Equal sides become the convolution's padding. Unequal sides (``same`` padding before a
    stride-2 convolution pads one more after than before) are taken by a depthwise convolution
    (one input channel per group, dilation 1) as the larger side on both, its kernel widened by
    zero taps on the side of the smaller one: output ``o`` then reads the inputs it read before,
    and the zero taps read only the extra padding. The wider kernel does more arithmetic, but a
    depthwise convolution is bound by memory, not arithmetic, and the padded copy of the batch
    it saves cost more (EfficientNet-Lite0: about 15 % of a forward pass).
    """
    if not _zero(a["padding"]):
        return False
    if all(lo == hi for lo, hi in pad):
        a["padding"] = tuple(lo for lo, _ in pad)
        return True
    w = a["weight"]
    if w.shape[1] != 1 or not _ones(a["dilation"]):
        return False
    widen: list[int] = []  # F.pad order: last axis first, (front, back)
    for lo, hi in reversed(pad):
        widen += [hi - lo, 0] if hi > lo else [0, lo - hi]
    a["weight"] = F.pad(w.detach(), widen)
    a["padding"] = tuple(max(lo, hi) for lo, hi in pad)
    return True


def _is_pointwise(a: dict[str, Any]) -> bool:
    w = a["weight"]
    return (a["fn"] is torch.conv2d and tuple(w.shape[2:]) == (1, 1) and int(a["groups"]) == 1
            and _zero(a["padding"]) and _ones(a["stride"]) and _ones(a["dilation"]))


def _ones(v: Any) -> bool:
    return all(int(u) == 1 for u in (v if isinstance(v, (tuple, list)) else (v,)))


def _zero(padding: Any) -> bool:
    return all(int(v) == 0 for v in (padding if isinstance(padding, (tuple, list))
                                     else (padding,)))


def _has_hooks(model: nn.Module) -> bool:
    from torch.nn.modules import module as torch_module

    if any(getattr(torch_module, g, None) for g in (
            "_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")):
        return True
    return any(getattr(m, d, None) for m in model.modules() for d in _HOOK_DICTS)


def trace(model: object) -> fx.GraphModule | None:
    """``model`` traced with ``torch.fx``, or ``None``: not a module, in training mode, with
    hooks, or not traceable (data-dependent control flow, an untraceable call)."""
    if not isinstance(model, nn.Module) or any(m.training for m in model.modules()) or (
            _has_hooks(model)):
        return None
    try:
        return fx.symbolic_trace(model)
    except Exception:
        return None


def fold(model: nn.Module, channels_last: bool = False,
         inplace: bool = True) -> fx.GraphModule | None:
    """The traced model with BatchNorms folded and activations in place, or ``None``.

    ``None`` where the model cannot be traced, is in training mode, has hooks or has no
    BatchNorm after a convolution (then there is nothing to gain).

    Parameters
    ----------
    model
        The user's model (never written).
    channels_last
        Lay the folded 4-D weights out channels-last (for channels-last batches).
    inplace
        Run activations after a convolution in place (forward-only use; gradients through the
        copy are recorded without it).
    """
    if not any(isinstance(m, BATCHNORMS) for m in model.modules()):
        return None
    gm = trace(model)
    if gm is None:
        return None
    folds = 0
    for node in list(gm.graph.nodes):
        bn = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        src = node.args[0] if node.args else None
        if (not isinstance(bn, BATCHNORMS) or not isinstance(src, fx.Node)
                or len(src.users) != 1 or len(node.args) != 1 or node.kwargs):
            continue
        a = conv_args(gm, src)
        try:
            merged = None if a is None else merge_tensors(a["weight"], a["bias"], bn,
                                                          str(node.target))
        except Exception:  # no running statistics: left as it is
            merged = None
        if a is None or merged is None:
            continue
        a["weight"], a["bias"] = merged
        node.replace_all_uses_with(_emit(gm, src, a, channels_last))
        gm.graph.erase_node(node)
        folds += 1
    if folds == 0:
        return None
    for node in list(gm.graph.nodes):
        a = conv_args(gm, node)
        pad = None if a is None else _zero_pad(gm, a["input"], a["weight"].dim() - 2)
        if a is None or pad is None or not _own_padding(a, pad):
            continue
        outer = a["input"]
        a["input"] = outer.args[0]
        _emit(gm, node, a, channels_last)
        gm.graph.erase_node(outer)
    for node in list(gm.graph.nodes) if inplace else ():
        act = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        fn = _inplace(act) if isinstance(act, nn.Module) else None
        src = node.args[0] if node.args else None
        fresh = isinstance(src, fx.Node) and src.target is pointwise
        if fn is None or len(node.args) != 1 or node.kwargs or not (
                fresh or conv_args(gm, src) is not None):
            continue
        assert isinstance(src, fx.Node)
        if len(src.users) != 1:
            continue
        with gm.graph.inserting_after(node):
            new = gm.graph.call_function(fn[0], (src, *fn[1]), fn[2])
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for name in [b for b in gm._buffers if b.startswith("attribkit_") and b not in used]:
        del gm._buffers[name]  # a folded weight replaced by a padded one
    try:
        gm.graph.lint()
        gm.recompile()
    except Exception:
        return None
    return gm


def fast_forward(model: object, inputs: Tensor, output: Tensor, args: tuple[Tensor, ...],
                 key: Hashable, now: tuple[Any, ...] | None, channels_last: bool,
                 inplace: bool = True) -> Callable[..., Any] | None:
    """The fast copy of ``model`` for forward-only calls, or ``None`` (run the model as given).

    Made once per model and ``key`` (the input shape) and kept with the model's fingerprint
    ``now``; used only when its output on ``inputs`` (with ``args``) matches ``output``, the
    model's own, to ``sqrt(eps)`` relative.

    Parameters
    ----------
    model
        The user's model.
    inputs
        The call's inputs ``(N, ...)``.
    output
        The model's output on ``inputs``.
    args
        Extra per-example tensors passed after the inputs.
    key
        What the check depends on besides the model (shapes, dtypes, device).
    now
        The model's fingerprint (:func:`attribkit.core.memo.stamp`).
    channels_last
        Whether the batches are laid out channels-last.
    inplace
        See :func:`fold`.
    """
    if not enabled() or not isinstance(model, nn.Module):
        return None
    full = ("fast forward", key, channels_last, inplace)
    known = memo.recall(model, full, now)
    if known is not None:
        return None if known is False else known
    gm = fold(model, channels_last, inplace)
    if gm is not None and not _agrees(gm, inputs, output, args, channels_last):
        gm = None
    memo.remember(model, full, now, gm if gm is not None else False)
    return gm


def _agrees(gm: nn.Module, inputs: Tensor, output: Tensor, args: tuple[Tensor, ...],
            channels_last: bool) -> bool:
    if channels_last and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            got = gm(inputs, *args)
    except Exception:
        return False
    return reproduces(got, output)


def reproduces(got: object, output: Tensor) -> bool:
    """Whether ``got`` is ``output`` up to rounding: same shape and dtype, every entry within
    ``sqrt(eps)`` of the dtype times the largest ``|output|`` (equal for integer outputs).

    Parameters
    ----------
    got
        What a faster route computed.
    output
        The model's own output.
    """
    if not isinstance(got, Tensor) or got.shape != output.shape or got.dtype != output.dtype:
        return False
    if not output.is_floating_point():
        return bool(torch.equal(got, output))
    tol = float(torch.finfo(output.dtype).eps) ** 0.5
    scale = float(output.abs().max()) if output.numel() else 0.0
    return bool(((got - output).abs() <= tol * scale + 1e-30).all())
