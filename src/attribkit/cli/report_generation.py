"""The report section "Answers, token by token": one heat map per answer of a language model.

Used by ``attribkit report`` on a generation run (``attribkit run smollm2 prompts.txt``: each
prompt's stored ``(generated x prompt)`` matrix with the labels of its ``extra``) and by
``attribkit explain-generation ... --report`` (one answer). The heat maps are
:func:`attribkit.viz.generation_heatmap`: long prompts condensed to 30 columns, colours scaled
to the 99th percentile of ``|a|``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Answer", "add_answers", "store_answers"]

#: Items shown in a run's report (each with every method); the explorer shows them all.
MAX_ITEMS = 20


@dataclass(frozen=True)
class Answer:
    """One answer's matrix and labels, as :func:`attribkit.viz.generation_heatmap` reads them.

    Attributes
    ----------
    heading
        What the answer is (item and prompt).
    method
        The method's name.
    prompt_tokens, generated_tokens
        Column and row labels.
    matrix
        ``(T, P)`` generated x prompt.
    logprobs
        ``(T,)`` each generated token's log-probability, or None.
    relative_gap
        ``(T,)`` the completeness gap per generated token, or None.
    """

    heading: str
    method: str
    prompt_tokens: tuple[str, ...]
    generated_tokens: tuple[str, ...]
    matrix: np.ndarray[Any, Any]
    logprobs: np.ndarray[Any, Any] | None = None
    relative_gap: np.ndarray[Any, Any] | None = None


def _vector(given: Any, count: int) -> np.ndarray[Any, Any] | None:
    if not isinstance(given, list) or len(given) != count:
        return None
    return np.asarray([np.nan if v is None else float(v) for v in given])


def store_answers(store: Any, max_items: int = MAX_ITEMS) -> tuple[list[Answer], int]:
    """The answers of a generation run's first ``max_items`` items with a successful method.

    Parameters
    ----------
    store : attribkit.runs.RunStore
        An opened store of kind ``generation``.
    max_items : int
        Most items read.

    Returns
    -------
    tuple of list of Answer and int
        The answers (item order, then the run's method order) and the number of items with
        answers that were left out.
    """
    res = store.results
    if not len(res):
        return [], 0
    ok = res[res["status"] == "ok"]
    items = sorted({int(i) for i in ok["item"]})
    texts = {int(r.item): r.text for r in store.items.itertuples()} if len(store.items) else {}
    order = [m["name"] for m in store.manifest.get("methods", [])]
    answers = []
    for item in items[:max_items]:
        rows = ok[ok["item"] == item]
        for method in sorted(set(rows["method"]), key=lambda m: (
                order.index(m) if m in order else len(order), m)):
            r = rows[rows["method"] == method].iloc[0]
            matrix = np.asarray(store.values(item, method), dtype=np.float64)
            if matrix.ndim != 2:
                continue
            t, p = matrix.shape
            extra = json.loads(r["extra"]) if isinstance(r.get("extra"), str) else {}
            prompt = extra.get("prompt_tokens")
            generated = extra.get("generated_tokens")
            text = texts.get(item)
            answers.append(Answer(
                heading=f"item {item} ({r['item_id']})" + (f": {text!r}" if text else ""),
                method=method,
                prompt_tokens=tuple(prompt) if isinstance(prompt, list) and len(prompt) == p
                else tuple(f"#{j}" for j in range(p)),
                generated_tokens=tuple(generated) if isinstance(generated, list)
                and len(generated) == t else tuple(f"#{i}" for i in range(t)),
                matrix=matrix, logprobs=_vector(extra.get("logprobs"), t),
                relative_gap=_vector(extra.get("relative_gap"), t)))
    return answers, max(0, len(items) - max_items)


def add_answers(rep: Any, answers: Sequence[Any], *, left_out: int = 0, level: int = 2) -> None:
    """Add the section "Answers, token by token" to ``rep``: one heat map per answer.

    Parameters
    ----------
    rep : attribkit.report.Report
        The report.
    answers : sequence of Answer or GenerationAttribution
        Each with ``matrix``, ``prompt_tokens``, ``generated_tokens`` and ``method`` (a
        ``heading`` is shown above its map when it has one).
    left_out : int
        Items not shown (said in a note).
    level : int
        The section heading's level.
    """
    from attribkit.viz import generation_heatmap

    rep.heading("Answers, token by token", level)
    rep.text("Each row is one generated token, explained by its log-probability given the prompt "
             "and the tokens generated before it; each column a prompt token. Red raised the "
             "token's log-probability, blue lowered it; colours end at the 99th percentile of "
             "|a| (larger values take the end colour). A prompt of more than 30 tokens shows the "
             "29 with the largest total |a| and one column summing the others, so each row "
             "keeps its sum.")
    last = None
    for a in answers:
        heading = getattr(a, "heading", None)
        if heading and heading != last:
            rep.heading(str(heading), level + 1)
            last = heading
        answer = "".join(str(s) for s in a.generated_tokens)
        wide = min(int(np.shape(a.matrix)[1]), 30) > 14  # a short prompt keeps its size
        rep.image(generation_heatmap(a), f"{a.method}: {answer!r}", wide=wide)
    if left_out:
        rep.text(f"{left_out} more prompts are in the store (attribkit serve shows each).",
                 note=True)
