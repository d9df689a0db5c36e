"""IG's completeness gap on SmolLM2 under the old and the new defaults of ``explain_generation``.

``F(alpha) = log p(answer | x' + alpha (x - x'))`` is rough on a real language model: steep
narrow stretches make a fixed rule's sum miss ``F(x) - F(x')``. This module measures the largest
relative gap over the generated tokens, ``|sum_j IG_tj - (F_t(x) - F_t(x'))| / |F_t(x) -
F_t(x')|``, for a few prompts under three settings: the former default (all-zero baseline,
Gauss-Legendre, 50 steps), the first prompt token (the attention sink) kept at its own embedding
with a fixed rule of 100 steps, and the current default (first token kept, panels refined where
completeness fails, :mod:`attribkit.sequences.refine`, 100 gradient evaluations).

``python -m attribkit.experiments.llm_ig_gap`` rewrites the ``llm-ig-gap`` section of
docs/zoo-llm.md.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from attribkit.core.pages import write_section
from attribkit.sequences import explain_generation

__all__ = ["PROMPTS", "SETTINGS", "gap_table", "measure"]

#: (label, prompt, answer): a plain prompt is sent as is; a list goes through the chat template.
PROMPTS: tuple[tuple[str, Any, str], ...] = (
    ("capital of France", "The capital of France is", " Paris"),
    ("opposite of hot", "The opposite of hot is", " cold"),
    ("water freezes", "Water freezes at zero degrees", " Celsius"),
    ("2 + 3", "2 + 3 =", " 5"),
    ("chat: capital of France", [{"role": "user", "content": "What is the capital of France?"}],
     "The capital of France is Paris."),
)

#: (label, keyword arguments of explain_generation).
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("zeros, Gauss-Legendre 50 (former default)",
     {"keep_first": False, "rule": "gauss_legendre", "steps": 50}),
    ("first kept, Gauss-Legendre 100", {"rule": "gauss_legendre", "steps": 100}),
    ("first kept, refine 100 (default)", {}),
)


def measure(model: Any, tokenizer: Any, prompts: Sequence[tuple[str, Any, str]] = PROMPTS,
            settings: Sequence[tuple[str, dict[str, Any]]] = SETTINGS,
            progress: bool = True) -> dict[str, dict[str, float]]:
    """Largest relative completeness gap per prompt (rows) and setting (columns).

    Parameters
    ----------
    model, tokenizer
        A Hugging Face causal LM and its tokenizer.
    prompts
        ``(label, prompt, answer)`` triples.
    settings
        ``(label, keyword arguments)`` pairs for :func:`attribkit.explain_generation`.
    progress
        Print each measurement as it finishes.
    """
    out: dict[str, dict[str, float]] = {}
    for label, prompt, answer in prompts:
        row = out.setdefault(label, {})
        for name, kwargs in settings:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # multi-token answers warn, by design
                res = explain_generation(model, tokenizer, prompt, answer, **kwargs)
            assert res.relative_gap is not None
            row[name] = float(res.relative_gap.max())
            if progress:
                print(f"{label} | {name}: {100 * row[name]:.2f} %", flush=True)
    return out


def gap_table(gaps: dict[str, dict[str, float]]) -> str:
    """The markdown table: one row per prompt, one column per setting (percent)."""
    names = list(next(iter(gaps.values())))
    lines = ["| prompt | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(f"{100 * row[n]:.2f} %" for n in names) + " |"
              for label, row in gaps.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure on SmolLM2 and rewrite the ``llm-ig-gap`` section of the page."""
    from attribkit.zoo import llm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="docs/zoo-llm.md")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = llm.load_smollm2()
    t0 = time.perf_counter()
    gaps = measure(model, tok)
    text = (f"Largest relative gap over the answer's tokens; SmolLM2-135M-Instruct (float32), "
            f"{platform.machine()}, {time.perf_counter() - t0:.0f} s. Regenerate with "
            "`python -m attribkit.experiments.llm_ig_gap`.\n\n" + gap_table(gaps))
    write_section(args.out, "llm-ig-gap", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
