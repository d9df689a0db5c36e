"""Every registered method documents each of its parameters; shared entries are filled in."""

from __future__ import annotations

import inspect
import pydoc
import re
from collections.abc import Callable
from typing import Any

import pytest

import attribkit
from attribkit.core.docstrings import PARAMETERS, shared_parameters
from attribkit.methods import methods


def documented(doc: str) -> list[str]:
    """The parameter names of a NumPy ``Parameters`` section (read here, independently)."""
    text = inspect.cleandoc(doc)
    m = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", text, re.S | re.M)
    if m is None:
        return []
    names = []
    for line in m.group(1).splitlines():
        if line and not line[0].isspace():
            names += [n.strip().lstrip("*").split(":")[0].strip() for n in line.split(",")]
    return names


@pytest.mark.parametrize("name", sorted(methods()))
def test_every_parameter_of_a_method_is_described(name: str) -> None:
    fn = methods()[name].fn
    params = list(inspect.signature(fn).parameters)
    names = documented(fn.__doc__ or "")
    missing = [p for p in params if p not in names]
    assert not missing, f"{name}: no description for {missing} in its docstring"
    assert len(names) == len(set(names)), f"{name}: a parameter is described twice: {names}"


def test_help_shows_the_shared_text() -> None:
    text = pydoc.render_doc(attribkit.integrated_gradients, renderer=pydoc.plaintext)
    assert "Show a progress bar." in text
    assert "A callable from a batch ``(B, ...)`` to outputs" in text
    assert "riemann_trapezoid" in text  # its own entries stay
    assert documented(attribkit.integrated_gradients.__doc__ or "").index("model") == 0


def _fn(doc: str) -> Callable[..., Any]:
    def f(model: Any, inputs: Any, *, target: Any = None, steps: int = 1,
          progress: bool = False) -> None:
        pass

    f.__doc__ = doc
    return f


def test_entries_go_in_signature_order_among_the_own_ones() -> None:
    f = shared_parameters("model", "target", "progress")(_fn("""One line.

    Parameters
    ----------
    inputs
        Own text.
    steps
        Own steps.

    Returns
    -------
    None
    """))
    doc = f.__doc__ or ""
    assert documented(doc) == ["model", "inputs", "target", "steps", "progress"]
    assert "    progress\n        Show a progress bar.\n\n    Returns\n" in doc
    assert "        Own steps.\n" in doc


def test_a_section_is_made_where_there_is_none() -> None:
    doc = "One line.\n\n    Returns\n    -------\n    None\n"
    f = shared_parameters("model", "inputs", "target:single", steps="Steps.",
                          progress="Bars.")(_fn(doc))
    doc = inspect.cleandoc(f.__doc__ or "")
    assert doc.startswith("One line.\n\nParameters\n----------\nmodel\n")
    assert documented(doc) == ["model", "inputs", "target", "steps", "progress"]
    assert PARAMETERS["target:single"] in doc
    assert doc.endswith("progress\n    Bars.\n\nReturns\n-------\nNone")


@pytest.mark.parametrize(("keys", "texts", "message"), [
    (("model", "no_such"), {}, "no shared description"),
    (("seed",), {}, "not in the signature"),
    (("model",), {"model": "x"}, "given twice"),
    (("inputs",), {}, "also described"),
])
def test_wrong_shared_parameters_are_refused(keys: tuple[str, ...], texts: dict[str, str],
                                             message: str) -> None:
    doc = "One line.\n\n    Parameters\n    ----------\n    inputs\n        Own.\n    "
    with pytest.raises(ValueError, match=message):
        shared_parameters(*keys, **texts)(_fn(doc))
