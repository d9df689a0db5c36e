"""The machinery shared by every propagation method: relays, references and the graph check.

A *plan* says, for each hooked module, how its backward pass is replaced. During one attribution
a forward hook (registered through :meth:`~attribkit.core.guard.ModelGuard.add_handle`, so it is
removed even when the forward pass raises) replaces each hooked module's output by a
:class:`_Relay` whose backward calls the plan's function instead of the module's own gradient.
All state lives in a :class:`State` built per call: nothing is stored on modules or classes, so
attributions of different models may run in parallel threads.

Before the backward pass the autograd graph is walked from the target score to the input: every
node must be a relay, the input, or a structural operation (view, index, cat, add...). Any
other operation (``F.relu`` called inside a ``forward``, ``x * y`` ...) has no rule, and an
:class:`~attribkit.core.errors.UnsupportedModelError` names it and the modules around it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.engine import Problem
from attribkit.core.errors import UnsupportedModelError
from attribkit.core.guard import this_thread
from attribkit.core.neurons import refuse_neuron
from attribkit.methods.propagation.rules import stabilize
from attribkit.methods.registry import methods

__all__ = ["Backward", "Call", "Plan", "State", "propagate", "require_module", "vjp"]

#: Operations that only move, copy or sum values: allowed outside hooked modules.
STRUCTURAL = frozenset({
    "AccumulateGrad", "ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0",
    "SelectBackward0", "SliceBackward0", "IndexBackward0", "GatherBackward0", "CatBackward0",
    "StackBackward0", "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2",
    "SqueezeBackward3", "SqueezeBackward4", "UnsqueezeBackward0", "PermuteBackward0",
    "TransposeBackward0", "TBackward0", "CloneBackward0", "SplitBackward0", "SplitBackward1",
    "SplitWithSizesBackward0", "UnbindBackward0", "ToCopyBackward0", "AsStridedBackward0",
    "ExpandBackward0", "AliasBackward0", "DiagonalBackward0", "FlattenBackward0",
    "AddBackward0", "ContiguousBackward0",
    # the identity nodes of a user's register_full_backward_hook: they pass the (modified)
    # gradient through to the user's hook and on, unchanged
    "BackwardHookFunctionBackward",
})
_ADDITIONS = frozenset({"AddBackward0"})
#: Linear operations that gradient-style methods (DeepLIFT, guided backprop) pass exactly, but
#: that LRP has no rule for (relevance would not be conserved).
LINEAR_OPS = frozenset({"SubBackward0", "NegBackward0", "SumBackward0", "SumBackward1",
                        "MeanBackward0", "MeanBackward1"})


def _linear_op(node: Any, kind: str) -> bool:
    """Whether ``node`` is linear in its traced inputs (a sum, or a product with a constant)."""
    nxt = node.next_functions
    if kind in LINEAR_OPS:
        return True
    if kind == "MulBackward0":
        return any(f is None for f, _ in nxt)
    if kind == "DivBackward0":
        return len(nxt) == 2 and nxt[1][0] is None
    return False


@dataclass
class Call:
    """One call of a hooked module during the attributed forward pass.

    Attributes
    ----------
    name
        The module's qualified name in the model.
    module
        The module.
    x
        Its input (detached).
    y
        Its output (detached).
    ref
        ``(x', y')``: the same call's input and output on the reference rows, or ``None``.
    source
        The call of the linear layer whose output is ``x`` (for RevealCancel pairs), if any.
    x_graph
        The input as it sits in the autograd graph (to re-route a merged BatchNorm).
    """

    name: str
    module: nn.Module
    x: Tensor
    y: Tensor
    ref: tuple[Tensor, Tensor] | None = None
    source: Call | None = None
    x_graph: Tensor | None = None


#: ``backward(call, grad, state) -> grad of the input``.
Backward = Callable[[Call, Tensor, "State"], Tensor]


@dataclass
class Plan:
    """How one method treats a model.

    Attributes
    ----------
    method
        The method's name (for messages).
    backward
        The replacement backward of each hooked module.
    names
        Module -> qualified name.
    batchnorms
        BatchNorm -> a function from the call of the layer that feeds it to the backward of the
        merged pair (``None`` when they cannot be merged).
    needs_reference
        Whether reference rows are run first (DeepLIFT).
    residual_eps
        When set, additions of two traced tensors split relevance in proportion to the
        operands (LRP); otherwise additions pass gradients unchanged.
    last_only
        Modules that must be the last operation before the target (Softmax).
    """

    method: str
    backward: dict[nn.Module, Backward]
    names: dict[nn.Module, str]
    batchnorms: dict[nn.Module, Callable[[Call], Backward | None]] = field(default_factory=dict)
    needs_reference: bool = False
    residual_eps: float | None = None
    last_only: frozenset[nn.Module] = frozenset()


@dataclass
class State:
    """Everything one forward/backward pass of one chunk remembers (never shared)."""

    plan: Plan
    refs: dict[nn.Module, list[tuple[Tensor, Tensor]]]
    counts: dict[nn.Module, int] = field(default_factory=lambda: defaultdict(int))
    node_call: dict[Any, Call] = field(default_factory=dict)
    pairs: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)
    relevance: dict[str, Tensor] = field(default_factory=dict)
    thread: int = field(default_factory=threading.get_ident)
    stash: dict[nn.Module, list[Tensor]] = field(default_factory=lambda: defaultdict(list))
    sums: dict[int, Tensor] = field(default_factory=dict)
    input: Tensor | None = None


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


def require_module(model: object, method: str) -> nn.Module:
    """Check that ``model`` is an ``nn.Module`` (hooks need one)."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(
            f"{method} replaces the backward pass of each layer, so it needs an nn.Module; got "
            f"{type(model).__name__}. Wrap the function in an nn.Module made of supported "
            "layers, or use a model-agnostic method (integrated_gradients, occlusion...).")
    return model


def vjp(fn: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> Tensor:
    """``(d fn / d x)^T grad`` at ``x`` (``fn`` may work in place: it gets a copy)."""
    xd = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = fn(xd.clone())
        (g,) = torch.autograd.grad(out, xd, grad, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


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


def _describe(node: Any, state: State) -> str:
    call = state.node_call.get(node)
    if call is not None:
        return f"'{call.name}' ({type(call.module).__name__})"
    return "the input" if type(node).__name__ == "AccumulateGrad" else "the output"


def _reaching(root: Any, inputs: Tensor) -> set[int]:
    """Ids of the graph nodes from which the input's leaf can be reached.

    Parameters require grad (attribkit never freezes them), so the graph also holds branches
    that start from parameters alone (a layer applied to a constant): they carry no gradient to
    the input and need no rule.
    """
    reach: set[int] = set()
    done: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node is None or (id(node) in done and not expanded):
            continue
        if not expanded:
            done.add(id(node))
            if getattr(node, "variable", None) is inputs:
                reach.add(id(node))
                continue
            stack.append((node, True))
            stack.extend((f, False) for f, _ in node.next_functions)
        elif any(f is not None and id(f) in reach for f, _ in node.next_functions):
            reach.add(id(node))
    return reach


def _check_graph(score: Tensor, state: State, inputs: Tensor) -> list[Any] | None:
    """Walk the graph; raise on an operation without a rule; return the additions found.

    ``None`` when the score does not reach the input at all.
    """
    plan = state.plan
    root = score.grad_fn
    reach = _reaching(root, inputs)
    if id(root) not in reach:
        return None
    additions: list[Any] = []
    seen: set[int] = set()
    stack: list[tuple[Any, Any, bool]] = [(root, None, False)]
    while stack:
        node, consumer, below_relay = stack.pop()
        if node is None or id(node) not in reach:
            continue
        call = state.node_call.get(node)
        key = id(node)
        if call is not None and call.module in plan.last_only and below_relay:
            raise UnsupportedModelError(
                f"{plan.method}: {type(call.module).__name__} '{call.name}' is supported only as "
                "the last layer of the model (explain the logits instead).")
        if key in seen:
            continue
        seen.add(key)
        kind = type(node).__name__
        linear = plan.residual_eps is None and _linear_op(node, kind)
        if call is None and kind not in STRUCTURAL and not linear:
            producer = _producer(node, state)
            raise UnsupportedModelError(
                f"{plan.method}: the forward pass runs {kind.replace('Backward0', '')} outside "
                f"any supported module, between {producer} and {_describe(consumer, state)}. "
                "It is probably a functional call inside a forward() (F.relu, torch.sigmoid, "
                "x * y, x.mean() ...) or an unsupported module; no propagation rule covers it "
                "(LRP also has none for sums, means, subtractions and scalings inside the model). "
                "Use the module form (nn.ReLU(), nn.Sigmoid() ...) or a model-agnostic method "
                "such as integrated_gradients.")
        if kind in _ADDITIONS and plan.residual_eps is not None:
            additions.append(node)
        nxt_consumer = node if call is not None else consumer
        for nxt, _ in node.next_functions:
            stack.append((nxt, nxt_consumer, below_relay or call is not None))
    return additions


def _producer(node: Any, state: State) -> str:
    todo, seen = [node], set()
    while todo:
        n = todo.pop(0)
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        if n is not node and (n in state.node_call or type(n).__name__ == "AccumulateGrad"):
            return _describe(n, state)
        todo.extend(f for f, _ in n.next_functions)
    return "a constant"


def _operand_value(node: Any, state: State) -> Tensor | None:
    """The value a graph node produced: a module output, the input, or a sum of those."""
    call = state.node_call.get(node)
    if call is not None:
        return call.y
    kind = type(node).__name__
    if kind == "AccumulateGrad":
        if state.input is None or node.variable is not state.input:
            return None  # a parameter: not an operand LRP can split relevance onto
        return state.input.detach()
    if kind in _ADDITIONS and len(node.next_functions) == 2:
        if id(node) in state.sums:
            return state.sums[id(node)]
        a, b = (None if f is None else _operand_value(f, state) for f, _ in node.next_functions)
        if a is not None and b is not None:
            state.sums[id(node)] = a + b
            return a + b
    return None


def _residual_hooks(additions: list[Any], state: State, eps: float) -> list[Any]:
    """Make each addition of two traced tensors split relevance like an epsilon rule."""
    handles = []
    for node in additions:
        ops = [f for f, _ in node.next_functions]
        vals = [None if f is None else _operand_value(f, state) for f in ops]
        if len(ops) != 2 or any(v is None for v in vals):
            raise UnsupportedModelError(
                f"{state.plan.method}: an addition inside the model adds a tensor that is not the "
                "output of a supported module or the input (a constant, or a view of one); LRP "
                "cannot split relevance there. Make both operands module outputs.")
        a, b = vals[0], vals[1]
        assert a is not None and b is not None

        def split(grad_inputs: Any, grad_outputs: Any, a: Tensor = a,
                  b: Tensor = b) -> tuple[Tensor, Tensor]:
            r = grad_outputs[0]
            if a.shape != r.shape or b.shape != r.shape:
                raise UnsupportedModelError(
                    f"{state.plan.method}: a residual addition broadcasts its operands; LRP needs "
                    "operands of the same shape.")
            s = r / stabilize(a + b, eps)
            return a * s, b * s

        handles.append(node.register_hook(split))
    return handles


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
                additions = None if score.grad_fn is None else _check_graph(score, state, x)
                if additions is None:
                    p.disconnected()
                    outs.append(torch.zeros_like(x))
                    continue
                if plan.residual_eps is not None and additions:
                    extra = _residual_hooks(additions, state, plan.residual_eps)
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
