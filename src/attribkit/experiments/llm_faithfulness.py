"""Faithfulness of token attributions on SmolLM2: deletion and insertion of prompt tokens.

For every prompt of :mod:`.llm_prompts` and every method (Integrated Gradients, AttnLRP, gradient
x input, occlusion, attention rollout, and a random ranking as the floor), the prompt's tokens are
ranked by their attribution to the answer (the signed sum over the answer's tokens; evidence for
the answer first). Deletion (Petsiuk et al. 2018) replaces the top-ranked tokens' embeddings by
zeros, a share at a time, most important first; insertion starts from all-zero embeddings and
puts the tokens back in the same order. The score is the answer's log-probability (summed over
its tokens). A fixed first token, ``<|endoftext|>``, is put before every prompt: the attention
sink of Llama-style models, which is never removed, never inserted (it keeps its embedding
throughout) and never ranked.

Per prompt, both curves are normalised to ``(s - F(x')) / (F(x) - F(x'))`` (1 at the prompt, 0 with
every token zeroed; the two curves share both ends), their areas over the removed / inserted
share of tokens are taken with the trapezoid rule, and the prompt's score is **insertion area
minus deletion area**: about 0 for a random order, up to 1 for an order whose first token alone
carries the answer. The table gives the mean over prompts with a seeded 95 % percentile
bootstrap interval (:func:`attribkit.experiments._stats.bootstrap_ci`).

Results are cached per prompt and method in ``<attribkit cache>/llm-faithfulness/<settings>/``,
so an interrupted run resumes where it stopped. ``python -m attribkit.experiments.llm_faithfulness``
writes the table into ``docs/zoo-llm.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import pathlib
import platform
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from attribkit.core.guard import ModelGuard
from attribkit.evaluate import deletion_curve, insertion_curve
from attribkit.experiments._stats import bootstrap_ci
from attribkit.experiments.llm_prompts import PROMPTS, FaithPrompt
from attribkit.sequences import explain_generation
from attribkit.sequences.inputs import encode_prompt, encode_target, rows_per_pass, vocab_size
from attribkit.sequences.scoring import build_scorer

__all__ = ["LABELS", "METHODS", "PromptResult", "Settings", "cached", "ig_defaults", "main",
           "markdown", "run", "run_prompt", "summary_rows"]

#: The compared methods, in table order; ``random`` is a seeded random ranking (the floor),
#: ``recency`` ranks by position alone, the prompt's last token first (a reference).
#: ``integrated_gradients`` runs with ``explain_generation``'s defaults;
#: ``integrated_gradients-<rule>-<steps>`` with that quadrature (here the former default).
METHODS = ("attnlrp", "occlusion", "integrated_gradients",
           "integrated_gradients-gauss_legendre-50", "gradient_x_input", "attention_rollout",
           "random", "recency")
#: Row labels of the table.
LABELS = {"attnlrp": "AttnLRP", "occlusion": "occlusion", "integrated_gradients": "IG",
          "integrated_gradients-gauss_legendre-50": "IG, Gauss-Legendre 50 steps",
          "gradient_x_input": "gradient x input", "attention_rollout": "attention rollout",
          "random": "random", "recency": "recency (last token first)"}
_VERSION = 1  # bumped when the protocol changes; part of the cache key


@dataclass(frozen=True)
class Settings:
    """What a result depends on (its hash names the cache folder).

    Attributes
    ----------
    sink
        The token put before every prompt (never removed, inserted or ranked).
    curve_steps
        Steps of each curve (fewer for a shorter prompt: one token per step).
    seed
        Seed of the random ranking (combined with the prompt's name).
    model
        Which model (``"smollm2"``, or a tiny model's name for tests).
    """

    sink: str = "<|endoftext|>"
    curve_steps: int = 20
    seed: int = 0
    model: str = "smollm2"

    def key(self) -> str:
        """A short hash of the settings and the protocol's version."""
        text = json.dumps({**asdict(self), "version": _VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PromptResult:
    """One prompt under one method.

    Attributes
    ----------
    prompt, kind, method
        The prompt's name and kind, and the method.
    importance
        The attribution of each prompt token after the sink (the ranking's key).
    fractions
        ``(S + 1,)`` share of tokens removed (deletion) or inserted (insertion) at each step.
    deletion, insertion
        ``(S + 1,)`` ``log p(answer)`` after each step.
    greedy
        Whether the model's greedy continuation is the expected answer.
    seconds
        Time of the attribution and both curves.
    info
        Method-specific records (IG's baseline and relative completeness gap).
    """

    prompt: str
    kind: str
    method: str
    importance: list[float]
    fractions: list[float]
    deletion: list[float]
    insertion: list[float]
    greedy: bool
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def logp(self) -> float:
        """``F(x)``: log p(answer | prompt)."""
        return self.deletion[0]

    @property
    def logp_removed(self) -> float:
        """``F(x')``: log p(answer) with every token after the sink zeroed."""
        return self.deletion[-1]

    def _area(self, curve: list[float]) -> float:
        span = self.logp - self.logp_removed
        norm = (torch.tensor(curve, dtype=torch.float64) - self.logp_removed) / span
        return float(torch.trapezoid(norm, torch.tensor(self.fractions, dtype=torch.float64)))

    @property
    def valid(self) -> bool:
        """Whether zeroing the prompt lowers the answer's log-probability (normalisable)."""
        return self.logp - self.logp_removed > 0

    @property
    def deletion_area(self) -> float:
        """Area under the normalised deletion curve (lower is more faithful)."""
        return self._area(self.deletion)

    @property
    def insertion_area(self) -> float:
        """Area under the normalised insertion curve (higher is more faithful)."""
        return self._area(self.insertion)

    @property
    def score(self) -> float:
        """Insertion area minus deletion area."""
        return self.insertion_area - self.deletion_area


def ig_defaults() -> tuple[str, int]:
    """``explain_generation``'s default IG quadrature: ``(rule, steps)``."""
    params = inspect.signature(explain_generation).parameters
    return str(params["rule"].default), int(params["steps"].default)


def _resolve(method: str) -> tuple[str, dict[str, Any], str]:
    """``(explain_generation method, its keywords, the cache file's tag)`` of a method name."""
    if method == "integrated_gradients":
        rule, steps = ig_defaults()
        return method, {}, f"{method}-{rule}-{steps}"
    if method.startswith("integrated_gradients-"):
        quad, _, count = method.removeprefix("integrated_gradients-").rpartition("-")
        return "integrated_gradients", {"rule": quad, "steps": int(count)}, method
    return method, {}, method


def _importance(model: Any, tok: Any, text: str, prompt: FaithPrompt, method: str,
                settings: Settings, n: int) -> tuple[Tensor, dict[str, Any]]:
    if method == "random":
        seed = settings.seed * 1_000_003 + zlib.crc32(prompt.name.encode())
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(n, generator=gen, dtype=torch.float64), {}
    if method == "recency":
        return torch.arange(n, dtype=torch.float64), {}
    name, kwargs, _ = _resolve(method)
    res = explain_generation(model, tok, text, prompt.answer, method=name, **kwargs)
    info: dict[str, Any] = {}
    if name == "integrated_gradients":
        gap = res.matrix.sum() - (res.logprobs.sum() - res.baseline_logprobs.sum())  # type: ignore[union-attr]
        span = (res.logprobs.sum() - res.baseline_logprobs.sum()).abs()  # type: ignore[union-attr]
        info.update(baseline=res.params.get("baseline"), rule=res.params.get("rule"),
                    steps=res.params.get("steps"), relative_gap=float(gap.abs() / span))
    return res.matrix.sum(0)[1:].to(torch.float64), info


def _curves(model: Any, tok: Any, text: str, answer: str, importance: Tensor,
            steps: int) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Fractions, deletion and insertion curves ``(S + 1,)``, and the greedy check."""
    vocab = vocab_size(model, tok)
    ids = encode_prompt(tok, text, vocab)
    target = encode_target(tok, answer, vocab)
    assert target is not None
    lp = int(ids.shape[0])
    with ModelGuard(model) as guard:
        scorer = build_scorer(model, guard, ids, target)
        x = scorer.prompt_embeds[None]
        with torch.no_grad():
            greedy = bool((scorer.logits(x)[0].argmax(-1) == target).all())

        def answer_logp(points: Tensor) -> Tensor:
            return scorer(points).sum(-1)

        mask = torch.arange(-1, lp - 1).reshape(1, lp, 1)  # the sink (-1) is in no group
        attr = torch.cat([importance.new_zeros(1), importance]).to(x.dtype)
        opts: dict[str, Any] = {
            "steps": min(steps, lp - 1), "baseline": torch.zeros_like(x), "feature_mask": mask,
            "sign": "all", "batch_size": rows_per_pass(None, lp + int(target.shape[0]))}
        values = attr[None, :, None].expand_as(x)
        dele = deletion_curve(answer_logp, x, values, **opts)
        ins = insertion_curve(answer_logp, x, values, **opts)
    return dele.fractions, dele.scores[0], ins.scores[0], greedy


def run_prompt(model: Any, tok: Any, prompt: FaithPrompt, method: str, settings: Settings,
               cache: pathlib.Path | None = None) -> PromptResult:
    """One prompt under one method, read from ``cache`` when it is there (written otherwise).

    Parameters
    ----------
    model, tok
        The language model and its tokenizer.
    prompt
        The prompt and its expected answer.
    method
        One of :data:`METHODS`.
    settings
        The protocol's settings.
    cache
        Folder of the cached results (``None``: compute, keep nothing).
    """
    path = None if cache is None else cache / f"{prompt.name}.{_resolve(method)[2]}.json"
    if path is not None and path.is_file():
        done = PromptResult(**json.loads(path.read_text(encoding="utf-8")))
        return dataclasses.replace(done, method=method)
    t0 = time.perf_counter()
    text = settings.sink + prompt.text
    n = int(encode_prompt(tok, text, vocab_size(model, tok)).shape[0]) - 1
    imp, info = _importance(model, tok, text, prompt, method, settings, n)
    fractions, dele, ins, greedy = _curves(model, tok, text, prompt.answer, imp,
                                           settings.curve_steps)
    res = PromptResult(prompt=prompt.name, kind=prompt.kind, method=method,
                       importance=imp.tolist(), fractions=fractions.tolist(),
                       deletion=dele.tolist(), insertion=ins.tolist(), greedy=greedy,
                       seconds=time.perf_counter() - t0, info=info)
    if path is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(res)), encoding="utf-8")
        tmp.replace(path)  # a result is in the cache whole or not at all
    return res


def run(model: Any, tok: Any, prompts: Sequence[FaithPrompt], methods: Sequence[str],
        settings: Settings, cache: pathlib.Path | None = None,
        progress: bool = False) -> list[PromptResult]:
    """Every prompt under every method (prompt by prompt, so a partial run covers whole prompts).

    Parameters
    ----------
    model, tok
        The language model and its tokenizer.
    prompts
        The prompts.
    methods
        Names from :data:`METHODS`.
    settings
        The protocol's settings.
    cache
        Folder of the cached results.
    progress
        Print one line per prompt and method.
    """
    out = []
    for i, prompt in enumerate(prompts):
        for method in methods:
            res = run_prompt(model, tok, prompt, method, settings, cache)
            out.append(res)
            if progress:
                print(f"[{i + 1}/{len(prompts)}] {prompt.name:16} {method:20} "
                      f"score {res.score:+.3f}  {res.seconds:6.1f} s", flush=True)
    return out


def cached(prompts: Sequence[FaithPrompt], methods: Sequence[str],
           cache: pathlib.Path) -> list[PromptResult]:
    """The cached results of the prompts that have every method done (nothing is computed).

    Parameters
    ----------
    prompts
        The prompts.
    methods
        Names from :data:`METHODS`.
    cache
        Folder of the cached results.
    """
    out = []
    for prompt in prompts:
        paths = [cache / f"{prompt.name}.{_resolve(m)[2]}.json" for m in methods]
        if all(p.is_file() for p in paths):
            out += [dataclasses.replace(PromptResult(**json.loads(p.read_text(
                encoding="utf-8"))), method=m) for p, m in zip(paths, methods, strict=True)]
    return out


def summary_rows(results: Sequence[PromptResult], methods: Sequence[str]) -> list[list[str]]:
    """One table row per method: score with its interval, its paired difference to the recency
    reference (where that ran), both areas, per kind, time.

    Only prompts whose log-probability drops when every token is zeroed (:attr:`PromptResult.valid`
    under every method) count.
    """
    kinds = sorted({r.kind for r in results}, key=("fact", "arithmetic", "needle").index)
    bad = {r.prompt for r in results if not r.valid}
    recency = {r.prompt: r.score for r in results if r.method == "recency"}
    rows = []
    for m in methods:
        rs = [r for r in results if r.method == m and r.prompt not in bad]
        if not rs:
            continue
        mean, low, high = bootstrap_ci([r.score for r in rs], seed=0)
        paired = []
        if recency:
            d = bootstrap_ci([r.score - recency[r.prompt] for r in rs], seed=0)
            paired = ["" if m == "recency" else f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"]
        per_kind = []
        for k in kinds:
            ks = [r.score for r in rs if r.kind == k]
            per_kind.append(f"{sum(ks) / len(ks):+.3f}" if ks else "")
        rows.append([LABELS.get(m, m), f"**{mean:+.3f}** [{low:+.3f}, {high:+.3f}]", *paired,
                     f"{sum(r.insertion_area for r in rs) / len(rs):.3f}",
                     f"{sum(r.deletion_area for r in rs) / len(rs):.3f}", *per_kind,
                     f"{sum(r.seconds for r in rs) / len(rs):.1f}"])
    return rows


def markdown(results: Sequence[PromptResult], methods: Sequence[str], settings: Settings,
             n_prompts: int) -> str:
    """The docs section: setup, the table and the prompts' bookkeeping."""
    kinds = sorted({r.kind for r in results}, key=("fact", "arithmetic", "needle").index)
    done = sorted({r.prompt for r in results})
    count = {k: len({r.prompt for r in results if r.kind == k}) for k in kinds}
    bad = sorted({r.prompt for r in results if not r.valid})
    wrong = [p for p in done if not all(r.greedy for r in results if r.prompt == p)]
    greedy = sum(1 for p in done if all(r.greedy for r in results if r.prompt == p))
    ig_notes = []
    for m in methods:
        ig = [r for r in results if r.method == m and "relative_gap" in r.info]
        if ig:
            gap = _median([r.info["relative_gap"] for r in ig])
            ig_notes.append(f"{LABELS.get(m, m)}: rule `{ig[0].info.get('rule')}`, "
                            f"{ig[0].info.get('steps')} steps, median relative completeness "
                            f"gap {gap:.1%}")
    head = ["method", "insertion - deletion [95 % CI]",
            *(["minus recency (paired)"] if any(r.method == "recency" for r in results) else []),
            "insertion area", "deletion area",
            *[f"{k} ({count[k]})" for k in kinds], "s / prompt"]
    lines = [
        f"{len(done)} of {n_prompts} prompts ("
        + ", ".join(f"{count[k]} {k}" for k in kinds) + f"); {greedy} of them answered "
        "greedily as expected" + (f" (not: {', '.join(wrong)})" if wrong else "")
        + ". Curves in up to "
        f"{settings.curve_steps} steps (one token per step for shorter prompts). IG from "
        "zero embeddings with the sink kept at its own"
        + ("".join(f"; {n}" for n in ig_notes) if ig_notes else "")
        + ". Intervals: percentile bootstrap over prompts (10,000 resamples, seed 0)."
        + (f" Left out (zeroing the prompt does not lower the answer): {', '.join(bad)}."
           if bad else ""),
        "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(results, methods)]
    return "\n".join(lines)


def _median(values: Sequence[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).median()) if values else float("nan")


def _load(name: str) -> tuple[Any, Any]:
    if name == "smollm2":
        from attribkit.zoo import llm

        return llm.load_smollm2()
    from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

    return tiny_model(name), tiny_tokenizer()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment (resuming from the cache) and write its section of the docs page."""
    from attribkit.core.pages import write_section
    from attribkit.zoo._cache import cache_dir

    ap = argparse.ArgumentParser(prog="python -m attribkit.experiments.llm_faithfulness")
    ap.add_argument("--out", default="docs/zoo-llm.md", help="the docs page to update")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--cached-only", action="store_true",
                    help="tabulate the prompts already done (every method), compute nothing")
    ap.add_argument("--limit", type=int, default=None, help="the first N prompts only")
    ap.add_argument("--prompts", nargs="+", default=None, help="these prompts only (names)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--model", default="smollm2", help="smollm2, or tiny-llama (tests)")
    ap.add_argument("--sink", default=None, help="the first token (default <|endoftext|>)")
    ap.add_argument("--curve-steps", type=int, default=20)
    ap.add_argument("--cache", type=pathlib.Path, default=None, help="results folder")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = Settings(sink=args.sink or Settings.sink, curve_steps=args.curve_steps,
                        model=args.model)
    cache = (args.cache or cache_dir("llm-faithfulness")) / settings.key()
    cache.mkdir(parents=True, exist_ok=True)
    prompts = [p for p in PROMPTS[:args.limit] if args.prompts is None or p.name in args.prompts]
    t0 = time.perf_counter()
    if args.cached_only:
        results = cached(prompts, args.methods, cache)
    else:
        model, tok = _load(args.model)
        results = run(model, tok, prompts, args.methods, settings, cache, progress=True)
    body = markdown(results, args.methods, settings, len(PROMPTS)) + (
        f"\n\n{platform.machine()} CPU, {torch.get_num_threads()} thread(s), torch "
        f"{torch.__version__}, float32, on a machine shared with other jobs; the results took "
        f"{sum(r.seconds for r in results) / 60:.0f} min of computation (this call "
        f"{time.perf_counter() - t0:.0f} s, cached results read). Regenerate with: "
        "`python -m attribkit.experiments.llm_faithfulness` (resumes from its cache).")
    if not args.no_write:
        write_section(pathlib.Path(args.out), "faithfulness", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
