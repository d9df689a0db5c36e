"""Running a propagation plan: the forward hooks, the reference pass and the modified backward.

During one attribution a forward hook (registered through
:meth:`~attribkit.core.guard.ModelGuard.add_handle`, so it is removed even when the forward pass
raises) replaces each hooked module's output by a :class:`_Relay` whose backward calls the
plan's function (:mod:`attribkit.methods.propagation.plan`) instead of the module's own
gradient. Before the backward pass :func:`~attribkit.methods.propagation.graph.check_graph`
refuses operations that no rule covers. The plan's types are re-exported here for the methods.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.engine import Problem
from attribkit.core.errors import UnsupportedModelError
from attribkit.core.guard import this_thread
from attribkit.core.neurons import refuse_neuron
from attribkit.methods.propagation.graph import check_graph, residual_hooks
from attribkit.methods.propagation.plan import Backward, Call, Plan, State, require_module, vjp
from attribkit.methods.registry import methods

__all__ = ["Backward", "Call", "Plan", "State", "propagate", "require_module", "vjp"]


class _Relay(torch.autograd.Function):
    """Identity on the module's output value; the backward is the plan's function."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor,  # type: ignore[override]
                fn: Callable[[Tensor], Tensor]) -> Tensor:
        ctx.fn = fn
        return y.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        with torch.enable_grad():
            return ctx.fn(grad), None, None


def _protect_inplace(p: Problem, modules: list[nn.Module], owner: int,
                     stash: dict[nn.Module, list[Tensor]]) -> list[Any]:
    """Give in-place modules (``ReLU(inplace=True)``) a detached copy of their input.

    The original input is kept in ``stash`` for the forward hook, so neither the values other
    hooks recorded nor the autograd graph are overwritten.
    """
    def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
        if threading.get_ident() != owner or not args or not isinstance(args[0], Tensor):
            return None
        stash[module].append(args[0])
        return (args[0].detach().clone(), *args[1:])

    return [p.guard.add_handle(m.register_forward_pre_hook(pre)) for m in modules
            if getattr(m, "inplace", False)]


def _input(module: nn.Module, args: tuple[Any, ...], stash: dict[nn.Module, list[Tensor]]) -> Any:
    pending = stash.get(module)
    return pending.pop() if pending else (args[0] if args else None)


def _record_refs(p: Problem, plan: Plan, ref: Tensor,
                 ex: Tensor) -> dict[nn.Module, list[tuple[Tensor, Tensor]]]:
    refs: dict[nn.Module, list[tuple[Tensor, Tensor]]] = defaultdict(list)
    owner = threading.get_ident()
    stash: dict[nn.Module, list[Tensor]] = defaultdict(list)
    handles = _protect_inplace(p, list(plan.backward), owner, stash)

    def grab(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if threading.get_ident() != owner:
            return  # another thread's forward pass through the same module
        x = _input(module, args, stash)
        if isinstance(x, Tensor) and isinstance(out, Tensor):
            refs[module].append((x.detach(), out.detach()))

    try:
        for m in plan.backward:
            handles.append(p.guard.add_handle(m.register_forward_hook(grab)))
        with torch.no_grad():
            p.call(ref, ex)
    finally:
        for h in handles:
            h.remove()
    return refs


def _make_hook(plan: Plan, state: State) -> Callable[[nn.Module, tuple[Any, ...], Any], Any]:
    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        if threading.get_ident() != state.thread:
            return None  # another thread's forward pass through the same module
        name = plan.names.get(module, type(module).__name__)
        if module in plan.batchnorms:
            return _merge(module, name, args, out, plan, state)
        if len(args) != 1 or not isinstance(args[0], Tensor) or not isinstance(out, Tensor):
            raise UnsupportedModelError(
                f"{plan.method}: module '{name}' ({type(module).__name__}) must take one tensor "
                "and return one tensor.")
        x = _input(module, args, state.stash)
        k = state.counts[module]
        state.counts[module] += 1
        ref = None
        if plan.needs_reference:
            calls = state.refs.get(module, [])
            if k >= len(calls):
                raise UnsupportedModelError(
                    f"{plan.method}: module '{name}' ran more often on the inputs than on the "
                    "reference; the model's control flow depends on its input.")
            ref = calls[k]
        y = out.detach()
        if not x.requires_grad:
            return None
        source = state.node_call.get(x.grad_fn)
        call = Call(name if k == 0 else f"{name}#{k}", module, x.detach(), y, ref, source, x)
        return _relay(call, plan.backward[module], state)

    return hook


def _relay(call: Call, backward: Backward, state: State) -> Tensor:
    """The output of ``call`` as a relay node whose backward is ``backward``."""
    def fn(grad: Tensor) -> Tensor:
        g = backward(call, grad, state)
        state.relevance[call.name] = g.detach().flatten(1).sum(1)
        return g

    assert call.x_graph is not None
    new: Tensor = _Relay.apply(call.x_graph, call.y, fn)  # type: ignore[no-untyped-call]
    state.node_call[new.grad_fn] = call
    return new


def _merge(module: nn.Module, name: str, args: tuple[Any, ...], out: Any, plan: Plan,
           state: State) -> Tensor:
    """Replace ``linear -> BatchNorm`` by one relay from the linear layer's input."""
    x = args[0] if len(args) == 1 else None
    src = state.node_call.get(x.grad_fn) if isinstance(x, Tensor) else None
    backward = plan.batchnorms[module](src) if src is not None else None
    if src is None or backward is None or src.x_graph is None or not isinstance(out, Tensor):
        raise UnsupportedModelError(
            f"{plan.method}: BatchNorm '{name}' does not take its input directly from a Linear/"
            "Conv layer it can be merged into; there is no LRP rule for a lone BatchNorm.")
    call = Call(f"{src.name}+{name}", src.module, src.x, out.detach(), None, None, src.x_graph)
    return _relay(call, backward, state)


def neuron_methods() -> list[str]:
    """The registered methods that take a neuron target: all but the propagation family and
    Guided Grad-CAM (which multiplies by guided backprop)."""
    return sorted(n for n, i in methods().items()
                  if i.family != "propagation" and n != "guided_grad_cam")


def propagate(p: Problem, plan: Plan, rows: Tensor, ref_rows: Tensor | None, example: Tensor,
              scale_by_score: bool = False,
              at_layer: tuple[nn.Module, bool, list[Tensor]] | None = None,
              ) -> tuple[Tensor, dict[str, Tensor]]:
    """The modified gradient of the target score with respect to ``rows``.

    Parameters
    ----------
    p
        The prepared problem (its guard removes every hook on exit).
    plan
        How each module is treated.
    rows
        ``(M, ...)`` points to attribute.
    ref_rows
        ``(M, ...)`` reference rows (DeepLIFT), or ``None``.
    example
        ``(M,)`` the example each row belongs to.
    scale_by_score
        Start the backward pass from the score itself (LRP) instead of 1.
    at_layer
        ``(layer, layer_input, found)``: also append to ``found`` the propagated values that
        reach the layer's output (or its first positional input), one tensor per chunk.

    Returns
    -------
    grads
        ``(M, ...)`` the propagated values at the input.
    relevance
        The per-row sum of what reached each hooked module's input, by module name.
    """
    refuse_neuron(p.model, plan.method, neuron_methods())
    outs: list[Tensor] = []
    layer_sums: dict[str, list[Tensor]] = defaultdict(list)
    for sl in p.chunks(int(example.shape[0]), plan.method):
        ex = example[sl]
        refs = (_record_refs(p, plan, ref_rows[sl], ex)
                if plan.needs_reference and ref_rows is not None else {})
        state = State(plan, refs)
        hook = _make_hook(plan, state)
        handles = _protect_inplace(p, list(plan.backward), state.thread, state.stash)
        handles += [p.guard.add_handle(m.register_forward_hook(hook))
                    for m in (*plan.backward, *plan.batchnorms)]
        reached: list[Tensor] = []
        if at_layer is not None:
            handles.append(_catch_at_layer(p, at_layer[0], at_layer[1], reached))
        extra: list[Any] = []
        try:
            x = rows[sl].detach().requires_grad_(True)
            with torch.enable_grad():
                out = p.call(x, ex)
                score = p.target.select(out, ex)
                state.input = x
                additions = None if score.grad_fn is None else check_graph(score, state, x)
                if additions is None:
                    p.disconnected()
                    outs.append(torch.zeros_like(x))
                    continue
                if plan.residual_eps is not None and additions:
                    extra = residual_hooks(additions, state, plan.residual_eps)
                w = score.detach() if scale_by_score else torch.ones_like(score)
                (g,) = torch.autograd.grad(score, x, w, allow_unused=True)
            outs.append(torch.zeros_like(x) if g is None else g.detach())
            if at_layer is not None:
                if len(reached) != 1:
                    raise UnsupportedModelError(
                        f"the layer's {'input' if at_layer[1] else 'output'} received "
                        f"{len(reached)} backward values in one pass; choose a layer that runs "
                        "once, on the path from the inputs to the score.")
                at_layer[2].append(reached[0].detach())
            for k, v in state.relevance.items():
                layer_sums[k].append(v)
        finally:
            for h in (*handles, *extra):
                h.remove()
    p.gradient_evaluations += int(example.shape[0])
    grads = torch.cat(outs)
    _finite(grads, plan.method)
    full = {k: torch.cat(v) for k, v in layer_sums.items()
            if sum(int(t.shape[0]) for t in v) == example.shape[0]}
    return grads, full


def _catch_at_layer(p: Problem, layer: nn.Module, layer_input: bool,
                    reached: list[Tensor]) -> Any:
    """A hook that records the propagated values arriving at ``layer``'s output (or input)."""

    def catch(_m: nn.Module, args: Any, out: Any = None) -> None:
        t = args[0] if layer_input and args else out
        if isinstance(t, Tensor) and t.requires_grad:
            t.register_hook(reached.append)  # type: ignore[no-untyped-call]

    hook = this_thread(catch)
    return p.guard.add_handle(layer.register_forward_pre_hook(hook) if layer_input
                              else layer.register_forward_hook(hook))


def _finite(t: Tensor, method: str) -> None:
    if not torch.isfinite(t).all():
        from attribkit.core.errors import NonFiniteError
        raise NonFiniteError(f"{method} produced NaN or inf; use float64 or a larger epsilon.")
