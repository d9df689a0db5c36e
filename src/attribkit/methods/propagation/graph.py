"""The check of the autograd graph before a propagation pass, and LRP's residual additions.

Before the backward pass the graph is walked from the target score to the input
(:func:`check_graph`): every node must be a relay of a hooked module, the input, or a structural
operation (view, index, cat, add...). Any other operation (``F.relu`` called inside a
``forward``, ``x * y`` ...) has no rule, and an
:class:`~attribkit.core.errors.UnsupportedModelError` names it and the modules around it. For LRP,
:func:`residual_hooks` makes each addition of two traced tensors split relevance in proportion
to its operands.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from attribkit.core.errors import UnsupportedModelError
from attribkit.methods.propagation.plan import State
from attribkit.methods.propagation.rules import stabilize

__all__ = ["LINEAR_OPS", "STRUCTURAL", "check_graph", "residual_hooks"]

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


def check_graph(score: Tensor, state: State, inputs: Tensor) -> list[Any] | None:
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


def residual_hooks(additions: list[Any], state: State, eps: float) -> list[Any]:
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
