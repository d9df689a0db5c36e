"""Parameter descriptions written once, and the decorator that puts them into docstrings.

Most methods and measures take the same keywords (``model``, ``inputs``, ``target``,
``batch_size``, ``progress``, ``forward_args``, ...). Their NumPy-style descriptions live here,
once, in :data:`PARAMETERS`. A function names the shared ones it takes and describes only its
own parameters in its docstring::

    @shared_parameters("model", "inputs", "target", "batch_size", "progress")
    def method(model, inputs, *, target=None, steps=50, batch_size=None, progress=False):
        '''One line.

        Parameters
        ----------
        steps
            Gradient evaluations per example.
        '''

The decorator returns the same function with its ``Parameters`` section completed (created
before the first other section if the docstring has none), every shared entry placed in
signature order among the function's own ones; ``help()``, editors and generated pages show the
full text. A key ``"name:variant"`` is another wording of the parameter ``name`` (for example
``"baseline:unused"``); keyword arguments give wordings shared by the functions of one module
(``shared_parameters("inputs", maxpool=MAXPOOL)``). Naming a parameter that is not in the
signature, or one the docstring already describes, raises at import time.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["PARAMETERS", "fill_parameters", "shared_parameters"]

F = TypeVar("F", bound=Callable[..., Any])

#: The shared descriptions: ``"name"`` or ``"name:variant"`` -> the text of the entry.
PARAMETERS: dict[str, str] = {
    "model": "A callable from a batch ``(B, ...)`` to outputs ``(B,)`` or ``(B, C)``.",
    "model:black_box": (
        "A callable from a batch to scores ``(B,)`` or ``(B, C)``: a torch model, or a black "
        "box (NumPy in and out, e.g. ``clf.predict_proba``)."),
    "model:measured": "A torch model or a black box (batch -> scores).",
    "model:propagation": (
        "An ``nn.Module`` built from the supported modules (``docs/propagation.md``, "
        "\"Supported modules\")."),
    "inputs": "``(N, ...)`` examples.",
    "inputs:black_box": "``(N, ...)`` examples (a tensor, or a NumPy array for a black box).",
    "inputs:images": "``(N, C, H, W)`` images or ``(N, C, L)`` sequences.",
    "target": (
        "``None`` (predicted class), an int, one index per example, a callable, or a "
        "MultiTarget."),
    "target:single": (
        "``None`` (predicted class), an int, one index per example, or a callable."),
    "target:measured": (
        "The explained class (default: the attribution's, else the predicted class)."),
    "baseline:unused": "Not used (accepted for the common signature); must be ``None``.",
    "baseline:absent": (
        "The value of an absent player's features: ``None`` (zeros), a number, a name, a "
        "Baseline or a tensor."),
    "attributions:measured": "An Attribution or values that broadcast to the inputs.",
    "batch_size": "Rows per model call; ``None`` chooses it from the model's memory use.",
    "batch_size:rows": "Rows per model call.",
    "batch_size:backward": "Rows per backward pass.",
    "batch_size:points": "Points per model call.",
    "progress": "Show a progress bar.",
    "forward_args": "Extra per-example tensors passed to the model after the inputs.",
    "layer:output": "Attribute at this sub-module's output (activations times gradients).",
    "attribute_to": (
        "With ``layer``: ``\"layer_output\"`` (default) or ``\"layer_input\"`` (the layer's "
        "first positional input; a float baseline is then given in that space, default "
        "zeros)."),
    "groups": "The older name of ``feature_mask``.",
    "seed": "Seed of the local random generator.",
    "seed:reinit": "Seed of the re-initialisation.",
}

_WIDTH = 100
_HEADER = re.compile(r"^[A-Z][A-Za-z ]*$")


def _param_name(key: str) -> str:
    return key.split(":", 1)[0]


def _entry_names(header: str) -> set[str]:
    """The parameter names an entry header describes (``"steps, rule"``, ``"**options"``)."""
    names = set()
    for part in header.split(","):
        m = re.match(r"\s*\**([A-Za-z_]\w*)\s*(?::.*)?$", part)
        if m is None:
            return set()
        names.add(m.group(1))
    return names


def _render(name: str, text: str, indent: int) -> list[str]:
    pad = " " * indent
    body = textwrap.wrap(text, width=_WIDTH - indent - 4, break_long_words=False,
                         break_on_hyphens=False)
    return [pad + name] + [pad + "    " + line for line in body]


def _indent_of(lines: list[str]) -> int:
    body = [len(ln) - len(ln.lstrip()) for ln in lines[1:] if ln.strip()]
    return min(body) if body else 4


def _sections(lines: list[str], indent: int) -> list[tuple[str, int]]:
    """``(title, line of the title)`` of every NumPy section (a title underlined by dashes)."""
    found = []
    for i in range(1, len(lines) - 1):
        title, rule = lines[i], lines[i + 1]
        if (title[:indent].strip() == "" and _HEADER.match(title[indent:].rstrip())
                and rule.strip() and set(rule.strip()) == {"-"}
                and len(rule.strip()) == len(title.strip())):
            found.append((title.strip(), i))
    return found


def _entries(block: list[str], indent: int) -> list[list[str]]:
    """Split a ``Parameters`` body into entries: a header line at ``indent`` and what follows."""
    entries: list[list[str]] = []
    for line in block:
        starts = line.strip() and len(line) - len(line.lstrip()) <= indent
        if starts or not entries:
            entries.append([line])
        else:
            entries[-1].append(line)
    return entries


def fill_parameters(doc: str, signature: inspect.Signature, keys: tuple[str, ...],
                    texts: Mapping[str, str] | None = None) -> str:
    """``doc`` with the shared entries ``keys`` (and ``texts``) added to its ``Parameters``.

    ``texts`` maps further parameter names to their descriptions (wordings shared within one
    module). Each entry goes before the first own entry of a parameter that comes later in
    ``signature``; see the module doc.
    """
    order = {name: i for i, name in enumerate(signature.parameters)}
    unknown = [k for k in keys if k not in PARAMETERS]
    if unknown:
        raise ValueError(f"no shared description for {unknown}; add it to "
                         "attribkit.core.docstrings.PARAMETERS or describe it in the docstring")
    shared = [(_param_name(k), PARAMETERS[k]) for k in keys] + list((texts or {}).items())
    names = [name for name, _ in shared]
    missing = [n for n in names if n not in order]
    if missing:
        raise ValueError(f"shared parameters {missing} are not in the signature "
                         f"{list(order)}; remove them from shared_parameters(...)")
    if len(set(names)) < len(names):
        raise ValueError(f"a parameter is given twice in shared_parameters{tuple(names)}")
    lines = doc.expandtabs().rstrip().splitlines() or [""]
    indent = _indent_of(lines)
    pad = " " * indent
    sections = _sections(lines, indent)
    if not any(title == "Parameters" for title, _ in sections):
        at = sections[0][1] if sections else len(lines)
        head = lines[:at]
        while head and not head[-1].strip():
            head.pop()
        tail = ["", *lines[at:]] if at < len(lines) else []
        lines = [*head, "", pad + "Parameters", pad + "-" * 10, *tail]
        sections = _sections(lines, indent)
    params = next(i for title, i in sections if title == "Parameters")
    start = params + 2
    after = next((i for _, i in sections if i > params), len(lines))
    end = after
    while end > start and not lines[end - 1].strip():
        end -= 1
    own = [e for e in _entries(lines[start:end], indent) if any(ln.strip() for ln in e)]
    described = set().union(*(_entry_names(e[0]) for e in own)) if own else set()
    twice = [n for n in names if n in described]
    if twice:
        raise ValueError(f"shared parameters {twice} are also described in the docstring; "
                         "keep one of the two")
    merged = list(own)
    for name, text in sorted(shared, key=lambda entry: order[entry[0]]):
        at = next((j for j, e in enumerate(merged)
                   if any(order.get(n, -1) > order[name] for n in _entry_names(e[0]))),
                  len(merged))
        merged.insert(at, _render(name, text, indent))
    tail = lines[after:]
    out = [*lines[:start], *(line for entry in merged for line in entry), *([""] if tail else []),
           *tail]
    return "\n".join(out) + ("\n" + pad if doc != doc.rstrip() else "")


def shared_parameters(*keys: str, **texts: str) -> Callable[[F], F]:
    """Complete the decorated function's ``Parameters`` section from :data:`PARAMETERS`.

    Parameters
    ----------
    *keys
        The shared entries the function takes: ``"name"`` or ``"name:variant"``.
    **texts
        Descriptions shared within one module only: parameter name -> text (for example
        ``maxpool=MAXPOOL`` for the DeepLIFT methods).

    Returns
    -------
    Callable
        A decorator returning the same function, its ``__doc__`` completed. Put it innermost
        (closest to ``def``), so that wrappers copying the docstring see the full text.
    """
    def deco(fn: F) -> F:
        fn.__doc__ = fill_parameters(fn.__doc__ or "", inspect.signature(fn), keys, texts)
        return fn

    return deco
