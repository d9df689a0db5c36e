"""Which module an autograd node belongs to, so that a refusal names modules, not only ops.

A :class:`CallLog` records, through a forward hook on every module, the graph nodes of each
call's tensor outputs and inputs (innermost modules first, the order their hooks fire). When a
graph check refuses a node, :meth:`CallLog.where` says in whose ``forward()`` it was created
(the innermost module whose output reaches it without passing through that module's inputs),
which module outputs it reads, and which module consumes its result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

__all__ = ["CallLog", "ModuleCall"]


@dataclass(frozen=True)
class ModuleCall:
    """One call of a module during a recorded forward pass.

    Attributes
    ----------
    name
        The module's qualified name (``""`` for the model itself).
    module
        The module.
    outs
        The graph nodes (``grad_fn``) of its tensor outputs.
    ins
        The ids of the graph nodes of its tensor inputs.
    """

    name: str
    module: nn.Module
    outs: tuple[Any, ...]
    ins: frozenset[int]

    def describe(self) -> str:
        """``'name' (Type)``, or ``the model (Type)`` for the root."""
        kind = type(self.module).__name__
        return f"the model ({kind})" if not self.name else f"'{self.name}' ({kind})"


def _tensors(obj: Any) -> list[Tensor]:
    """The tensors at the top level of a module's arguments or output."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for t in obj if isinstance(t, Tensor)]
    return []


class CallLog:
    """The module calls of the forward passes since the last :meth:`clear`."""

    def __init__(self) -> None:
        self.calls: list[ModuleCall] = []

    def clear(self) -> None:
        """Forget the recorded calls (and the graph nodes they hold)."""
        self.calls.clear()

    def hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any], Any],
                                          None]:
        """A ``with_kwargs`` forward hook that records the calls of the module named ``name``."""
        def record(m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            outs = tuple(t.grad_fn for t in _tensors(out) if t.grad_fn is not None)
            if outs:
                ins = frozenset(id(t.grad_fn) for t in (*_tensors(args), *_tensors(kwargs))
                                if t.grad_fn is not None)
                self.calls.append(ModuleCall(name, m, outs, ins))
        return record

    def enclosing(self, node: Any, reach: set[int]) -> ModuleCall | None:
        """The innermost recorded call whose ``forward()`` created ``node``.

        ``reach`` holds the ids of the nodes from which the input can be reached; the search
        stays among them.
        """
        for call in self.calls:
            stack, seen = list(call.outs), set()
            while stack:
                n = stack.pop()
                if n is None or id(n) in seen or id(n) in call.ins or id(n) not in reach:
                    continue
                if n is node:
                    return call
                seen.add(id(n))
                stack.extend(f for f, _ in n.next_functions)
        return None

    def where(self, node: Any, root: Any, inputs: Tensor, reach: set[int]) -> str:
        """``<where> runs <Op> (<grad_fn>) on the output of <modules>, feeding <module>``."""
        outputs: dict[int, ModuleCall] = {}
        for call in self.calls:  # innermost first: a wrapper's output is its last child's
            for n in call.outs:
                outputs.setdefault(id(n), call)

        def label(n: Any) -> str | None:
            if id(n) in outputs and n is not node:
                return outputs[id(n)].describe()
            return "the input" if getattr(n, "variable", None) is inputs else None

        producers: list[str] = []
        for first, _ in node.next_functions:
            todo, seen = [first], set()
            while todo:
                n = todo.pop(0)
                if n is None or id(n) in seen or id(n) not in reach:
                    continue
                seen.add(id(n))
                found = label(n)
                if found is not None:
                    if found not in producers:
                        producers.append(found)
                    break
                todo.extend(f for f, _ in n.next_functions)
        consumer = _consumer(node, root, reach, label)
        owner = self.enclosing(node, reach)
        if owner is None:
            place = "the forward pass"
        elif any(True for _ in owner.module.children()):
            place = f"the forward() of {owner.describe()}"
        else:
            place = f"module {owner.describe()}"
        kind = type(node).__name__
        op = kind.removesuffix("Backward0").removesuffix("Backward1")
        return (f"{place} runs {op} ({kind}) on the output of "
                f"{' and '.join(producers) or 'a constant'}, feeding {consumer or 'the output'}")


def _consumer(node: Any, root: Any, reach: set[int],
              label: Callable[[Any], str | None]) -> str | None:
    """The nearest module whose output is computed from ``node`` (``None``: the score itself)."""
    stack: list[tuple[Any, str | None]] = [(root, None)]
    seen: set[int] = set()
    while stack:
        n, above = stack.pop()
        if n is None or id(n) not in reach:
            continue
        if n is node:
            return above
        if id(n) in seen:
            continue
        seen.add(id(n))
        here = label(n) or above
        stack.extend((f, here) for f, _ in n.next_functions)
    return None
