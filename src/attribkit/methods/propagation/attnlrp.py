"""AttnLRP (Achtibat et al., ICML 2024): LRP for transformers in one modified backward pass.

:func:`attnlrp_rules` attaches the rules of :mod:`.transformer_rules` to a model through
forward hooks that replace a module's output by the same values with the rule's gradient (the
attention projections, activations, norm layers and, with ``epsilon > 0``, linear layers); the
hooks are removed in ``finally``, so the model is left exactly as given, after success and
after an exception. Nothing is patched in classes or modules: two models, or the same model in
another thread, are unaffected. :func:`check_graph` then walks the autograd graph of the score
and refuses any operation no rule covers (a product of two traced tensors outside a known
block, a functional activation, a norm computed inline), naming the module whose ``forward()``
ran it and the modules around it (:mod:`.locate`). :func:`attnlrp` is the registered
method: ``relevance = inputs * (modified gradient of the target)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import UnsupportedModelError
from attribkit.core.guard import this_thread
from attribkit.core.neurons import refuse_neuron
from attribkit.methods.propagation import transformer_rules as T
from attribkit.methods.propagation.graph import LINEAR_OPS, STRUCTURAL
from attribkit.methods.propagation.hooks import neuron_methods
from attribkit.methods.propagation.locate import CallLog
from attribkit.methods.propagation.plan import require_module
from attribkit.methods.registry import register

__all__ = ["ALLOWED_OPS", "RuleScope", "attnlrp", "attnlrp_rules", "check_graph"]

#: Autograd operations allowed on the path from the input to the score: linear maps, softmax
#: (its gradient is the linearisation rule), products (counted against the known blocks) and
#: the rules' own nodes.
ALLOWED_OPS = STRUCTURAL | LINEAR_OPS | frozenset({
    "MulBackward0", "MulBackward1", "DivBackward0", "DivBackward1", "AddBackward1",
    "SubBackward1", "RsubBackward1", "MmBackward0", "AddmmBackward0", "BmmBackward0",
    "BaddbmmBackward0", "SoftmaxBackward0", "MaskedFillBackward0", "RepeatBackward0",
    "IndexSelectBackward0", "TransposeBackward1", "ViewAsRealBackward0",
    "_ScaleBackward", "_RatioBackward", "_ConstantNormBackward", "_EpsilonBackward",
})
_PRODUCTS = frozenset({"MulBackward0", "BmmBackward0", "MmBackward0", "BaddbmmBackward0"})


@dataclass
class RuleScope:
    """What one :func:`attnlrp_rules` scope attached and counted.

    Attributes
    ----------
    blocks
        Qualified name -> the :class:`~.transformer_rules.Block` it matched.
    activations
        Names of the activations under the identity rule.
    norms
        Names of the norm layers under the constant-deviation rule.
    products
        Traced products the matched blocks made during the forward passes so far.
    log
        The module calls of those forward passes (to name modules in a refusal).
    """

    blocks: dict[str, T.Block] = field(default_factory=dict)
    activations: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    products: int = 0
    log: CallLog = field(default_factory=CallLog)

    def reset(self) -> None:
        """Forget the counted products and calls (before the next forward pass)."""
        self.products = 0
        self.log.clear()


def _identity_hook(share: float) -> Callable[[nn.Module, tuple[Any, ...], Any], Any]:
    def hook(_m: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        x = args[0] if args else None
        if not isinstance(x, Tensor) or not isinstance(out, Tensor) or not x.requires_grad:
            return None
        return T.identity_rule(x, out, share)
    return hook


def _share_hook(share: float | tuple[float, ...]) -> Callable[[nn.Module, tuple[Any, ...], Any],
                                                              Any]:
    def hook(_m: nn.Module, _args: tuple[Any, ...], out: Any) -> Any:
        if not isinstance(out, Tensor) or not out.requires_grad:
            return None
        return T.scale_gradient(out, share)
    return hook


def _norm_hook(name: str, kind: str) -> Callable[[nn.Module, tuple[Any, ...], Any], Any]:
    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        x = args[0] if args else None
        if not isinstance(x, Tensor) or not isinstance(out, Tensor) or not x.requires_grad:
            return None
        new, expected = T.constant_norm(m, x, out, kind)
        tol = 1e-3 if out.dtype in (torch.float16, torch.bfloat16) else 1e-4
        if not torch.allclose(expected.to(out.dtype), out, rtol=tol, atol=tol):
            raise UnsupportedModelError(
                f"attnlrp: norm layer '{name}' ({type(m).__name__}) does not compute "
                f"{'w (x - mean) / std + b' if kind == 'layer' else 'w x / rms'}; AttnLRP has no "
                "rule for it.")
        return new
    return hook


def _epsilon_hook(eps: float) -> Callable[[nn.Module, tuple[Any, ...], Any], Any]:
    def hook(_m: nn.Module, _args: tuple[Any, ...], out: Any) -> Any:
        if not isinstance(out, Tensor) or not out.requires_grad:
            return None
        return T.epsilon_rule(out, eps)
    return hook


def _is_linear(m: nn.Module) -> bool:
    return isinstance(m, nn.Linear) or (type(m).__name__ == "Conv1D"
                                        and isinstance(getattr(m, "weight", None), Tensor))


def _plan(model: nn.Module, scope: RuleScope, epsilon: float
          ) -> list[tuple[nn.Module, Callable[..., Any]]]:
    """(module, forward hook) pairs for every rule AttnLRP attaches to ``model``."""
    hooks: list[tuple[nn.Module, Callable[..., Any]]] = []
    done: set[int] = set()
    for name, m in model.named_modules():
        block = next((b for b in T.BLOCKS if b.matches(m)), None)
        if block is None:
            continue
        scope.blocks[name] = block

        def count(_m: nn.Module, _a: Any, _o: Any, n: int = block.products) -> None:
            scope.products += n

        hooks.append((m, count))
        for child, share in block.shares.items():
            sub = getattr(m, child)
            if T.is_activation(sub):
                assert not isinstance(share, tuple)
                hooks.append((sub, _identity_hook(share)))
                scope.activations.append(f"{name}.{child}")
                done.add(id(sub))
            elif share != 1.0:
                hooks.append((sub, _share_hook(share)))
    for name, m in model.named_modules():
        kind = T.norm_kind(m)
        if id(m) in done:
            continue
        if T.is_activation(m):
            hooks.append((m, _identity_hook(1.0)))
            scope.activations.append(name)
        elif kind is not None:
            hooks.append((m, _norm_hook(name, kind)))
            scope.norms.append(name)
        elif epsilon > 0 and _is_linear(m):
            hooks.append((m, _epsilon_hook(epsilon)))
    return hooks


@contextlib.contextmanager
def attnlrp_rules(model: nn.Module, *, epsilon: float = 0.0,
                  add_handle: Callable[[Any], Any] | None = None) -> Iterator[RuleScope]:
    """Attach AttnLRP's rules to ``model`` for the duration of the block.

    Inside, a forward pass gives the same values as before, and the gradient of any output is
    AttnLRP's modified gradient: ``inputs * grad`` is the relevance. Hooks act only in the
    calling thread and are removed on exit, also when the block raises.

    Parameters
    ----------
    model
        A transformer (``nn.Module``); any module may wrap it.
    epsilon
        The epsilon rule's stabiliser on linear layers; 0 (default) is the plain gradient.
    add_handle
        Also hand every hook handle to this function (a :class:`~attribkit.core.guard.ModelGuard`'s
        ``add_handle``, which removes them if this scope is left abnormally).

    Yields
    ------
    RuleScope
        What was attached; its ``products`` count feeds :func:`check_graph`.
    """
    if epsilon < 0:
        raise UnsupportedModelError(f"epsilon must be >= 0, got {epsilon!r}.")
    scope = RuleScope()
    handles: list[Any] = []
    try:
        for m, hook in _plan(model, scope, epsilon):
            h = m.register_forward_hook(this_thread(hook))
            handles.append(h)
            if add_handle is not None:
                add_handle(h)
        for name, m in model.named_modules():  # after the rules: it sees their outputs
            h = m.register_forward_hook(this_thread(scope.log.hook(name)), with_kwargs=True)
            handles.append(h)
            if add_handle is not None:
                add_handle(h)
        yield scope
    finally:
        for h in handles:
            h.remove()


def _on_path(root: Any, leaf: Tensor) -> dict[int, tuple[Any, bool]]:
    """id -> (node, whether the input ``leaf`` is reachable from it), for every graph node."""
    memo: dict[int, tuple[Any, bool]] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node is None or (id(node) in memo and not expanded):
            continue
        kids = [f for f, _ in node.next_functions if f is not None]
        if not expanded:
            if getattr(node, "variable", None) is leaf:
                memo[id(node)] = (node, True)
                continue
            memo[id(node)] = (node, False)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in memo)
        else:
            memo[id(node)] = (node, any(memo.get(id(k), (None, False))[1] for k in kids))
    return memo


def check_graph(score: Tensor, inputs: Tensor, scope: RuleScope) -> None:
    """Refuse operations between ``inputs`` and ``score`` that no AttnLRP rule covers.

    Parameters
    ----------
    score
        The explained score (its graph is walked).
    inputs
        The input leaf.
    scope
        The active scope (its counted products).
    """
    if score.grad_fn is None:
        return
    root = score.grad_fn
    nodes = _on_path(root, inputs)
    reach = {k for k, (_, r) in nodes.items() if r}

    def where(node: Any) -> str:
        return scope.log.where(node, root, inputs, reach)

    found = 0
    products: list[Any] = []
    for node, reaches in nodes.values():
        if not reaches:
            continue
        kind = type(node).__name__
        traced = sum(1 for f, _ in node.next_functions if f is not None and id(f) in reach)
        if "ScaledDotProduct" in kind or "Attention" in kind:
            found += 2
        elif kind in _PRODUCTS and traced >= 2:
            found += 1
            products.append(node)
        elif kind == "DivBackward0" and traced >= 2:
            raise UnsupportedModelError(
                f"attnlrp: {where(node)}: a division by a function of the input outside a norm "
                "layer AttnLRP knows (RMSNorm, LayerNorm); there is no rule for it.")
        elif kind not in ALLOWED_OPS:
            raise UnsupportedModelError(
                f"attnlrp: {where(node)}, which has no AttnLRP rule. It is probably a functional "
                "call inside a forward() (F.gelu, torch.sigmoid ...) or an unsupported module: "
                "activations must be modules (nn.GELU() ...), norms RMSNorm/LayerNorm, blocks "
                f"{', '.join(b.name for b in T.BLOCKS)}; or use integrated_gradients.")
    if found != scope.products:
        counts = (f"the forward pass multiplied traced tensors {found} times, but the known "
                  f"attention / gated-MLP blocks account for {scope.products}")
        outside = [n for n in products if not _in_block(scope, n, reach)]
        if outside:
            raise UnsupportedModelError(
                f"attnlrp: {where(outside[0])}, a product of two traced tensors outside the "
                f"known attention / gated-MLP blocks ({counts}); AttnLRP would explain it "
                "without the uniform rule, so it refuses.")
        raise UnsupportedModelError(
            f"attnlrp: {counts}; a product outside them would be explained without the uniform "
            "rule.")


def _in_block(scope: RuleScope, node: Any, reach: set[int]) -> bool:
    """Whether a product ``node`` was made inside the forward() of a matched block."""
    call = scope.log.enclosing(node, reach)
    return call is not None and any(not b or call.name == b or call.name.startswith(b + ".")
                                    for b in scope.blocks)


def _modified_gradient(p: Any, x: Tensor, ex: Tensor, scope: RuleScope) -> tuple[Tensor, Tensor]:
    scope.reset()
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        score = p.target.select(p.call(x, ex), ex)
        check_graph(score, x, scope)
        (g,) = torch.autograd.grad(score.sum(), x, allow_unused=True)
    return (torch.zeros_like(x) if g is None else g.detach()), score.detach()


@register(
    "attnlrp",
    aliases=("attn_lrp",),
    family="propagation",
    needs_baseline=False,
    complete=False,
    axioms=set(),
    needs_module=True,
    summary="AttnLRP: LRP for transformers (attention, gated MLP, RMSNorm/LayerNorm rules) in "
            "one modified backward pass.",
)
@shared_parameters("target:single", "progress")
def attnlrp(
    model: nn.Module,
    inputs: Tensor,
    *,
    target: Any = None,
    epsilon: float = 0.0,
    layer: nn.Module | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """AttnLRP relevance of the target output: ``inputs * modified gradient``.

    Parameters
    ----------
    model
        An ``nn.Module`` from input embeddings ``(N, L, D)`` to outputs ``(N, C)`` that contains
        a Llama-style, GPT-2 or BERT transformer (see :data:`~.transformer_rules.BLOCKS`).
    inputs
        ``(N, L, D)`` input embeddings.
    epsilon
        The epsilon rule's stabiliser on linear layers (0: the plain gradient, as lxt).
    layer
        Attribute at this module's output instead (the word-embedding module, when ``inputs``
        are token ids).
    batch_size
        Rows per forward / backward pass.
    forward_args
        Extra per-example tensors passed to the model after the inputs (an attention mask).

    Returns
    -------
    Attribution
        Relevance shaped like the inputs. ``extras["conservation"]`` is ``sum(R) / F(x)`` per
        example (1 when relevance is conserved; biases and the softmax rule absorb the rest).
    """
    module = require_module(model, "attnlrp")
    refuse_neuron(target, "attnlrp", neuron_methods())
    with prepare(module, inputs, target=target, baseline=None, needs_baseline=False,
                 layer=layer, batch_size=batch_size, progress=progress, forward_args=forward_args,
                 allow_multi_target=False) as p:
        grads: list[Tensor] = []
        with attnlrp_rules(module, epsilon=epsilon, add_handle=p.guard.add_handle) as scope:
            for sl in p.chunks(int(p.examples.shape[0]), "attnlrp"):
                g, _ = _modified_gradient(p, p.inputs[sl], p.examples[sl], scope)
                grads.append(g)
        values = p.inputs * torch.cat(grads)
        totals = values.flatten(1).sum(1)
        out = p.output
        ratio = totals / out if out is not None else None
        return p.result(values, "attnlrp", {"epsilon": epsilon},
                        extras={"conservation": ratio, "blocks": len(scope.blocks),
                                "norms": len(scope.norms),
                                "activations": len(scope.activations)})
