"""The LSTM language model of "Gradients of Counterfactuals" (Sundararajan, Taly & Yan 2016,
section 3.2): Figures 8 to 10 measured, with the rule that picks every example stated.

* Figure 8: the next word's softmax score as the embeddings of 10 preceding words are scaled by
  ``alpha``, for 20 random test sections: how many curves start near zero and how many are flat
  near ``alpha = 1``. At ``alpha = 0`` every section gives the LSTM the same all-zero input, so
  ``F(0)`` is one fixed distribution ``p0`` over the vocabulary; the paper's one curve that starts
  high (an out-of-vocabulary next word) is read off ``p0`` and a real ``<unk>`` section.
* Figure 9: IG and gradients per word for the most confident prediction of a word (not
  punctuation or a placeholder) among 400 random test sections.
* Figure 10: sections whose next word already occurs among the 10 preceding words (the paper's
  "ual ... ual"): how often IG, and how often the gradient, is highest at the earlier occurrence.

``python -m attribkit.experiments.language_lm`` writes its section of ``docs/zoo-language.md``.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.experiments import experiment

__all__ = ["PAPER", "LanguageStudy", "RepeatStudy", "curve_counts", "language_section",
           "language_study", "main", "markdown", "repeat_study", "training_summary"]

#: The paper's numbers (section 3.2): Figure 8 (20 curves, all but one start near 0, the one that
#: does not is an out-of-vocabulary word; all flatten near alpha = 1), Figures 9 and 10 captions.
PAPER = {"curves": 20, "start_high": 1, "fig9_prediction": 0.5307, "fig9_ig_total": 0.5322,
         "fig10_prediction": 0.0062, "fig10_ig_total": 0.0063}

#: Next words that are not words: the Figure 9 / 10 examples skip them.
NOT_WORDS = frozenset({".", ",", "!", "?", ":", ";", "@user", "N", "<url>", "<eos>", "<unk>",
                       "rt"})


@dataclass(frozen=True)
class RepeatStudy:
    """The repeated-word sections (Figure 10) and where each method puts its largest score.

    Attributes
    ----------
    sections
        How many sections of the pool have a next word that occurs among the preceding words.
    ig_top_repeat, gradient_top_repeat
        How many of them have IG's (gradient x input's) largest per-word score at an earlier
        occurrence of the next word.
    chance
        The expected count if the top word were drawn uniformly among the preceding words.
    last_top_ig
        How many have IG's largest score at the last preceding word.
    example
        The table of the most confident repeated-word prediction (``None`` if there is none).
    """

    sections: int
    ig_top_repeat: int
    gradient_top_repeat: int
    chance: float
    last_top_ig: int
    example: Any


@dataclass(frozen=True)
class LanguageStudy:
    """Everything the page reports.

    Attributes
    ----------
    lm
        The :class:`attribkit.zoo.language.TrainedLanguageModel`.
    secs, alphas, scores
        Figure 8: the sections, ``(A,)`` alphas and ``(N, A)`` scores.
    p0
        ``(V,)`` the next-word distribution at ``alpha = 0`` (the same for every section).
    pool
        How many random sections the examples are picked from.
    oov
        ``(section, curve)`` of the first out-of-vocabulary next word in the pool, or ``None``.
    oov_count
        Out-of-vocabulary next words in the pool.
    fig9
        The :class:`~attribkit.zoo.language.explain.WordTable` of Figure 9's example.
    repeat
        The :class:`RepeatStudy`.
    gradient_ratio
        Median over the pool of ``max |gradient x input| / max |IG|`` per section.
    max_gap
        The largest relative completeness gap of IG over the pool.
    large_gaps
        Sections of the pool whose relative completeness gap exceeds 1 %.
    """

    lm: Any
    secs: list[Any]
    alphas: Tensor
    scores: Tensor
    p0: Tensor
    pool: int
    oov: tuple[Any, Tensor] | None
    oov_count: int
    fig9: Any
    repeat: RepeatStudy
    gradient_ratio: float
    max_gap: float
    large_gaps: int


def _per_word(lm: Any, secs: Sequence[Any], steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """IG and gradient x input per word ``(N, L)``, predictions ``(N,)``, relative gaps."""
    from attribkit.methods.gradients import gradient_x_input
    from attribkit.methods.integrated import integrated_gradients

    igs, gxs, preds, gaps = [], [], [], []
    for s in range(0, len(secs), 64):
        chunk = secs[s:s + 64]
        emb = lm.next_word.embed(torch.stack([c.ids for c in chunk]))
        target = torch.tensor([c.next_id for c in chunk])
        ig = integrated_gradients(lm.next_word, emb, target=target, steps=steps)
        gx = gradient_x_input(lm.next_word, emb, target=target)
        assert ig.output is not None and ig.relative_gap is not None
        igs.append(ig.sum_embedding())
        gxs.append(gx.sum_embedding())
        preds.append(ig.output.detach())
        gaps.append(ig.relative_gap.detach())
    return torch.cat(igs), torch.cat(gxs), torch.cat(preds), torch.cat(gaps)


def repeat_study(lm: Any, secs: Sequence[Any], ig: Tensor, gx: Tensor,
                 pred: Tensor, steps: int = 50) -> RepeatStudy:
    """Where IG and gradient x input put their largest score when the next word repeats.

    Parameters
    ----------
    lm
        The trained language model.
    secs
        The sections of the pool.
    ig, gx
        ``(N, L)`` per-word IG and gradient x input of the pool.
    pred
        ``(N,)`` the next word's score.
    steps
        IG steps of the example's table.
    """
    from attribkit.zoo.language.explain import word_table

    idx = [i for i, s in enumerate(secs)
           if s.next_word not in NOT_WORDS and s.next_word in s.words]
    hit_ig = hit_gx = last = 0
    chance = 0.0
    for i in idx:
        s = secs[i]
        at = [j for j, w in enumerate(s.words) if w == s.next_word]
        hit_ig += int(int(ig[i].argmax()) in at)
        hit_gx += int(int(gx[i].argmax()) in at)
        last += int(int(ig[i].argmax()) == len(s.words) - 1)
        chance += len(at) / len(s.words)
    example = None
    if idx:
        best = max(idx, key=lambda i: float(pred[i]))
        example = word_table(lm, secs[best], steps=steps)
    return RepeatStudy(sections=len(idx), ig_top_repeat=hit_ig, gradient_top_repeat=hit_gx,
                       chance=chance, last_top_ig=last, example=example)


def language_study(lm: Any, *, curves: int = 20, pool: int = 400, steps: int = 200,
                   alphas: int = 51) -> LanguageStudy:
    """Measure Figures 8 to 10 on a trained model.

    Parameters
    ----------
    lm
        A :class:`attribkit.zoo.language.TrainedLanguageModel` (float64 for tight gaps).
    curves
        Random test sections of Figure 8 (seed 0; the paper: 20).
    pool
        Random test sections (seed 1) the examples of Figures 9 and 10 are picked from.
    steps
        IG steps (Gauss-Legendre; on the converged model 200 close the completeness gap of
        every section of the pool to well under 1 %, 50 do not).
    alphas
        Points of each Figure 8 curve.
    """
    from attribkit.zoo import language
    from attribkit.zoo.language.explain import next_word_saturation, word_table

    secs = language.sections(lm, n=curves, length=10, seed=0)
    a, scores = next_word_saturation(lm, secs, alphas=alphas)
    with torch.no_grad():
        p0 = lm.next_word(torch.zeros(1, 10, lm.config.embed, dtype=scores.dtype))[0]
    draws = language.sections(lm, n=pool, length=10, seed=1)
    ig, gx, pred, gaps = _per_word(lm, draws, steps)
    unk = [s for s in draws if s.next_id == 0]
    oov = None
    if unk:
        _, curve = next_word_saturation(lm, unk[:1], alphas=alphas)
        oov = (unk[0], curve[0])
    words = [i for i, s in enumerate(draws) if s.next_word not in NOT_WORDS]
    fig9 = word_table(lm, draws[max(words, key=lambda i: float(pred[i]))], steps=steps)
    ratio = gx.abs().amax(dim=1) / ig.abs().amax(dim=1).clamp_min(1e-300)
    return LanguageStudy(lm=lm, secs=secs, alphas=a, scores=scores, p0=p0, pool=pool, oov=oov,
                         oov_count=len(unk), fig9=fig9,
                         repeat=repeat_study(lm, draws, ig, gx, pred, steps),
                         gradient_ratio=float(ratio.median()), max_gap=float(gaps.max()),
                         large_gaps=int((gaps > 0.01).sum()))


def curve_counts(scores: Tensor, near_zero: float = 0.01, late: float = 0.1) -> dict[str, int]:
    """Figure 8 in numbers: curves that start near zero, and curves flat near ``alpha = 1``.

    Parameters
    ----------
    scores
        ``(N, A)`` curves on equally spaced alphas from 0 to 1.
    near_zero
        A curve "starts near zero" when ``F(0) < near_zero``.
    late
        A curve is "flat near 1" when it changes by at most ``late`` times its total change
        ``|F(1) - F(0)|`` over the last fifth (``alpha`` 0.8 to 1); "rising late" when it rises
        by more.
    """
    f0, f1 = scores[:, 0], scores[:, -1]
    tail = scores[:, -1] - scores[:, round(0.8 * (scores.shape[1] - 1))]
    flat = tail.abs() <= late * (f1 - f0).abs()
    return {"curves": scores.shape[0], "start_near_zero": int((f0 < near_zero).sum()),
            "flat": int(flat.sum()), "rising_late": int((tail > late * (f1 - f0).abs()).sum())}


def training_summary(lm: Any) -> str:
    """The model, its convergence rule and its per-epoch validation perplexities, in words.

    Parameters
    ----------
    lm
        A :class:`attribkit.zoo.language.TrainedLanguageModel`.
    """
    c = lm.config
    epochs = ", ".join(f"{v:.1f} ({r:g})" for v, r in zip(lm.valid_history, lm.lr_history,
                                                          strict=True))
    return (
        f"Model: {c.layers}-layer LSTM, embedding {c.embed}, hidden {c.hidden}, vocabulary "
        f"{c.vocab_size} (the rest `<unk>`), trained on {len(lm.corpus.train):,} training tokens "
        f"(truncated back-propagation over {c.bptt} steps, batch {c.batch}, seed {c.seed}) with "
        f"Adam at learning rate {c.lr:g} until converged: after an epoch that lowers the best "
        f"validation perplexity by less than {c.plateau:.0%}, the learning rate is divided by "
        f"{1 / c.lr_decay:g}, and at such an epoch after {c.max_decays} divisions training stops "
        f"(at most {c.epochs} epochs). {len(lm.valid_history)} epochs ran; validation perplexity "
        f"after each (learning rate): {epochs}; the best epoch's weights are kept. Training took "
        f"{lm.train_seconds:.0f} s on one core of the shared machine.")


def _rank(p0: Tensor, i: int) -> int:
    return int((p0 > p0[i]).sum()) + 1


def markdown(s: LanguageStudy) -> str:
    """The page's measured section: the model, Figure 8's counts, the examples and the rules."""
    lm = s.lm
    k = curve_counts(s.scores)
    in_vocab = [i for i, x in enumerate(s.secs) if x.next_id != 0]
    top = s.p0.topk(5)
    top_words = ", ".join(f"`{lm.corpus.vocab[int(i)]}` {float(v):.3f}"
                          for v, i in zip(top.values, top.indices, strict=True))
    lines = [
        training_summary(lm),
        "",
        f"Held-out perplexity: **validation {lm.valid_perplexity:.1f}, test "
        f"{lm.test_perplexity:.1f}** ({len(lm.corpus.test):,} test tokens).",
        "",
        "| Figure 8 (20 random test sections of 10 words, seed 0) | paper | here |",
        "|---|---|---|",
        f"| curves starting near 0 (`F(0) < 0.01`) | {PAPER['curves'] - PAPER['start_high']} of "
        f"{PAPER['curves']} | {k['start_near_zero']} of {k['curves']} |",
        f"| next word out of vocabulary | 1 (the curve that starts high) | "
        f"{k['curves'] - len(in_vocab)} |",
        f"| flat near alpha = 1 (change over alpha 0.8-1 at most 10 % of the total change) | all "
        f"(\"turns flat around alpha = 1\") | {k['flat']} of {k['curves']} |",
        f"| still rising over alpha 0.8-1 by more than 10 % of the total change | none | "
        f"{k['rising_late']} of {k['curves']} |",
        "",
        "Curves that start at 0.01 or above (next word and `F(0)`): "
        + (", ".join(f"`{x.next_word}` {float(f0):.4f}" for x, f0 in zip(s.secs, s.scores[:, 0],
                                                                       strict=True)
                     if float(f0) >= 0.01) or "none") + ".",
        "",
        "At `alpha = 0` every section feeds the LSTM the same all-zero embeddings, so `F(0)` is "
        f"one fixed distribution over the vocabulary; its largest entries: {top_words}.",
    ]
    if s.oov is not None:
        sec, curve = s.oov
        lines += [
            "",
            f"Out of vocabulary: {s.oov_count} of the {s.pool} random test sections of the pool "
            f"(seed 1) have the next word `<unk>`; `F(0)` for `<unk>` is {float(curve[0]):.4f} "
            f"(rank {_rank(s.p0, 0)} of {s.p0.numel()} in `F(0)`), against at most "
            f"{float(s.scores[in_vocab, 0].max()) if in_vocab else float('nan'):.4f} for the "
            f"in-vocabulary next words of Figure 8. The first such section, "
            f"\"{' '.join(sec.words)}\" -> `<unk>`, goes from {float(curve[0]):.4f} at alpha = 0 "
            f"to {float(curve[-1]):.4f} at alpha = 1 (at alpha = 0.5: "
            f"{float(curve[len(curve) // 2]):.4f}).",
        ]
    f9, r = s.fig9, s.repeat
    lines += [
        "",
        f"Figure 9: the most confident prediction of a word (not punctuation, `<eos>`, `<unk>`, "
        f"`@user`, `N`, `<url>` or `rt`) among the {s.pool} random test sections of the pool "
        f"(seed 1). Paper: prediction {PAPER['fig9_prediction']}, total IG "
        f"{PAPER['fig9_ig_total']}.",
        "",
        *(["Values x 1e3:", ""] if f9.prediction <= 0.05 else []),
        f9.to_markdown(1.0 if f9.prediction > 0.05 else 1e3),
        "",
        f"Figure 10 (the next word repeats a preceding word, the paper's \"ual ... ual\"): "
        f"{r.sections} sections of the pool qualify. IG is largest at an earlier occurrence of "
        f"the next word in **{r.ig_top_repeat} of {r.sections}**, gradient x input in "
        f"**{r.gradient_top_repeat} of {r.sections}** (a word drawn at random: "
        f"{r.chance:.1f} of {r.sections}); IG is largest at the last preceding word in "
        f"{r.last_top_ig}. The table is the most confident of them. Paper: prediction "
        f"{PAPER['fig10_prediction']}, total IG {PAPER['fig10_ig_total']}, IG clearly highest at "
        "the first \"ual\".",
    ]
    if r.example is not None:
        ex = r.example
        small = ex.prediction <= 0.05
        lines += ["", *(["Values x 1e3 (as the paper's Figure 10 shows them):", ""] if small
                        else []), ex.to_markdown(1e3 if small else 1.0)]
    lines += [
        "",
        f"Gradient x input against IG: over the pool the median of max |gradient x input| / "
        f"max |IG| per section is {s.gradient_ratio:.3f}. Completeness: IG's total differs from "
        f"`F(x) - F(0)` by at most {s.max_gap:.1e} of it, by more than 1 % in {s.large_gaps} of "
        f"the {s.pool} sections ({s.fig9.steps} Gauss-Legendre steps, float64).",
    ]
    return "\n".join(lines)


def _add(rep: Any, s: LanguageStudy) -> None:
    from attribkit.viz import saturation_curves

    lm = s.lm
    rep.text(f"{training_summary(lm)} Held-out perplexity: validation "
             f"{lm.valid_perplexity:.1f}, test {lm.test_perplexity:.1f}.")
    k = curve_counts(s.scores)
    fig = saturation_curves(s.alphas, s.scores, labels=[x.next_word for x in s.secs],
                            title="Softmax score of the next word, 20 test sections",
                            ylabel="softmax score")
    rep.image(fig, "Figure 8: F(alpha x) for 20 random test sections (seed 0)")
    rep.text(f"{k['start_near_zero']} of {k['curves']} curves start below 0.01; {k['flat']} of "
             f"{k['curves']} are flat near alpha = 1 (the paper: all).")
    for title, rule, t in (
            ("Figure 9", f"the most confident prediction of a word among {s.pool} random test "
                         "sections (seed 1)", s.fig9),
            ("Figure 10", "the most confident of those sections whose next word occurs among "
                          "the preceding words", s.repeat.example)):
        if t is None:
            continue
        rep.heading(f"{title}: {t.caption()}", 3)
        rep.text(f"Chosen by rule: {rule}.")
        rows = t.rows()
        rep.table(rows[0], rows[1:])
    r = s.repeat
    rep.text(f"Repeated next word: IG is largest at the earlier occurrence in {r.ig_top_repeat} "
             f"of {r.sections} sections, gradient x input in {r.gradient_top_repeat} (chance "
             f"{r.chance:.1f}).")


def _note(s: LanguageStudy) -> str:
    k, r = curve_counts(s.scores), s.repeat
    return (f"language_lm: validation perplexity {s.lm.valid_perplexity:.1f}, test "
            f"{s.lm.test_perplexity:.1f}; {k['flat']} of {k['curves']} curves flat near alpha = 1; "
            f"Figure 9 prediction {s.fig9.prediction:.4f}, IG total {s.fig9.ig_total:.4f}; IG top "
            f"at the repeated word in {r.ig_top_repeat} of {r.sections}")


@experiment("language_lm", "The LSTM language model (Gradients of Counterfactuals, section 3.2)",
            task="language")
def language_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """Add Figures 8 to 10 (a pool of 100 sections in quick mode, 400 otherwise) to a report."""
    from attribkit.zoo import language

    del setup
    lm = language.load_language_model(progress=progress, dtype=torch.float64)
    s = language_study(lm, pool=100 if quick else 400, steps=100 if quick else 200)
    _add(rep, s)
    return [_note(s)]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure Figures 8 to 10 on the default model and write the section of the docs page."""
    import time

    from attribkit.core.pages import write_section
    from attribkit.zoo import language

    ap = argparse.ArgumentParser(prog="python -m attribkit.experiments.language_lm")
    ap.add_argument("--out", default="docs/zoo-language.md", help="the docs page to update")
    ap.add_argument("--pool", type=int, default=400, help="random sections for the examples")
    args = ap.parse_args(argv)
    lm = language.load_language_model(progress=True, dtype=torch.float64)
    t0 = time.perf_counter()
    s = language_study(lm, pool=args.pool)
    body = markdown(s) + (f"\n\nMeasured in {time.perf_counter() - t0:.0f} s (model cached). "
                          "Regenerate with: `python -m attribkit.experiments.language_lm`.")
    write_section(pathlib.Path(args.out), "figures-8-10", body,
                  title="# Zoo: the LSTM language model")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
