"""Forward passes of images that differ from one reference image only inside a box.

Occlusion evaluates a model on copies of an image that differ from it only under the window. In
a convolutional network that change reaches, layer by layer, only a neighbourhood of the
window: a ``k x k`` convolution widens it by ``k - 1`` and a stride divides it. :class:`Local`
runs a traced model (:mod:`attribkit.core.fastgraph`'s copy) on such copies computing, in every
layer it can, only the box of the activation that may differ from the reference's; the rest is
read from the reference's activations, computed once. A convolution reads its input box with
the margin its kernel needs (the reference's values around the changed box, zeros outside the
map); elementwise operations (activations, BatchNorm in eval mode, adding a number or a
per-channel tensor) work on the box alone; the sum of two boxes (a residual connection) works
on the larger where it holds the smaller. Where the box would cover the whole map, or an
operation is not one of these (pooling, a reshape, the classifier), the full activation is
assembled (reference outside the box) and the graph runs on as usual.

The result equals the model's up to floating-point rounding (a convolution of a crop sums the
same products as one of the whole map, in an order of the library's choosing); callers compare
the first batch with the model's own output and fall back to full passes where they differ.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from attribkit.core.fastgraph import conv_args, pointwise

__all__ = ["Local", "crop_boxes"]

#: Modules that act on each value alone or per channel (in eval mode, as traced models are
#: here): a box of their input is enough.
_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.SiLU, nn.Hardswish,
                        nn.Sigmoid, nn.Tanh, nn.GELU, nn.ELU, nn.Identity, nn.BatchNorm2d,
                        nn.Dropout, nn.Dropout2d)
_ELEMENTWISE_FUNCTIONS = {torch.relu, torch.relu_, F.relu, F.relu6, F.hardtanh, F.hardtanh_,
                          F.silu, F.hardswish, F.gelu, torch.sigmoid, torch.tanh,
                          F.leaky_relu, F.leaky_relu_}
_ARITHMETIC = {operator.add, operator.mul, operator.sub, torch.add, torch.mul, torch.sub}


@dataclass
class _Box:
    """Rows whose activation differs from the reference's only in ``patch``'s box."""

    patch: Tensor  # (R, C, h, w)
    top: Tensor  # (R,) first map row of the box
    left: Tensor  # (R,) first map column


def _span(k: int, s: int, p: int, d: int, size: int, n_out: int) -> int:
    """How many outputs of a convolution axis ``size`` changed inputs can reach, at most."""
    most = 0
    for a in range(s):  # the count depends on the box's start only modulo the stride
        lo = -(-(a + p - (k - 1) * d) // s)
        hi = (a + size - 1 + p) // s
        most = max(most, hi - lo + 1)
    return min(most, n_out)


class Local:
    """Forward passes of rows that differ from ``reference`` only inside a fixed-size box.

    Parameters
    ----------
    gm
        The traced model in eval mode (its first placeholder takes the images
        ``(N, C, H, W)``).
    reference
        ``(1, C, H, W)``: the image the rows differ from.
    box
        ``(h, w)``: the size of the box in which they differ.
    """

    def __init__(self, gm: fx.GraphModule, reference: Tensor, box: tuple[int, int]) -> None:
        self.gm = gm
        self.box = (int(box[0]), int(box[1]))
        self.nodes = list(gm.graph.nodes)
        self.input = next(n for n in self.nodes if n.op == "placeholder")
        self.ref: dict[fx.Node, Any] = {}
        self._padded: dict[tuple[fx.Node, int, int], Tensor] = {}
        self.local_nodes = 0
        #: False where an in-place operation writes an activation that something else reads
        #: too (boxes and whole activations would then see different values): do not use.
        self.usable = not any(_writes_shared(gm, n) for n in self.nodes)
        #: the other inputs of the model's forward, at their defaults (one without: not usable)
        self.defaults = {n: n.args[0] for n in self.nodes
                         if n.op == "placeholder" and n is not self.input and n.args}
        if any(n.op == "placeholder" and n is not self.input and n not in self.defaults
               for n in self.nodes):
            self.usable = False
        if not self.usable:
            return
        with torch.no_grad():
            env: dict[fx.Node, Any] = {}
            for node in self.nodes:
                if node.op == "placeholder":
                    value: Any = reference if node is self.input else self.defaults.get(node)
                elif node.op == "output":
                    break
                else:
                    value = self._run(node, env)
                env[node] = value
                # kept unchanged: a later in-place activation must not alter it
                self.ref[node] = value.clone() if isinstance(value, Tensor) else value

    @property
    def nbytes(self) -> int:
        """Bytes of the reference's activations this object keeps."""
        return sum(v.numel() * v.element_size() for v in self.ref.values()
                   if isinstance(v, Tensor) and v.dim() == 4)

    def __call__(self, rows: Tensor | Callable[[], Tensor], top: Tensor, left: Tensor,
                 patch: Tensor | None = None) -> Any:
        """The model's output on rows ``(R, C, H, W)`` that differ from the reference only in
        the boxes starting at rows ``top`` and columns ``left`` ``(R,)``.

        ``rows`` may be a function that makes them, called only if an operation needs the
        whole images; ``patch`` ``(R, C, h, w)``, the rows' boxes, saves cutting them out.
        """
        h, w = self.box
        if patch is None:
            rows = rows() if callable(rows) else rows
            patch = crop_boxes(rows, torch.arange(rows.shape[0], device=top.device), top, left,
                               h, w)
        # whole activations assembled so far; the images themselves, made when first needed
        full: dict[fx.Node, Tensor | Callable[[], Tensor]] = {self.input: rows}
        env: dict[fx.Node, Any] = {}
        self.local_nodes = 0
        for node in self.nodes:
            if node.op == "placeholder":
                env[node] = _Box(patch, top, left) if node is self.input else (
                    self.defaults.get(node))
                continue
            if node.op == "output":
                return fx.node.map_arg(node.args[0], lambda a: self._full(a, env, full))
            value = self._local(node, env)
            if value is None:
                value = self._run(node, env, full)
            else:
                self.local_nodes += 1
            env[node] = value
        raise RuntimeError("the traced model has no output node")

    # ------------------------------------------------------------------ running one node
    def _run(self, node: fx.Node, env: dict[fx.Node, Any],
             full: dict[fx.Node, Tensor | Callable[[], Tensor]] | None = None) -> Any:
        """``node`` on full values (boxes assembled into whole activations)."""
        def value(a: fx.Node) -> Any:
            return env[a] if full is None else self._full(a, env, full)

        args = fx.node.map_arg(node.args, value)
        kwargs = fx.node.map_arg(node.kwargs, value)
        if node.op == "get_attr":
            obj: Any = self.gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            return obj
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        if node.op == "call_module":
            return self.gm.get_submodule(str(node.target))(*args, **kwargs)
        if node.op == "call_method":
            this, *rest = args
            return getattr(this, str(node.target))(*rest, **kwargs)
        raise RuntimeError(f"unexpected node {node.op} in the traced model")

    def _full(self, a: fx.Node, env: dict[fx.Node, Any],
              full: dict[fx.Node, Tensor | Callable[[], Tensor]]) -> Any:
        v = env[a]
        if not isinstance(v, _Box):
            return v
        known = full.get(a)
        if known is None:
            known = self._assemble(self.ref[a], v, None, None)
        elif callable(known):
            known = known()
        full[a] = known
        return known

    def _local(self, node: fx.Node, env: dict[fx.Node, Any]) -> _Box | Tensor | None:
        """``node`` on boxes (a box, or a whole tensor for a mean over the map), or ``None``
        where it needs whole activations."""
        boxes = [a for a in node.all_input_nodes if isinstance(env.get(a), _Box)]
        if not boxes:
            return None
        if _global_mean(self.gm, node):
            return self._mean(node, env, node.args[0])
        if node.op == "call_module":
            m = self.gm.get_submodule(str(node.target))
            if isinstance(m, nn.Conv2d):
                return self._conv(node, env)
            if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)) and float(m.value) == 0.0:
                return self._pad(node, env, m.padding)
            if isinstance(m, _ELEMENTWISE_MODULES) and len(node.args) == 1 and not node.kwargs:
                v = env[node.args[0]]  # type: ignore[index]
                return _Box(m(v.patch), v.top, v.left)
            return None
        if node.op != "call_function":
            return None
        if node.target in (torch.conv2d, F.conv2d):
            return self._conv(node, env)
        if node.target is pointwise:
            v = env[node.args[0]]  # type: ignore[index]
            return _Box(pointwise(v.patch, *(self._run_arg(a, env) for a in node.args[1:])),
                        v.top, v.left)
        if node.target in _ELEMENTWISE_FUNCTIONS:
            first, *rest = node.args
            if not isinstance(first, fx.Node) or any(
                    isinstance(a, fx.Node) for a in (*rest, *node.kwargs.values())):
                return None
            v = env[first]
            return _Box(node.target(v.patch, *rest, **node.kwargs),  # type: ignore[operator]
                        v.top, v.left)
        if node.target in _ARITHMETIC and len(node.args) == 2 and not node.kwargs:
            return self._arithmetic(node, env)
        return None

    def _run_arg(self, a: Any, env: dict[fx.Node, Any]) -> Any:
        return env[a] if isinstance(a, fx.Node) else a

    # ------------------------------------------------------------------ local operations
    def _conv(self, node: fx.Node, env: dict[fx.Node, Any]) -> _Box | None:
        a = conv_args(self.gm, node)
        if a is None or a["fn"] is not torch.conv2d or not isinstance(a["input"], fx.Node):
            return None
        v = env[a["input"]]
        ref_in, ref_out = self.ref[a["input"]], self.ref[node]
        if not isinstance(v, _Box) or not isinstance(ref_out, Tensor) or ref_out.dim() != 4:
            return None
        k = [int(s) for s in a["weight"].shape[2:]]
        s, p, d = (_pair(a[key]) for key in ("stride", "padding", "dilation"))
        n_out = [int(x) for x in ref_out.shape[2:]]
        size = [int(x) for x in v.patch.shape[2:]]
        span = [_span(k[i], s[i], p[i], d[i], size[i], n_out[i]) for i in range(2)]
        if span == n_out:
            return None  # the change reaches every output: a whole pass costs no more
        starts = []
        for i, at in enumerate((v.top, v.left)):
            lo = torch.div(at + p[i] - (k[i] - 1) * d[i] + s[i] - 1, s[i], rounding_mode="floor")
            starts.append(lo.clamp(0, n_out[i] - span[i]))
        need = [(span[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 for i in range(2)]
        crop = self._assemble(ref_in, v, starts[0] * s[0] - p[0], starts[1] * s[1] - p[1],
                              need[0], need[1], p[0], p[1], node=a["input"])
        out = F.conv2d(crop, a["weight"], a["bias"], s, 0, d, a["groups"])
        return _Box(out, starts[0], starts[1])

    def _pad(self, node: fx.Node, env: dict[fx.Node, Any], padding: Any) -> _Box | None:
        if not isinstance(node.args[0], fx.Node) or len(node.args) != 1:
            return None
        v = env[node.args[0]]
        left, _, top, _ = (int(x) for x in padding)
        return _Box(v.patch, v.top + top, v.left + left)

    def _arithmetic(self, node: fx.Node, env: dict[fx.Node, Any]) -> _Box | None:
        x, y = (self._run_arg(a, env) for a in node.args)
        fn = node.target
        if isinstance(x, _Box) and isinstance(y, _Box):
            bx, by = x.patch.shape[2:], y.patch.shape[2:]
            big, small, small_node = (x, y, node.args[1]) if (
                bx[0] >= by[0] and bx[1] >= by[1]) else (y, x, node.args[0])
            hb, wb = (int(s) for s in big.patch.shape[2:])
            hs, ws = (int(s) for s in small.patch.shape[2:])
            inside = ((small.top >= big.top) & (small.top + hs <= big.top + hb)
                      & (small.left >= big.left) & (small.left + ws <= big.left + wb))
            if not bool(inside.all()):
                return None
            assert isinstance(small_node, fx.Node)
            grown = self._assemble(self.ref[small_node], small, big.top, big.left, hb, wb, 0, 0)
            px, py = (big.patch, grown) if big is x else (grown, big.patch)
            return _Box(fn(px, py), big.top, big.left)  # type: ignore[operator]
        box, other = (x, y) if isinstance(x, _Box) else (y, x)
        assert isinstance(box, _Box)
        if isinstance(other, Tensor) and any(int(n) != 1 for n in other.shape[-2:]):
            return None  # varies over the map: needs the whole activation
        if not isinstance(other, (Tensor, int, float)):
            return None
        out = fn(box.patch, other) if box is x else fn(other, box.patch)  # type: ignore[operator]
        return _Box(out, box.top, box.left)

    def _assemble(self, ref: Tensor, v: _Box, top: Tensor | None, left: Tensor | None,
                  h: int = 0, w: int = 0, ph: int = 0, pw: int = 0,
                  node: fx.Node | None = None) -> Tensor:
        """Per row, the ``h x w`` window at (``top``, ``left``) of the reference's activation
        (zeros outside the map, which is padded by ``ph``, ``pw``), the box ``v`` pasted in;
        ``top=None``: the whole map. Channels-last ``(R, C, h, w)``."""
        if top is None or left is None:  # the whole map: a copy per row, no gather
            n = int(v.patch.shape[0])
            out = ref.expand(n, *ref.shape[1:]).contiguous(
                memory_format=torch.channels_last).permute(0, 2, 3, 1)
            top = left = torch.zeros_like(v.top)
            h, w = (int(s) for s in ref.shape[-2:])
        else:
            out = self._window(ref, top, left, h, w, ph, pw, node)
        dev = v.patch.device
        hs, ws = (int(s) for s in v.patch.shape[2:])
        ii = (v.top - top)[:, None] + torch.arange(hs, device=dev)  # box rows in the window
        jj = (v.left - left)[:, None] + torch.arange(ws, device=dev)
        ok = (((ii >= 0) & (ii < h))[:, :, None] & ((jj >= 0) & (jj < w))[:, None, :])
        r, i, j = ok.nonzero(as_tuple=True)
        out[r, ii[r, i], jj[r, j]] = v.patch.permute(0, 2, 3, 1)[r, i, j]
        return out.permute(0, 3, 1, 2)

    def _window(self, ref: Tensor, top: Tensor, left: Tensor, h: int, w: int, ph: int = 0,
                pw: int = 0, node: fx.Node | None = None) -> Tensor:
        """Per row, the ``h x w`` window at (``top``, ``left``) of ``ref`` padded by ``ph``,
        ``pw`` (the padded copy kept per ``node``): a fresh ``(R, h, w, C)`` tensor."""
        if ph or pw:
            key = (node, ph, pw) if node is not None else None
            padded = self._padded.get(key) if key is not None else None
            if padded is None:
                padded = F.pad(ref, (pw, pw, ph, ph))
                if key is not None:
                    self._padded[key] = padded
            ref = padded
        return crop_boxes(ref, 0, top + ph, left + pw, h, w).permute(0, 2, 3, 1)

    def _mean(self, node: fx.Node, env: dict[fx.Node, Any], src: Any) -> Tensor | None:
        """The mean over the map of a box: the reference's mean plus the box's change."""
        v = env.get(src) if isinstance(src, fx.Node) else None
        if not isinstance(v, _Box):
            return None
        ref_in, ref_out = self.ref[src], self.ref[node]
        hs, ws = (int(s) for s in v.patch.shape[2:])
        before = self._window(ref_in, v.top, v.left, hs, ws).sum(dim=(1, 2))  # (R, C)
        change = (v.patch.sum(dim=(2, 3)) - before) / (ref_in.shape[2] * ref_in.shape[3])
        n = int(v.patch.shape[0])
        out: Tensor = ref_out.expand(n, *ref_out.shape[1:]) + change.reshape(
            n, *ref_out.shape[1:])
        return out


def _global_mean(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node`` averages its first argument over the whole map (global pooling)."""
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        return (isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))
                and len(node.args) == 1 and not node.kwargs)
    if node.op == "call_function" and node.target is F.adaptive_avg_pool2d:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return size in (1, (1, 1)) and len(node.args) <= 2
    if (node.op == "call_method" and node.target == "mean") or (
            node.op == "call_function" and node.target is torch.mean):
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        extra = set(node.kwargs) - {"dim", "keepdim"}
        return (isinstance(dim, (tuple, list)) and sorted(int(d) % 4 for d in dim) == [2, 3]
                and len(node.args) <= 2 and not extra)
    return False


def _writes_shared(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node`` works in place on an input that another node reads as well."""
    if node.op == "call_module":
        inplace = bool(getattr(gm.get_submodule(str(node.target)), "inplace", False))
    elif node.op in ("call_function", "call_method"):
        name = getattr(node.target, "__name__", str(node.target))
        inplace = (name.endswith("_") and not name.startswith("_")) or bool(
            node.kwargs.get("inplace", False))
    else:
        return False
    first = node.args[0] if node.args else None
    return inplace and isinstance(first, fx.Node) and len(first.users) > 1


def crop_boxes(t: Tensor, which: Tensor | int, top: Tensor, left: Tensor, h: int, w: int
               ) -> Tensor:
    """Per row ``r``, the ``h x w`` box at (``top[r]``, ``left[r]``) of ``t[which[r]]``:
    channels-last ``(R, C, h, w)`` (only the boxes are copied; ``t`` may be expanded).

    Parameters
    ----------
    t
        ``(M, C, H, W)``.
    which
        ``(R,)`` rows of ``t``, or one row for all.
    top, left
        ``(R,)`` the boxes' first row and column.
    h, w
        The boxes' size.
    """
    dev = t.device
    ii = top[:, None, None] + torch.arange(h, device=dev)[None, :, None]
    jj = left[:, None, None] + torch.arange(w, device=dev)[None, None, :]
    if isinstance(which, int):  # one image: two index tensors gather faster than three
        return t[which].permute(1, 2, 0)[ii, jj].permute(0, 3, 1, 2)
    return t.permute(0, 2, 3, 1)[which[:, None, None], ii, jj].permute(0, 3, 1, 2)


def _pair(v: Any) -> list[int]:
    t = list(v) if isinstance(v, (tuple, list)) else [v, v]
    return [int(x) for x in t]
